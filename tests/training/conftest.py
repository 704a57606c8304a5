"""Fixtures of the training tests."""

import numpy as np
import pytest

from sr_models.imageio import write_png


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of six small, smooth HR images (40x50 RGB)."""
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(6):
        smooth = np.kron(rng.integers(0, 256, size=(8, 10, 3)), np.ones((5, 5, 1))).astype(np.uint8)
        write_png(folder / f"im{i}.png", smooth)
    return folder

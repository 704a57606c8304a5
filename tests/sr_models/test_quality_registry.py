"""The quality-metric registry: names, aliases, what each metric declares, and the errors a user can meet."""

import sys

import numpy as np
import pytest

from sr_models import quality
from sr_models.errors import MissingExtraError, SRMOSError, UnknownMetricError
from sr_models.metrics import psnr_y, ssim_y
from sr_models.quality.tensors import shape_batches

EXTRA = ["ms_ssim", "gmsd", "vif", "fsim", "lpips_alex", "lpips_vgg", "dists", "niqe", "niqe_skvideo"]


def test_registry_lists_the_base_metrics_first_then_the_extra_ones():
    assert quality.available() == ["psnr_y", "ssim_y", *EXTRA]


@pytest.mark.parametrize("name", ["psnr_y", "ssim_y", *EXTRA])
def test_every_metric_says_what_it_is(name):
    metric = quality.get(name)
    assert metric.kind in (quality.FULL_REFERENCE, quality.NO_REFERENCE)
    assert isinstance(metric.higher_is_better, bool)
    assert metric.space and metric.convention and metric.source and metric.paper
    assert metric.learned == (name in ("lpips_alex", "lpips_vgg", "dists"))


def test_directions():
    lower = {name for name in quality.available() if not quality.get(name).higher_is_better}
    assert lower == {"gmsd", "lpips_alex", "lpips_vgg", "dists", "niqe", "niqe_skvideo"}


def test_aliases_and_resolution_keep_order_and_drop_repeats():
    assert quality.resolve(["psnr", "SSIM", "lpips_alex", "psnr_y", " niqe "]) == [
        "psnr_y",
        "ssim_y",
        "lpips_alex",
        "niqe",
    ]


def test_unknown_metric_lists_the_alternatives():
    with pytest.raises(UnknownMetricError) as error:
        quality.get("lpips")
    message = str(error.value)
    assert "unknown metric 'lpips'" in message
    assert all(name in message for name in quality.available()) and "psnr (= psnr_y)" in message


@pytest.mark.parametrize("name", ["ma", "pi", "PI"])
def test_ma_and_pi_say_why_they_cannot_be_computed(name):
    with pytest.raises(UnknownMetricError, match="trained model no package on the index ships|regression-forest"):
        quality.resolve(["psnr", name])


def test_psnr_and_ssim_through_the_registry_are_sr_models_metrics():
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-9, 9, hr.shape), 0, 255).astype(np.uint8)
    assert quality.compute("psnr", sr, hr, crop_border=4) == pytest.approx(psnr_y(sr, hr, crop_border=4), abs=1e-12)
    assert quality.compute("ssim_y", sr, hr, crop_border=4, y_convention="float") == pytest.approx(
        ssim_y(sr, hr, crop_border=4, convention="float"), abs=1e-9
    )


def test_full_reference_metrics_check_their_inputs():
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    with pytest.raises(SRMOSError, match="full-reference"):
        quality.compute("gmsd", image)
    with pytest.raises(SRMOSError, match="of one shape"):
        quality.compute("gmsd", image, image[:100])
    with pytest.raises(SRMOSError, match="uint8"):
        quality.compute("gmsd", image.astype(float), image)


def test_a_missing_library_names_the_install_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "piq", None)  # what an install without the metrics extra looks like to import
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    with pytest.raises(MissingExtraError) as error:
        quality.compute("gmsd", image, image)
    message = str(error.value)
    assert "'piq'" in message and ".[metrics]" in message and "requirements-metrics.txt" in message
    assert "\n" not in message


def test_batched_scores_come_back_in_order_whatever_the_shapes():
    rng = np.random.default_rng(7)
    pairs = []
    for shape in [(64, 80, 3), (72, 64, 3), (64, 80, 3)]:
        hr = rng.integers(0, 256, shape, dtype=np.uint8)
        pairs.append((np.clip(hr.astype(int) + rng.integers(-30, 30, shape), 0, 255).astype(np.uint8), hr))
    together = quality.compute_many("gmsd", pairs, crop_border=0, device="cpu")
    alone = [quality.compute("gmsd", sr, hr, crop_border=0, device="cpu") for sr, hr in pairs]
    assert together == alone and len(set(together)) == 3


def test_a_gpu_scores_images_of_one_shape_together_and_a_cpu_one_at_a_time():
    shapes = [(8, 8, 3)] * 10 + [(8, 9, 3)] * 2
    images = [np.zeros(shape, dtype=np.uint8) for shape in shapes]
    assert shape_batches(images, "cuda:0") == [list(range(8)), [8, 9], [10, 11]]
    assert shape_batches(images, "cpu") == [[i] for i in range(12)]


@pytest.mark.parametrize("name", EXTRA)
def test_each_metric_scores_an_image_of_its_declared_smallest_side(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no backbone files: the learned metrics run on stand-ins
    side = quality.get(name).min_side
    rng = np.random.default_rng(11)
    hr = rng.integers(0, 256, (side, side + 3, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-40, 40, hr.shape), 0, 255).astype(np.uint8)
    value = quality.compute(name, sr, hr, crop_border=0, device="cpu", stand_in=True)
    assert np.isfinite(value)

"""Bicubic x4 with our imresize and metrics reproduces the figures SR papers publish (the common convention).

LR: Set5's own LR files; elsewhere our MATLAB-compatible bicubic downscaling of HR cropped to a multiple of 4.
If a figure misses, a convention detail is wrong (Y rounding, crop, SSIM window, resize): fix that, never the tolerance.
"""

import numpy as np
import pytest

from benchmarks.published import COMMON_BICUBIC, DATASETS, PAPER_TABLE2, lookup
from sr_models.datasets import get_dataset
from sr_models.metrics import evaluate_many
from sr_models.resize import imresize

# What this implementation gives (mean PSNR dB, mean SSIM), pinned so that any drift shows; measured once.
OURS = {
    ("Set5", "integer"): (28.4177, 0.81006),
    ("Set5", "float"): (28.4302, 0.81114),
    ("Set14", "integer"): (25.9903, 0.70226),
    ("Set14", "float"): (25.9940, 0.70290),
    ("BSD100", "integer"): (25.9558, 0.66718),
    ("BSD100", "float"): (25.9613, 0.66808),
}


@pytest.fixture(scope="module")
def bicubic_pairs(shared_datasets):
    cache = {}

    def pairs(name):
        if name not in cache:
            dataset = get_dataset(name, data_dir=shared_datasets)
            cache[name] = [(imresize(lr, 4), hr) for lr, hr in map(dataset.load, dataset.images)]
        return cache[name]

    return pairs


def mean_metrics(pairs, convention):
    values = evaluate_many(pairs, convention=convention)
    return np.mean([v["psnr_y"] for v in values]), np.mean([v["ssim_y"] for v in values])


@pytest.mark.parametrize("name", ["Set5", "Set14", pytest.param("BSD100", marks=pytest.mark.slow)])
def test_bicubic_matches_the_common_figures(bicubic_pairs, name):
    pairs = bicubic_pairs(name)
    assert len(pairs) == {"Set5": 5, "Set14": 14, "BSD100": 100}[name]
    psnr, ssim = mean_metrics(pairs, "integer")
    published_psnr, published_ssim = COMMON_BICUBIC[name]
    assert abs(psnr - published_psnr) <= 0.02, (name, psnr)
    assert abs(ssim - published_ssim) <= 0.002, (name, ssim)
    for convention in ("integer", "float"):
        psnr, ssim = mean_metrics(pairs, convention) if convention == "float" else (psnr, ssim)
        assert psnr == pytest.approx(OURS[name, convention][0], abs=1e-3)
        assert ssim == pytest.approx(OURS[name, convention][1], abs=1e-4)


def test_set14_greyscale_image_is_measured_as_grey(bicubic_pairs):
    grey = [(sr, hr) for sr, hr in bicubic_pairs("Set14") if hr.ndim == 2]
    assert len(grey) == 1 and grey[0][0].ndim == 2


def test_set5_own_downscaling_matches_the_given_lr_files(shared_datasets, bicubic_pairs):
    # The given LR files come from a MATLAB pipeline that is not pixel-identical to imresize of HR,
    # but the bicubic x4 PSNR they lead to must agree with ours within 0.01 dB.
    dataset = get_dataset("Set5", data_dir=shared_datasets)
    own = []
    for image in dataset.images:
        hr = dataset.load_hr(image)
        own.append((imresize(imresize(hr, 0.25), 4), hr))
    given_psnr, _ = mean_metrics(bicubic_pairs("Set5"), "integer")
    own_psnr, _ = mean_metrics(own, "integer")
    assert abs(own_psnr - given_psnr) <= 0.01, (own_psnr, given_psnr)


def test_published_tables():
    methods = {"nn", "bicubic", "srresnet-mse", "srgan-vgg54"}
    assert set(PAPER_TABLE2) == {(m, d) for m in methods for d in DATASETS}
    assert lookup("srgan-vgg54", "BSD100") == (25.16, 0.6688)
    assert lookup("srgan-vgg22", "Set5") is None
    for dataset in DATASETS:
        # The paper's bicubic PSNR agrees with the common convention to about 0.02 dB; its SSIM does not.
        assert abs(PAPER_TABLE2["bicubic", dataset][0] - COMMON_BICUBIC[dataset][0]) <= 0.02
        assert PAPER_TABLE2["bicubic", dataset][1] - COMMON_BICUBIC[dataset][1] > 0.01


def test_set5_lr_files_confirm_rounding_after_each_dimension(shared_datasets):
    # MATLAB's imresizemex returns uint8 after each dimension. Set5's LR files (made by MATLAB from slightly different
    # HR) agree with our imresize on 97-99 % of values; rounding only once at the end would agree on under 90 %.
    dataset = get_dataset("Set5", data_dir=shared_datasets)
    for image in dataset.images:
        lr, hr = dataset.load(image)
        per_dimension = imresize(hr, 0.25)
        once_at_end = np.floor(np.clip(imresize(hr.astype(np.float64), 0.25), 0, 255) + 0.5).astype(np.uint8)
        assert np.mean(per_dimension != lr) < 0.03, image.name
        assert np.mean(once_at_end != lr) > 0.09, image.name

"""PSNR/SSIM on Y, pinned by hand-computed values, closed forms, scikit-image and a direct scipy ssim_index."""

import math
import os

import numpy as np
import pytest
from scipy.signal import correlate2d
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sr_models import metrics
from sr_models.errors import SRMOSError
from sr_models.metrics import Y_CONVENTIONS, evaluate_many, evaluate_pair, psnr_rgb, psnr_y, rgb_to_y, ssim_y

C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def natural_pair(seed, shape=(40, 52, 3)):
    """A smooth 'HR' image and a noisy 'SR' version of it, both uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 120 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] + rng.normal(0, 10, shape)
    hr = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    sr = np.clip(np.rint(base + rng.normal(0, 8, shape)), 0, 255).astype(np.uint8)
    return sr, hr


def ssim_index_reference(a, b):
    """Wang et al.'s ssim_index.m written out directly: fspecial('gaussian', 11, 1.5), filter2(..., 'valid')."""
    x = np.arange(11) - 5
    window = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    window /= window.sum()
    a, b = a.astype(np.float64), b.astype(np.float64)

    def filt(m):
        return correlate2d(m, window, mode="valid")

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1**2 + mu2**2 + C1) * (s1 + s2 + C2))
    return ssim_map.mean()


def test_conventions_are_named_and_described():
    assert set(Y_CONVENTIONS) == {"integer", "float"}
    assert all(isinstance(text, str) and text for text in Y_CONVENTIONS.values())


def test_rgb_to_y_by_hand():
    pixels = np.array(
        [[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 150, 200]]], dtype=np.uint8
    )
    # 16 + (65.481 R + 128.553 G + 24.966 B) / 255; (100,150,200): 16 + 30824.25/255 = 136.8794...
    floats = [235.0, 16.0, 81.481, 144.553, 40.966, 16 + 30824.25 / 255]
    np.testing.assert_allclose(rgb_to_y(pixels, "float")[0], floats, atol=1e-12)
    np.testing.assert_array_equal(rgb_to_y(pixels)[0], [235, 16, 81, 145, 41, 137])  # integer is the default
    # An exact tie, also exact in doubles: (65.481*6 + 128.553*34 + 24.966*182)/255 + 16 = 52.5 -> 53 (MATLAB
    # rounds half away from zero; rounding half to even would give 52).
    tie = np.array([[[6, 34, 182]]], dtype=np.uint8)
    assert rgb_to_y(tie, "float")[0, 0] == 52.5
    assert rgb_to_y(tie)[0, 0] == 53
    grey = np.array([[3, 250]], dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_y(grey), [[3, 250]])
    np.testing.assert_array_equal(rgb_to_y(grey, "float"), [[3, 250]])


def test_psnr_by_hand():
    hr = np.zeros((2, 2), np.uint8)
    sr = np.array([[1, 2], [3, 4]], np.uint8)
    # MSE = (1 + 4 + 9 + 16) / 4 = 7.5; 10 log10(255^2 / 7.5) = 10 log10(8670)
    assert psnr_y(sr, hr, crop_border=0) == pytest.approx(39.380190, abs=1e-6)
    assert psnr_y(hr, hr, crop_border=0) == math.inf
    # RGB PSNR over the three channels: MSE = (9 + 16 + 0) / 3
    rgb_hr = np.zeros((1, 1, 3), np.uint8)
    rgb_sr = np.array([[[3, 4, 0]]], np.uint8)
    assert psnr_rgb(rgb_sr, rgb_hr, crop_border=0) == pytest.approx(10 * math.log10(255**2 * 3 / 25), abs=1e-12)


def test_crop_border_removes_the_strip():
    hr = np.full((12, 12), 100, np.uint8)
    sr = hr.copy()
    sr[:4, :] = 0
    sr[:, -4:] = 255  # differences only in the 4-pixel border
    assert psnr_y(sr, hr) == math.inf
    assert ssim_y(sr, hr, crop_border=0) < 1
    sr[5, 5] = 110  # one pixel inside: MSE = 100 / 16 over the 4x4 interior
    assert psnr_y(sr, hr) == pytest.approx(10 * math.log10(255**2 * 16 / 100), abs=1e-12)


def test_ssim_of_constant_images_closed_form():
    # Constant images: all variances are 0, so SSIM = (2 c d + C1) / (c^2 + d^2 + C1).
    hr = np.full((20, 24), 100, np.uint8)
    sr = np.full((20, 24), 110, np.uint8)
    expected = (2 * 100 * 110 + C1) / (100**2 + 110**2 + C1)
    assert ssim_y(sr, hr, crop_border=0) == pytest.approx(expected, abs=1e-7)  # float32 filtering without numba
    assert ssim_y(hr, hr, crop_border=0) == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("convention", ["integer", "float"])
def test_against_scikit_image_and_direct_ssim_index(convention):
    sr, hr = natural_pair(3)
    y_sr, y_hr = rgb_to_y(sr, convention)[4:-4, 4:-4], rgb_to_y(hr, convention)[4:-4, 4:-4]
    assert psnr_y(sr, hr, convention=convention) == pytest.approx(
        peak_signal_noise_ratio(y_hr, y_sr, data_range=255), abs=1e-10
    )
    ours = ssim_y(sr, hr, convention=convention)
    assert ours == pytest.approx(ssim_index_reference(y_sr, y_hr), abs=2e-6)
    # scikit-image pads the borders; its map's interior (5 pixels in) is the 'valid' map.
    _, full = structural_similarity(
        y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, full=True
    )
    assert ours == pytest.approx(full[5:-5, 5:-5].mean(), abs=2e-6)
    assert 0.3 < ours < 0.99  # a real, non-trivial value


def test_conventions_differ_and_grey_is_its_own_y():
    sr, hr = natural_pair(4)
    assert psnr_y(sr, hr, convention="integer") != psnr_y(sr, hr, convention="float")
    grey_sr, grey_hr = sr[..., 1], hr[..., 1]
    assert psnr_y(grey_sr, grey_hr) == pytest.approx(
        peak_signal_noise_ratio(grey_hr[4:-4, 4:-4].astype(float), grey_sr[4:-4, 4:-4].astype(float), data_range=255),
        abs=1e-10,
    )
    assert ssim_y(grey_sr, grey_hr, convention="integer") == ssim_y(grey_sr, grey_hr, convention="float")
    assert ssim_y(grey_sr[..., None], grey_hr[..., None]) == ssim_y(grey_sr, grey_hr)


def test_evaluate_many_matches_one_by_one():
    pairs = [natural_pair(5), natural_pair(6, (30, 33, 3)), natural_pair(7)]
    pairs.append((pairs[0][0][..., 0], pairs[0][1][..., 0]))  # a greyscale pair of the first shape
    pairs.append((pairs[1][1], pairs[1][1]))  # identical
    together = evaluate_many(pairs)
    for (sr, hr), values in zip(pairs, together):
        assert values == evaluate_pair(sr, hr)
        assert values["psnr_y"] == pytest.approx(psnr_y(sr, hr), abs=1e-12)
        assert values["ssim_y"] == pytest.approx(
            ssim_index_reference(rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]), abs=2e-6
        )
    assert together[4] == {"psnr_y": math.inf, "ssim_y": pytest.approx(1.0, abs=1e-7)}
    assert evaluate_many([]) == []


@pytest.mark.parametrize(
    "device, batch_pixels",
    [("cpu", None), ("cpu", 2**24)] + ([("cuda", None)] if __import__("torch").cuda.is_available() else []),
)
def test_device_batches_give_the_same_numbers(device, batch_pixels, monkeypatch):
    if batch_pixels:  # several images per batch on the CPU too
        monkeypatch.setitem(metrics._BATCH_PIXELS, "cpu", batch_pixels)
    pairs = [natural_pair(seed) for seed in range(20, 24)] + [natural_pair(24, (30, 33, 3))]
    one_by_one = [evaluate_pair(sr, hr) for sr, hr in pairs]
    for got, expected in zip(evaluate_many(pairs, device=device), one_by_one):
        assert got["psnr_y"] == pytest.approx(expected["psnr_y"], abs=1e-10)
        assert got["ssim_y"] == pytest.approx(expected["ssim_y"], abs=1e-6)


def test_threads_give_the_same_numbers_and_the_setting_is_restored():
    import torch

    before = torch.get_num_threads()
    pairs = [natural_pair(seed) for seed in range(9, 14)]
    assert evaluate_many(pairs, threads=3) == evaluate_many(pairs, threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(SRMOSError, match="pair 1"):
        evaluate_many([pairs[0], (pairs[1][0], pairs[1][1][:-1])], threads=2)
    with pytest.raises(SRMOSError, match="uint8"):
        evaluate_many([pairs[0], (pairs[1][0].astype(float), pairs[1][1].astype(float))], threads=2)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a, b: psnr_y(a, b[:-1]), "shapes differ"),
        (lambda a, b: evaluate_many([(a, b), (a, b[..., 0])]), "pair 1: SR shape"),
        (lambda a, b: psnr_y(a.astype(np.float32), b), "uint8 images as saved"),
        (lambda a, b: psnr_y(a, b, convention="bt709"), "unknown Y convention"),
        (lambda a, b: psnr_y(a, b, crop_border=-1), "non-negative integer"),
        (lambda a, b: psnr_y(a, b, crop_border=20), "too small"),
        (lambda a, b: ssim_y(a, b, crop_border=15), "at least 11x11"),
        (lambda a, b: psnr_y(np.dstack([a, a[..., :1]]), np.dstack([b, b[..., :1]])), "HxWx3"),
    ],
)
def test_errors(call, message):
    sr, hr = natural_pair(8)
    with pytest.raises(SRMOSError, match=message):
        call(sr, hr)


def matlab_y(rgb):
    """MATLAB rgb2ycbcr's Y on uint8, in its operation order, in numpy float64: T1*R + T2*G + T3*B + 16, rounded
    half away from zero."""
    t1, t2, t3 = (1 / 255 * w for w in (65.481, 128.553, 24.966))
    red, green, blue = (rgb[..., c].astype(np.float64) for c in range(3))
    return np.floor(t1 * red + t2 * green + t3 * blue + 16 + 0.5)


@pytest.mark.parametrize("fused", [True, False])
def test_integer_y_is_matlabs_for_every_colour(fused, monkeypatch):
    # 2^24 colours, 64 values of R at a time; 149 of the 194 exact ties round down in MATLAB's double arithmetic.
    # Both implementations: the numba kernel (CPU, the default) and torch (GPUs, or without numba).
    if not fused:
        monkeypatch.setattr(metrics, "_ssim_numba", None)
    assert metrics._use_numba(__import__("torch").zeros(1)) == (fused and metrics._y_numba is not None)
    green, blue = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8), indexing="ij")
    for first_red in range(0, 256, 64):
        red = np.arange(first_red, first_red + 64, dtype=np.uint8)
        cube = np.stack(np.broadcast_arrays(red[:, None, None], green, blue), axis=-1).reshape(64 * 256, 256, 3)
        np.testing.assert_array_equal(rgb_to_y(cube), matlab_y(cube))


def test_non_contiguous_and_read_only_inputs_are_measured_as_copies():
    sr, hr = natural_pair(30, (44, 36, 3))
    expected = evaluate_pair(sr, hr)
    sr_t, hr_t = np.ascontiguousarray(sr.swapaxes(0, 1)), np.ascontiguousarray(hr.swapaxes(0, 1))
    views = sr_t.swapaxes(0, 1), hr_t.swapaxes(0, 1)  # the same images, Fortran-like strides
    for view in views:
        view.flags.writeable = False
    assert evaluate_many([views, (sr, hr)]) == [expected, expected]
    assert psnr_y(*views) == expected["psnr_y"]
    assert np.array_equal(views[0], sr) and np.array_equal(views[1], hr)


def ssim_index_float64(a, b):
    """ssim_index_reference with separable float64 filtering (scipy correlate1d): fast enough for a whole dataset."""
    from scipy.ndimage import correlate1d

    g = metrics.gaussian_window().numpy()

    def filt(m):
        return correlate1d(correlate1d(m, g, axis=1)[:, 5:-5], g, axis=0)[5:-5]

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    return (((2 * mu1 * mu2 + C1) * (2 * s12 + C2)) / ((mu1**2 + mu2**2 + C1) * (s1 + s2 + C2))).mean()


requires_numba = pytest.mark.skipif(metrics._ssim_numba is None, reason="numba is not installed")


@pytest.mark.slow
def test_bsd100_against_float64(shared_datasets, monkeypatch):
    # Every BSD100 bicubic x4 output: PSNR as a float64 computation gives it; SSIM from the fused kernel within its
    # float32 error (measured max 1.1e-7, mean 1.4e-8), from the torch fallback within its float32 filtering's error
    # (measured max 4.9e-6 integer, 1.3e-6 float; the mean over the dataset within 3e-7).
    from sr_models.datasets import get_dataset
    from sr_models.resize import imresize

    dataset = get_dataset("BSD100", data_dir=shared_datasets)
    pairs = [(imresize(lr, 4), hr) for lr, hr in map(dataset.load, dataset.images)]
    for convention, max_error in (("integer", 1e-5), ("float", 3e-6)):
        ys = [(rgb_to_y(sr, convention)[4:-4, 4:-4], rgb_to_y(hr, convention)[4:-4, 4:-4]) for sr, hr in pairs]
        expected = [ssim_index_float64(y_sr, y_hr) for y_sr, y_hr in ys]
        for fused in [True, False] if metrics._ssim_numba is not None else [False]:
            with monkeypatch.context() as patch:
                if not fused:
                    patch.setattr(metrics, "_ssim_numba", None)
                measured = evaluate_many(pairs, convention=convention)
            errors = []
            for (y_sr, y_hr), values, ssim in zip(ys, measured, expected):
                assert values["psnr_y"] == pytest.approx(
                    10 * math.log10(255**2 / np.mean((y_sr - y_hr) ** 2)), abs=1e-10
                )
                errors.append(values["ssim_y"] - ssim)
            assert max(map(abs, errors)) < (3e-7 if fused else max_error), (convention, fused)
            assert abs(np.mean(errors)) < (5e-8 if fused else 3e-7), (convention, fused)


@requires_numba
@pytest.mark.parametrize("shape", [(11, 11), (11, 80), (40, 52), (23, 75), (64, 138)])
@pytest.mark.parametrize("noise", [3, 40, None])  # None: unrelated images, the worst case for the cancellations
def test_fused_kernel_against_direct_ssim_index_and_torch(shape, noise):
    # The 11x11 minimum, odd sizes, flat-to-noisy pairs; float32, float64 and strided inputs.
    import torch

    rng = np.random.default_rng(sum(shape))
    hr = np.rint(rng.uniform(16, 235, shape))
    sr = (
        np.rint(rng.uniform(16, 235, shape))
        if noise is None
        else np.clip(hr + np.rint(rng.normal(0, noise, shape)), 16, 235)
    )
    expected = ssim_index_reference(sr, hr)
    for dtype in (np.float32, np.float64):
        assert metrics._ssim_numba(sr.astype(dtype), hr.astype(dtype)) == pytest.approx(expected, abs=3e-7)
    strided_sr, strided_hr = np.asfortranarray(sr), hr.T.copy().T
    assert metrics._ssim_numba(strided_sr, strided_hr) == metrics._ssim_numba(sr, hr)
    torch_ssim = metrics._ssim_torch(
        torch.from_numpy(sr[None].astype(np.float32)), torch.from_numpy(hr[None].astype(np.float32))
    )
    assert float(torch_ssim[0]) == pytest.approx(expected, abs=5e-6)


def test_torch_fallback_gives_the_same_numbers(monkeypatch):
    pairs = [natural_pair(seed) for seed in range(40, 43)] + [natural_pair(43, (30, 33, 3))]
    chosen = {convention: evaluate_many(pairs, convention=convention) for convention in Y_CONVENTIONS}
    y = {convention: rgb_to_y(pairs[0][0], convention) for convention in Y_CONVENTIONS}
    monkeypatch.setattr(metrics, "_ssim_numba", None)  # as without numba (GPU tensors always take this path)
    for convention in Y_CONVENTIONS:
        assert np.array_equal(rgb_to_y(pairs[0][0], convention), y[convention])  # Y bit for bit
        for got, expected in zip(evaluate_many(pairs, convention=convention), chosen[convention]):
            assert got["psnr_y"] == expected["psnr_y"]
            assert got["ssim_y"] == pytest.approx(expected["ssim_y"], abs=2e-6)


@requires_numba
@pytest.mark.slow
def test_kernel_compiles_where_no_cache_folder_is_writable():
    # A read-only checkout makes numba cache in the user's folder; where no locator works, numba.njit(cache=True)
    # raises at import, and metrics must still import and compile per process.
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import numpy as np; from sr_models import metrics; "
        "a = np.arange(900, dtype=np.uint8).reshape(30, 30); "
        "print(type(metrics._ssim_numba._cache).__name__, repr(metrics.ssim_y(a, a.T.copy())))"
    )
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="ZipCacheLocator")  # applies only to zipped modules
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    cache, value = result.stdout.split()
    assert cache == "NullCache"
    a = np.arange(900, dtype=np.uint8).reshape(30, 30)
    assert float(value) == ssim_y(a, a.T.copy())

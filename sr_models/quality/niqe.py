"""NIQE (Mittal, Soundararajan, Bovik, IEEE SPL 2013), no-reference, as the authors' MATLAB release computes it
(``niqe_release.zip``: ``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``), in numpy/scipy, with
their pristine-image model (``mu_prisparam``/``cov_prisparam`` of its ``modelparameters.mat``; shipped as
``data/niqe_pris_params.npz``, see ``data/README.md``). This is the NIQE of the SR literature (PIRM, the Perceptual
Index). ``niqe_skvideo`` is scikit-video 1.1.11's variant, whose figures are not comparable with it.

In float64: the grey image cut to whole 96x96 blocks; MSCN coefficients with ``fspecial('gaussian', 7, 7/6)`` and
replicated borders, C = 1; per block (96, then 48 pixels at the second scale, made by MATLAB ``imresize(im, 0.5)``,
``sr_models.resize``) 18 AGGD features of the coefficients and of their products with the four circularly shifted
neighbours; the distance between the blocks' Gaussian and the pristine one. Lower is better.

Input: the Y channel as the SR literature feeds NIQE (the PIRM 2018 challenge's ``convert_shave_image``: MATLAB
``rgb2ycbcr`` on uint8, Y, ``scale`` pixels shaved), i.e. srmos's integer Y with the PSNR border; grey images are
their own Y.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.special

from ..errors import SRMOSError
from ..metrics import rgb_to_y
from ..resize import imresize
from .registry import NO_REFERENCE, QualityMetric, register

BLOCK = 96
PARAMS_FILE = Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"
GAMMAS = np.arange(0.2, 10.0005, 0.001)  # MATLAB 0.2:0.001:10
_GAMMA_RATIO = scipy.special.gamma(2.0 / GAMMAS) ** 2 / (
    scipy.special.gamma(1.0 / GAMMAS) * scipy.special.gamma(3.0 / GAMMAS)
)
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # computefeature.m's circshift offsets


@lru_cache(maxsize=1)
def pristine_model():
    params = np.load(PARAMS_FILE)
    return np.ravel(params["mu_pris_param"]), params["cov_pris_param"]


def to_grey(image):
    """The SR papers' Y: ITU-R BT.601 Y as MATLAB's ``rgb2ycbcr`` gives it on uint8 (``sr_models.metrics``, integer
    convention), as float64; grey images are their own Y."""
    return np.asarray(rgb_to_y(image, "integer"), dtype=np.float64)


def gaussian_window(size=7, sigma=7.0 / 6.0):
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    window = np.outer(g, g)
    return window / window.sum()


def mscn(image):
    """``(im - mu) ./ (sigma + 1)`` with ``imfilter(..., 'replicate')`` moments."""
    window = gaussian_window()
    mu = scipy.ndimage.correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(scipy.ndimage.correlate(image * image, window, mode="nearest") - mu * mu))
    return (image - mu) / (sigma + 1)


def aggd(values):
    """``estimateaggdparam.m``: (alpha, left scale, right scale) of an asymmetric generalised Gaussian."""
    values = values.ravel()
    # A flat block (no negative or no positive value) gives NaN features, as in MATLAB; niqe_grey drops them.
    with np.errstate(all="ignore"):
        left_std = np.sqrt(np.mean(values[values < 0] ** 2)) if (values < 0).any() else np.nan
        right_std = np.sqrt(np.mean(values[values > 0] ** 2)) if (values > 0).any() else np.nan
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
        r_hat_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    if np.isnan(r_hat_norm):
        return np.nan, np.nan, np.nan
    alpha = GAMMAS[np.argmin((_GAMMA_RATIO - r_hat_norm) ** 2)]
    ratio = math.sqrt(scipy.special.gamma(1 / alpha) / scipy.special.gamma(3 / alpha))
    return alpha, left_std * ratio, right_std * ratio


def block_features(block):
    """``computefeature.m``: 18 features of one block of MSCN coefficients."""
    alpha, left, right = aggd(block)
    features = [alpha, (left + right) / 2]
    for shift in SHIFTS:
        alpha, left, right = aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (right - left) * scipy.special.gamma(2 / alpha) / scipy.special.gamma(1 / alpha)
        features += [alpha, mean, left, right]
    return features


def scale_features(coefficients, size, rows, cols):
    """One row per block, blocks in MATLAB's column-major order (the same order at both scales)."""
    return np.array(
        [
            block_features(coefficients[r * size : (r + 1) * size, c * size : (c + 1) * size])
            for c in range(cols)
            for r in range(rows)
        ]
    )


def niqe_grey(grey):
    """NIQE of a grey float image (values 0-255), as ``computequality.m`` with 96x96 blocks, no overlap."""
    rows, cols = grey.shape[0] // BLOCK, grey.shape[1] // BLOCK
    if rows < 2 or cols < 2:
        raise SRMOSError(
            f"NIQE needs at least {2 * BLOCK}x{2 * BLOCK} pixels after the border is removed (2x2 blocks of "
            f"{BLOCK}), not {grey.shape[1]}x{grey.shape[0]}; leave niqe out for this dataset"
        )
    image = np.asarray(grey[: rows * BLOCK, : cols * BLOCK], dtype=np.float64)
    first = scale_features(mscn(image), BLOCK, rows, cols)
    second = scale_features(mscn(imresize(image, 0.5)), BLOCK // 2, rows, cols)
    features = np.hstack([first, second])
    complete = features[~np.isnan(features).any(axis=1)]  # nancov: blocks with a NaN feature left out
    if len(complete) < 2:
        raise SRMOSError("NIQE: the image is flat (fewer than 2 blocks with texture); it has no NIQE")
    pop_mu, pop_cov = pristine_model()
    difference = pop_mu - np.nanmean(features, axis=0)
    inverse = scipy.linalg.pinv((pop_cov + np.cov(complete, rowvar=False)) / 2)
    return float(np.sqrt(difference @ inverse @ difference))


def _batch(srs, hrs, context):
    return [niqe_grey(to_grey(sr)) for sr in srs]


register(
    QualityMetric(
        name="niqe",
        kind=NO_REFERENCE,
        higher_is_better=False,
        space="y-integer",
        convention="Y of MATLAB rgb2ycbcr on uint8 (the integer Y convention), 0-255, the same border removed as "
        "for PSNR (as the PIRM 2018 challenge's code); "
        "the authors' MATLAB NIQE (96x96 blocks, 2 scales) and pristine model",
        source="srmos numpy/scipy port of the authors' niqe_release; pristine model from BasicSR 1.4.2's "
        "niqe_pris_params.npz (LIVE modelparameters.mat)",
        paper="Mittal, Soundararajan, Bovik, 'Making a completely blind image quality analyzer', IEEE SPL 2013",
        batch=_batch,
        min_side=2 * BLOCK,
    )
)

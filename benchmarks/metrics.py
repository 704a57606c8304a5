"""PSNR and SSIM on the luma (Y) channel, as super-resolution papers compute them.

- Y is ITU-R BT.601 luma in [16, 235]: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in 0..255.
  Two conventions exist (``Y_CONVENTIONS``): ``"integer"`` rounds Y to whole numbers as MATLAB's ``rgb2ycbcr`` does on
  uint8 images (the default: the MATLAB scripts behind most SR papers' tables), ``"float"`` keeps it unrounded
  (BasicSR's ``bgr2ycbcr(..., y_only=True)``). Single-channel images (``HxW``) are their own Y.
- ``crop_border`` pixels (the scale, 4) are removed at each border before measuring.
- PSNR = 10 log10(255^2 / MSE); identical images give ``inf`` (tables must print it as such).
- SSIM follows Wang et al.'s reference ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5, normalised), K1 = 0.01,
  K2 = 0.03, data range 255, 'valid' filtering (no padding), mean of the SSIM map, no downsampling.

Inputs are uint8 arrays as saved. Y and PSNR are computed in float64 with torch, SSIM's separable Gaussian filtering
with conv2d (see ``_ssim`` on precision), so a whole dataset is measured in one batched call (``evaluate_many``).
"""
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from sr_models.errors import SRMOSError

Y_CONVENTIONS = {
    "integer": "Y = round(16 + (65.481 R + 128.553 G + 24.966 B) / 255), MATLAB rgb2ycbcr on uint8 (most SR papers)",
    "float": "Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 unrounded, BasicSR bgr2ycbcr y_only",
}
# MATLAB rgb2ycbcr: for uint8 input T = origT / 255 and offset = [16; 128; 128]; imlincomb then rounds to uint8.
_Y_WEIGHTS = (65.481 / 255, 128.553 / 255, 24.966 / 255)
_Y_OFFSET = 16.0
DATA_RANGE = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_CHUNK = 16  # images per batch in evaluate_many: bounds memory (5 float maps per image) and stays cache-friendly


def _check_convention(convention):
    if convention not in Y_CONVENTIONS:
        raise SRMOSError(f"unknown Y convention {convention!r}; use one of {', '.join(Y_CONVENTIONS)}")


def _as_uint8_batch(images, what):
    """uint8 ``HxW``/``HxWx1``/``HxWx3`` arrays (all one shape) -> uint8 tensor ``N x H x W x C``."""
    first = np.asarray(images[0])
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise SRMOSError(f"{what} must be uint8 images as saved, got {image.dtype}; round and clip to 0..255 first")
        if image.ndim == 2:
            continue
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise SRMOSError(f"{what} must be HxW (grey) or HxWx3 (RGB), got shape {image.shape}")
    batch = np.stack([np.asarray(image) for image in images]) if len(images) > 1 else first[None]
    if batch.ndim == 3:
        batch = batch[..., None]
    return torch.from_numpy(np.array(batch, copy=True))  # a private copy: callers' arrays may be read-only


def _y(batch, convention):
    """``N x H x W x C`` uint8 tensor -> ``N x H x W`` float64 luma (grey: the channel itself)."""
    _check_convention(convention)
    values = batch.to(torch.float64)
    if values.shape[-1] == 1:
        return values[..., 0]
    wr, wg, wb = _Y_WEIGHTS
    # Same order of operations as MATLAB's imlincomb: T1*R + T2*G + T3*B + offset.
    y = wr * values[..., 0] + wg * values[..., 1] + wb * values[..., 2] + _Y_OFFSET
    if convention == "integer":
        y = torch.floor(y + 0.5)  # Y > 0, so this is MATLAB's round half away from zero
    return y


def _crop(batch, crop_border):
    if crop_border < 0 or int(crop_border) != crop_border:
        raise SRMOSError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    if crop_border == 0:
        return batch
    height, width = batch.shape[1:3]
    if height <= 2 * crop_border or width <= 2 * crop_border:
        raise SRMOSError(f"a {height}x{width} image is too small to remove {crop_border} pixels at each border")
    return batch[:, crop_border:height - crop_border, crop_border:width - crop_border]


def _pair_batches(sr_images, hr_images, crop_border):
    sr = _as_uint8_batch(sr_images, "SR")
    hr = _as_uint8_batch(hr_images, "HR")
    if sr.shape != hr.shape:
        shape = lambda b: tuple(b.shape[1:3]) + (() if b.shape[3] == 1 else (b.shape[3],))  # noqa: E731
        raise SRMOSError(f"SR and HR shapes differ: {shape(sr)} vs {shape(hr)}; the SR image must be exactly "
                         f"the HR size (crop HR to a multiple of the scale)")
    return _crop(sr, crop_border), _crop(hr, crop_border)


def _psnr(a, b):
    """Per-image PSNR of ``N x ...`` float64 tensors with peak 255; inf where identical."""
    mse = ((a - b) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(DATA_RANGE**2 / mse)  # mse == 0 gives inf


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """The 1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)`` (normalised to sum 1), float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _ssim(x, y):
    """Per-image mean SSIM of ``N x H x W`` float64 luma tensors (Wang et al., 'valid' Gaussian filtering).

    The filtering runs in float32 on CPU (4x faster than float64) on values centred at 128, which keeps the
    variance's cancellation error near 1e-3 against C2 = 58.5: SSIM agrees with float64 to about 1e-6. Other devices
    use float64 (no TF32 rounding on GPUs).
    """
    if min(x.shape[1:]) < SSIM_WINDOW:
        raise SRMOSError(f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, "
                         f"got {tuple(x.shape[1:])}")
    work = torch.float32 if x.device.type == "cpu" else torch.float64
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    g = gaussian_window().to(device=x.device, dtype=work)
    xc, yc = (x - 128).to(work), (y - 128).to(work)
    # The five local moments as channels, filtered separably (rows then columns) with no padding.
    maps = torch.stack([xc, yc, xc * xc, yc * yc, xc * yc], dim=1)
    maps = F.conv2d(maps, g.view(1, 1, 1, -1).expand(5, 1, 1, -1), groups=5)
    maps = F.conv2d(maps, g.view(1, 1, -1, 1).expand(5, 1, -1, 1), groups=5)
    mu_xc, mu_yc, xx, yy, xy = maps.double().unbind(dim=1)
    sigma_x, sigma_y, sigma_xy = xx - mu_xc * mu_xc, yy - mu_yc * mu_yc, xy - mu_xc * mu_yc
    mu_x, mu_y = mu_xc + 128, mu_yc + 128
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def rgb_to_y(image, convention="integer"):
    """BT.601 luma of a uint8 ``HxWx3`` image as a float64 ``HxW`` array (``HxW`` grey images are returned as is)."""
    return _y(_as_uint8_batch([image], "image"), convention)[0].numpy()


def psnr_y(sr, hr, crop_border=4, convention="integer"):
    """PSNR (dB) on Y after removing ``crop_border`` pixels at each border; inf for identical images."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    return float(_psnr(_y(sr_b, convention), _y(hr_b, convention))[0])


def ssim_y(sr, hr, crop_border=4, convention="integer"):
    """SSIM (Wang et al.'s reference implementation) on Y after removing ``crop_border`` pixels at each border."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    return float(_ssim(_y(sr_b, convention), _y(hr_b, convention))[0])


def psnr_rgb(sr, hr, crop_border=4):
    """PSNR (dB) over all colour channels (grey images: the one channel) after the border crop."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    return float(_psnr(sr_b.to(torch.float64), hr_b.to(torch.float64))[0])


def evaluate_pair(sr, hr, crop_border=4, convention="integer"):
    """``{"psnr_y": dB, "ssim_y": ...}`` for one SR/HR pair."""
    return evaluate_many([(sr, hr)], crop_border=crop_border, convention=convention)[0]


def evaluate_many(pairs, crop_border=4, convention="integer", device=None):
    """``evaluate_pair`` for many ``(sr, hr)`` pairs at once: pairs of one shape are measured as one batch.

    Returns one dict per pair, in order. ``device`` (e.g. ``"cuda"``) is where the arithmetic runs (default CPU).
    """
    pairs = list(pairs)
    by_shape = defaultdict(list)
    for index, (sr, hr) in enumerate(pairs):
        if np.shape(sr) != np.shape(hr):
            raise SRMOSError(f"pair {index}: SR shape {np.shape(sr)} differs from HR shape {np.shape(hr)}; the SR "
                             f"image must be exactly the HR size (crop HR to a multiple of the scale)")
        by_shape[np.shape(sr)].append(index)
    results = [None] * len(pairs)
    chunks = [ids[i:i + _CHUNK] for ids in by_shape.values() for i in range(0, len(ids), _CHUNK)]
    for indices in chunks:
        sr_b, hr_b = _pair_batches([pairs[i][0] for i in indices], [pairs[i][1] for i in indices], crop_border)
        y_sr = _y(sr_b.to(device), convention)
        y_hr = _y(hr_b.to(device), convention)
        psnrs = _psnr(y_sr, y_hr).tolist()
        ssims = _ssim(y_sr, y_hr).tolist()
        for i, p, s in zip(indices, psnrs, ssims):
            results[i] = {"psnr_y": p, "ssim_y": s}
    return results


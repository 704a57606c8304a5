"""PSNR and SSIM on the luma (Y) channel, as super-resolution papers compute them.

- Y is ITU-R BT.601 luma in [16, 235]: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in 0..255.
  Two conventions exist (``Y_CONVENTIONS``): ``"integer"`` rounds Y to whole numbers as MATLAB's ``rgb2ycbcr`` does on
  uint8 images (the default: the MATLAB scripts behind most SR papers' tables), ``"float"`` keeps it unrounded
  (BasicSR's ``bgr2ycbcr(..., y_only=True)``). Single-channel images (``HxW``) are their own Y.
- ``crop_border`` pixels (the scale, 4) are removed at each border before measuring.
- PSNR = 10 log10(255^2 / MSE); identical images give ``inf`` (tables must print it as such).
- SSIM follows Wang et al.'s reference ``ssim_index.m``: 11x11 Gaussian window (sigma 1.5, normalised), K1 = 0.01,
  K2 = 0.03, data range 255, 'valid' filtering (no padding), mean of the SSIM map, no downsampling.

Inputs are uint8 arrays as saved. Y is computed in float64 (integer Y is then kept as float32, which holds whole
numbers exactly), PSNR's sums in float64. On the CPU with numba installed, Y (``_y_numba``, the same arithmetic) and
SSIM (``_ssim_numba``, one fused pass per image) are numba kernels; on GPUs, or without numba, batched torch
operations (``_ssim_torch`` filters in float32); ``_use_numba`` chooses. A whole dataset is measured in one call
(``evaluate_many``).

This module lives in ``sr_models`` (as BasicSR keeps its metrics beside its models) so that the trainer's validation
and the benchmark harness (``benchmarks.runner``, ``benchmarks.tables``) measure with the same code;
``check_convention`` is the one check of a convention name.
"""

import contextlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from sr_models.errors import SRMOSError

try:  # optional: the fused CPU SSIM kernel; without it the torch operations below do the same job, slower
    import numba
except ImportError:  # pragma: no cover - exercised by forcing the fallback in the tests
    numba = None

Y_CONVENTIONS = {
    "integer": "Y = round(16 + (65.481 R + 128.553 G + 24.966 B) / 255), MATLAB rgb2ycbcr on uint8 (most SR papers)",
    "float": "Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 unrounded, BasicSR bgr2ycbcr y_only",
}
# MATLAB rgb2ycbcr on uint8: T = (1/255) * origT (this product, not 65.481/255, which differs in the last bit) and
# offset 16; imlincomb sums in double and rounds half away from zero to uint8. Of the 2^24 colours, 194 give exactly
# k + 0.5 in exact arithmetic, where the order of the double operations can decide the rounding; we sum
# T1*R + T2*G + T3*B + offset left to right, in imlincomb's argument order.
_Y_WEIGHTS = (1 / 255 * 65.481, 1 / 255 * 128.553, 1 / 255 * 24.966)
_Y_OFFSET = 16.0
DATA_RANGE = 255.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Pixels per batch in evaluate_many. On CPU the SSIM filtering is memory-bound: one ~0.2 MP image (4 float32 maps,
# ~3 MB) stays in cache and runs 2-3x faster than 16 stacked; GPUs want big batches.
_BATCH_PIXELS = {"cpu": 2**18, "other": 2**25}


def check_convention(convention):
    """The description of a Y convention (a key of ``Y_CONVENTIONS``); an unknown name raises ``SRMOSError``."""
    if convention not in Y_CONVENTIONS:
        raise SRMOSError(f"unknown Y convention {convention!r}; choose one of {', '.join(Y_CONVENTIONS)}")
    return Y_CONVENTIONS[convention]


def _as_uint8_batch(images, what):
    """uint8 ``HxW``/``HxWx1``/``HxWx3`` arrays (all one shape) -> uint8 tensor ``N x C x H x W``.

    Planar, because every later step works on whole planes: one numpy copy separates the channels here, where
    reading every third byte in torch cost more than all the Y arithmetic.
    """
    arrays = [np.asarray(image) for image in images]
    for image in arrays:
        if image.dtype != np.uint8:
            raise SRMOSError(f"{what} must be uint8 images as saved, got {image.dtype}; round and clip to 0..255 first")
        if image.ndim == 2:
            continue
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise SRMOSError(f"{what} must be HxW (grey) or HxWx3 (RGB), got shape {image.shape}")
    height, width = arrays[0].shape[:2]
    channels = arrays[0].shape[2] if arrays[0].ndim == 3 else 1
    batch = np.empty((len(arrays), channels, height, width), dtype=np.uint8)  # a private copy: inputs may be read-only
    for planes, image in zip(batch, arrays):
        planes[...] = np.moveaxis(image, -1, 0) if image.ndim == 3 else image
    return torch.from_numpy(batch)


def _y(batch, convention):
    """``N x C x H x W`` uint8 tensor -> ``N x H x W`` luma (grey: the channel itself).

    Whole-number luma (``"integer"`` Y, grey images) comes back as float32, which holds it exactly and halves the
    memory traffic of everything after; ``"float"`` Y stays float64.
    """
    check_convention(convention)
    if batch.shape[1] == 1:
        return batch[:, 0].to(torch.float32)
    if _use_numba(batch):  # the same arithmetic in one pass, no float64 planes
        n, _, height, width = batch.shape
        y = torch.empty((n, height, width), dtype=torch.float32 if convention == "integer" else torch.float64)
        _y_numba(batch.numpy(), convention == "integer", y.numpy())
        return y
    # One contiguous float64 plane per channel (fast, vectorised arithmetic), in place from there. The arithmetic is
    # MATLAB's: T1*R + T2*G + T3*B + offset, each product rounded, summed left to right.
    red, green, blue = (batch[:, channel].to(torch.float64) for channel in range(3))
    y = red.mul_(_Y_WEIGHTS[0]).add_(green.mul_(_Y_WEIGHTS[1])).add_(blue.mul_(_Y_WEIGHTS[2]))
    if convention == "integer":
        # MATLAB rounds y = sum + 16 half away from zero (y > 0): floor(y + 0.5). floor(sum + 16.5) is one pass less
        # and gives the same Y for every one of the 2^24 colours (checked exhaustively in the tests).
        return y.add_(_Y_OFFSET + 0.5).floor_().to(torch.float32)
    return y.add_(_Y_OFFSET)


def _crop(batch, crop_border):
    if crop_border < 0 or int(crop_border) != crop_border:
        raise SRMOSError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    if crop_border == 0:
        return batch
    height, width = batch.shape[-2:]
    if height <= 2 * crop_border or width <= 2 * crop_border:
        raise SRMOSError(f"a {height}x{width} image is too small to remove {crop_border} pixels at each border")
    return batch[..., crop_border : height - crop_border, crop_border : width - crop_border]


def _pair_batches(sr_images, hr_images, crop_border):
    sr = _as_uint8_batch(sr_images, "SR")
    hr = _as_uint8_batch(hr_images, "HR")
    if sr.shape != hr.shape:
        shape = lambda b: tuple(b.shape[2:]) + (() if b.shape[1] == 1 else (b.shape[1],))  # noqa: E731
        raise SRMOSError(
            f"SR and HR shapes differ: {shape(sr)} vs {shape(hr)}; the SR image must be exactly "
            f"the HR size (crop HR to a multiple of the scale)"
        )
    return _crop(sr, crop_border), _crop(hr, crop_border)


def _psnr(a, b):
    """Per-image PSNR of ``N x ...`` tensors with peak 255; inf where identical.

    Float32 inputs must hold whole numbers (their differences and squares are then exact); sums run in float64.
    """
    mse = torch.sub(a, b).square_().flatten(1).sum(dim=1, dtype=torch.float64) / a[0].numel()
    return 10 * torch.log10(DATA_RANGE**2 / mse)  # mse == 0 gives inf


def gaussian_window(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """The 1-D factor of MATLAB's ``fspecial('gaussian', size, sigma)`` (normalised to sum 1), float64."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


_WINDOW = gaussian_window().tolist()


def _filter_valid(maps, g):
    """'valid' correlation of the last two axes with the separable window ``g`` (outer(g, g)).

    Written as shifted multiply-adds (22 passes over the maps). On CPU this beat oneDNN's depthwise conv2d in every
    layout tried (planar kernels are slow; channels-last needs transposing copies that cost what the convolutions
    save; docs/metrics.md), and it involves no TF32 on GPUs.
    """
    taps = len(g)
    width = maps.shape[-1] - taps + 1
    # Along the rows as shifts of the flattened maps: flat loops run ~15 % faster than row-by-row slices; the last
    # taps - 1 columns of each row mix in the next row and are never read.
    flat, rows = maps.contiguous().view(-1), torch.empty_like(maps)
    length = flat.numel() - taps + 1
    rows_flat = torch.mul(flat[0:length], g[0], out=rows.view(-1)[0:length])
    for k in range(1, taps):
        rows_flat.add_(flat[k : k + length], alpha=float(g[k]))
    rows = rows[..., 0:width]
    height = maps.shape[-2] - taps + 1
    out = rows[..., 0:height, :] * g[0]
    for k in range(1, taps):
        out.add_(rows[..., k : k + height, :], alpha=float(g[k]))
    return out


_C1 = (SSIM_K1 * DATA_RANGE) ** 2
_C2 = (SSIM_K2 * DATA_RANGE) ** 2


def _use_numba(tensor):
    """Whether the numba kernels (``_y_numba``, ``_ssim_numba``) do the work for ``tensor``: CPU tensors, when numba is
    installed; torch operations otherwise (GPUs, or no numba). The one place that chooses."""
    return _ssim_numba is not None and tensor.device.type == "cpu"


def _ssim(x, y):
    """Per-image mean SSIM (float64 tensor ``N``) of ``N x H x W`` float32/float64 luma tensors: the fused numba
    kernel or batched torch operations (``_use_numba``)."""
    if min(x.shape[1:]) < SSIM_WINDOW:
        raise SRMOSError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after cropping, got {tuple(x.shape[1:])}"
        )
    if _use_numba(x):
        return torch.tensor([_ssim_numba(a.numpy(), b.numpy()) for a, b in zip(x, y)], dtype=torch.float64)
    return _ssim_torch(x, y)


def _ssim_torch(x, y):
    """``_ssim`` with torch operations (Wang et al., 'valid' Gaussian filtering), any device, batched.

    The filtering runs in float32 (half the memory traffic of float64) on values centred at 128, which keeps the
    variances' cancellation error near 1e-3 against C2 = 58.5: on BSD100 each image's SSIM is within 5e-6 of a
    float64 computation (integer Y; 1.3e-6 for float Y) and the dataset mean within 3e-7 (tested).
    """
    c1, c2 = _C1, _C2
    n, height, width = x.shape
    # SSIM needs only mu_x, mu_y, sigma_x^2 + sigma_y^2 and sigma_xy: four local moments of the centred images,
    # filtered together, then everything in place (each step is a pass over memory; fewer passes, less time).
    maps = torch.empty((n, 4, height, width), dtype=torch.float32, device=x.device)
    xc, yc = maps[:, 0], maps[:, 1]
    torch.sub(x, 128, out=xc)
    torch.sub(y, 128, out=yc)
    torch.mul(xc, xc, out=maps[:, 2]).addcmul_(yc, yc)
    torch.mul(xc, yc, out=maps[:, 3])
    mu_x, mu_y, sigma_sum, sigma_xy = _filter_valid(maps, _WINDOW).unbind(dim=1)
    sigma_sum.addcmul_(mu_x, mu_x, value=-1).addcmul_(mu_y, mu_y, value=-1)  # E[x^2 + y^2] - mu_x^2 - mu_y^2
    sigma_xy.addcmul_(mu_x, mu_y, value=-1)  # E[xy] - mu_x mu_y
    mu_x.add_(128)
    mu_y.add_(128)
    # (2 mu_x mu_y + C1)(2 sigma_xy + C2) / 4, two passes fewer; scaling by powers of 2 is exact, so the 4 put back
    # on the sum gives the same bits.
    quarter_numerator = torch.mul(mu_x, mu_y).add_(c1 / 2).mul_(sigma_xy.add_(c2 / 2))
    denominator = torch.mul(mu_x, mu_x).addcmul_(mu_y, mu_y).add_(c1).mul_(sigma_sum.add_(c2))
    quarter_ssim_map = quarter_numerator.div_(denominator)
    return 4 * quarter_ssim_map.flatten(1).sum(dim=1, dtype=torch.float64) / quarter_ssim_map[0].numel()


# The fused CPU kernel. Per image, one pass: each input row gives four moments, filtered along the row into a ring
# buffer of the last 11 filtered rows; each full ring gives one output row by the column filter, fused with the SSIM
# formula and a float64 running sum; no full-size map is ever written. The moments are of u = x + y - 256 and
# v = x - y (u, v, u^2, v^2: products made on the fly): sigma_x^2 + sigma_y^2 = (var_u + var_v) / 2 and
# sigma_xy = (var_u - var_v) / 4, so the float32 rounding error of the large var_u enters numerator and denominator
# alike and cancels, leaving ~1e-7 from a float64 computation (x, y moments in float32: 3e-6; tested on BSD100) at
# half float64's cost. The filters use the window's symmetry, g[k] (a[k] + a[10 - k]): 6 products for 11 taps.
_G0, _G1, _G2, _G3, _G4, _G5 = (np.float32(weight) for weight in _WINDOW[:6])
if numba is not None:

    def _compiled(**options):
        """``numba.njit`` that caches the machine code (in ``__pycache__``, or the user's cache folder where the
        checkout is read-only; numba picks) and, where no folder is writable, compiles once per process instead."""

        def decorate(function):
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError:  # "cannot cache function ...: no locator available"
                return numba.njit(**options)(function)

        return decorate

    @_compiled(nogil=True)  # no fastmath: MATLAB's operation order, each product rounded, as in _y
    def _y_numba(rgb, integer, out):
        """``_y`` of an ``N x 3 x H x W`` uint8 array into ``out`` (``N x H x W``, float32 for integer Y)."""
        n, _, height, width = rgb.shape
        offset = _Y_OFFSET + 0.5 if integer else _Y_OFFSET
        for i in range(n):
            for r in range(height):
                for c in range(width):
                    y = (
                        _Y_WEIGHTS[0] * np.float64(rgb[i, 0, r, c])
                        + _Y_WEIGHTS[1] * np.float64(rgb[i, 1, r, c])
                        + _Y_WEIGHTS[2] * np.float64(rgb[i, 2, r, c])
                    )
                    out[i, r, c] = np.floor(y + offset) if integer else y + offset

    @numba.njit(inline="always")
    def _row_tap(row, m, j):
        """Window-weighted sum of ``row[m, j:j + 11]``."""
        return (
            _G5 * row[m, j + 5]
            + _G0 * (row[m, j] + row[m, j + 10])
            + _G1 * (row[m, j + 1] + row[m, j + 9])
            + _G2 * (row[m, j + 2] + row[m, j + 8])
            + _G3 * (row[m, j + 3] + row[m, j + 7])
            + _G4 * (row[m, j + 4] + row[m, j + 6])
        )

    @numba.njit(inline="always")
    def _column_tap(ring, q, m, j):
        """Window-weighted sum of ``ring[q[k], m, j]`` over the 11 ring slots ``q`` (oldest row first)."""
        return (
            _G5 * ring[q[5], m, j]
            + _G0 * (ring[q[0], m, j] + ring[q[10], m, j])
            + _G1 * (ring[q[1], m, j] + ring[q[9], m, j])
            + _G2 * (ring[q[2], m, j] + ring[q[8], m, j])
            + _G3 * (ring[q[3], m, j] + ring[q[7], m, j])
            + _G4 * (ring[q[4], m, j] + ring[q[6], m, j])
        )

    # fastmath (reassociation) only here: it lets the sum over the row vectorise; error_model="numpy" drops the
    # zero-division check that would otherwise keep the loop scalar (denominators are >= C1 * C2 > 0).
    @_compiled(nogil=True, fastmath=True, error_model="numpy")
    def _ssim_row_sum(ring, first_row, width):
        """Sum of the SSIM map over one output row, from the ring holding row-filtered input rows first_row.."""
        q = (
            first_row % 11,
            (first_row + 1) % 11,
            (first_row + 2) % 11,
            (first_row + 3) % 11,
            (first_row + 4) % 11,
            (first_row + 5) % 11,
            (first_row + 6) % 11,
            (first_row + 7) % 11,
            (first_row + 8) % 11,
            (first_row + 9) % 11,
            (first_row + 10) % 11,
        )
        total = 0.0
        for j in range(width):
            # The filtering in float32; the formula in float64, where the luminance term's products would otherwise
            # round to ~2e-7.
            mean_u, mean_v = _column_tap(ring, q, 0, j), _column_tap(ring, q, 1, j)
            var_u = np.float64(_column_tap(ring, q, 2, j) - mean_u * mean_u)
            var_v = np.float64(_column_tap(ring, q, 3, j) - mean_v * mean_v)
            mu_x = 0.5 * (np.float64(mean_u) + np.float64(mean_v)) + 128.0
            mu_y = 0.5 * (np.float64(mean_u) - np.float64(mean_v)) + 128.0
            total += (
                (2.0 * mu_x * mu_y + _C1)
                * (0.5 * (var_u - var_v) + _C2)
                / ((mu_x * mu_x + mu_y * mu_y + _C1) * (0.5 * (var_u + var_v) + _C2))
            )
        return total

    @_compiled(nogil=True, fastmath={"contract"})
    def _ssim_numba(x, y):
        """Mean SSIM of two ``H x W`` luma arrays (any float dtype and strides), as ``_ssim_torch`` defines it."""
        height, width = x.shape
        out_width = width - 10
        row = np.empty((4, width), np.float32)
        ring = np.empty((11, 4, out_width), np.float32)
        total = 0.0
        for r in range(height):
            for j in range(width):
                a, b = np.float32(x[r, j]), np.float32(y[r, j])
                u, v = a + b - np.float32(256), a - b
                row[0, j], row[1, j], row[2, j], row[3, j] = u, v, u * u, v * v
            slot = r % 11
            for m in range(4):
                for j in range(out_width):
                    ring[slot, m, j] = _row_tap(row, m, j)
            if r >= 10:
                total += _ssim_row_sum(ring, r - 10, out_width)
        return total / ((height - 10) * out_width)
else:  # pragma: no cover
    _ssim_numba = _y_numba = None


@contextlib.contextmanager
def _cpu_threads(threads):
    """Run the block with ``threads`` torch CPU threads (None: leave torch's setting alone)."""
    previous = torch.get_num_threads()
    if threads is None or threads == previous:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def rgb_to_y(image, convention="integer"):
    """BT.601 luma of a uint8 ``HxWx3`` image as a float64 ``HxW`` array (``HxW`` grey images are returned as is)."""
    return _y(_as_uint8_batch([image], "image"), convention)[0].to(torch.float64).numpy()


def psnr_y(sr, hr, crop_border=4, convention="integer"):
    """PSNR (dB) on Y after removing ``crop_border`` pixels at each border; inf for identical images."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    with _cpu_threads(1):
        return float(_psnr(_y(sr_b, convention), _y(hr_b, convention))[0])


def ssim_y(sr, hr, crop_border=4, convention="integer"):
    """SSIM (Wang et al.'s reference implementation) on Y after removing ``crop_border`` pixels at each border."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    with _cpu_threads(1):
        return float(_ssim(_y(sr_b, convention), _y(hr_b, convention))[0])


def psnr_rgb(sr, hr, crop_border=4):
    """PSNR (dB) over all colour channels (grey images: the one channel) after the border crop."""
    sr_b, hr_b = _pair_batches([sr], [hr], crop_border)
    return float(_psnr(sr_b.to(torch.float64), hr_b.to(torch.float64))[0])


def evaluate_pair(sr, hr, crop_border=4, convention="integer"):
    """``{"psnr_y": dB, "ssim_y": ...}`` for one SR/HR pair."""
    return evaluate_many([(sr, hr)], crop_border=crop_border, convention=convention)[0]


def evaluate_many(pairs, crop_border=4, convention="integer", device=None, threads=None):
    """``evaluate_pair`` for many ``(sr, hr)`` pairs at once; returns one dict per pair, in order.

    ``device`` (e.g. ``"cuda"``) is where the arithmetic runs (default CPU): there pairs of one shape go in large
    batches. On the CPU each batch is one image (it stays in cache) and ``threads`` images (default: torch's thread
    count) are measured side by side, each with single-threaded torch operations: the operations are too small to
    share, and on a busy machine the hand-offs of multi-threaded operations made BSD100 25x slower (26.7 s, not 1.0 s).
    """
    pairs = list(pairs)
    by_shape = defaultdict(list)
    for index, (sr, hr) in enumerate(pairs):
        if np.shape(sr) != np.shape(hr):
            raise SRMOSError(
                f"pair {index}: SR shape {np.shape(sr)} differs from HR shape {np.shape(hr)}; the SR "
                f"image must be exactly the HR size (crop HR to a multiple of the scale)"
            )
        by_shape[np.shape(sr)].append(index)
    on_cpu = torch.device(device or "cpu").type == "cpu"
    budget = _BATCH_PIXELS["cpu" if on_cpu else "other"]
    batches = []
    for shape, ids in by_shape.items():
        per_batch = max(1, budget // (shape[0] * shape[1]))
        batches += [ids[i : i + per_batch] for i in range(0, len(ids), per_batch)]

    def measure(indices):
        sr_b, hr_b = _pair_batches([pairs[i][0] for i in indices], [pairs[i][1] for i in indices], crop_border)
        y_sr = _y(sr_b.to(device), convention)
        y_hr = _y(hr_b.to(device), convention)
        return zip(indices, _psnr(y_sr, y_hr).tolist(), _ssim(y_sr, y_hr).tolist())

    workers = (threads or torch.get_num_threads()) if on_cpu else 1
    results = [None] * len(pairs)
    with _cpu_threads(1 if on_cpu else None):
        if workers > 1 and len(batches) > 1:
            with ThreadPoolExecutor(min(workers, len(batches))) as pool:
                measured = list(pool.map(measure, batches))
        else:
            measured = [measure(indices) for indices in batches]
    for batch in measured:
        for i, psnr, ssim in batch:
            results[i] = {"psnr_y": psnr, "ssim_y": ssim}
    return results


def mean_psnr_ssim(upscale, pairs, crop_border=4, convention="integer"):
    """Mean Y PSNR (dB) and SSIM of ``upscale(lr)`` against ``hr`` over ``(lr, hr)`` uint8 pairs: the figure the
    trainer validates with and the shipped weights' README reports."""
    psnrs, ssims = [], []
    for lr, hr in pairs:
        sr = upscale(lr)
        psnrs.append(psnr_y(sr, hr, crop_border=crop_border, convention=convention))
        ssims.append(ssim_y(sr, hr, crop_border=crop_border, convention=convention))
    return sum(psnrs) / len(psnrs), sum(ssims) / len(ssims)

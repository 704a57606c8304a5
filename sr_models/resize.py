"""MATLAB-compatible ``imresize`` (bicubic with antialiasing, or nearest) for numpy arrays and torch tensors.

Follows MATLAB's published algorithm (``imresize.m``, ``contributions``):

- cubic kernel with a = -0.5; when shrinking with antialiasing the kernel is stretched by 1/scale
  (``h(x) = scale * cubic(scale * x)``) and its width grows from 4 to 4/scale;
- output pixel x (1-based) maps to input coordinate ``u = x/scale + 0.5*(1 - 1/scale)``;
- ``ceil(width) + 2`` taps starting at ``floor(u - width/2)``, weights normalised to sum 1, indices outside the
  image mirrored (``[1..n, n..1]`` repeated), taps whose weight is zero for every output pixel dropped;
- the dimension with the smaller scale is resized first; uint8 images are rounded (half away from zero) and
  clipped to 0..255 after each dimension, as MATLAB's ``imresizemex`` returns the input's class.

``_contributions`` is the one place weights are computed; the numpy path applies them as a gathered sum over taps
(MATLAB's order), the torch path as a dense matrix product per axis (fast on CPU and GPU).
"""

import functools
import math
import numbers

import numpy as np
import torch

from sr_models.errors import SRMOSError

METHODS = ("bicubic", "nearest")


def cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2))
    return near + far


def box(x):
    """MATLAB's box kernel for ``'nearest'``: 1 on [-0.5, 0.5)."""
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


_KERNELS = {"bicubic": (cubic, 4.0), "nearest": (box, 1.0)}


def _contributions(in_len, out_len, scale, kernel, width, antialias):
    """MATLAB's ``contributions``: weights (out_len x taps) and 0-based input indices (out_len x taps)."""
    if scale < 1 and antialias:
        # Antialiasing: stretch the kernel so it low-passes at the output's Nyquist rate.
        def h(x):
            return scale * kernel(scale * x)

        width = width / scale
    else:
        h = kernel
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = h(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # Symmetric borders: 1-based index i reads aux[(i - 1) mod 2n] with aux = [1..n, n..1].
    aux = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    indices = aux[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


@functools.lru_cache(maxsize=256)
def _axis_weights(in_len, out_len, scale, method):
    weights, indices = _contributions(in_len, out_len, scale, *_KERNELS[method], antialias=method != "nearest")
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


@functools.lru_cache(maxsize=256)
def _axis_matrix(in_len, out_len, scale, method):
    """The same weights as a dense (out_len x in_len) matrix; mirrored taps that hit one pixel add up."""
    weights, indices = _axis_weights(in_len, out_len, scale, method)
    matrix = np.zeros((out_len, in_len))
    rows = np.broadcast_to(np.arange(out_len)[:, None], indices.shape)
    np.add.at(matrix, (rows, indices), weights)
    matrix.setflags(write=False)
    return matrix


def _plan(in_shape, scale, output_shape, method):
    """Per-axis (scale, out_len) for the two spatial axes and the order MATLAB resizes them in."""
    if method not in METHODS:
        raise SRMOSError(f"unknown resize method {method!r}; use one of {', '.join(METHODS)}")
    if min(in_shape) < 1:
        raise SRMOSError(f"cannot resize an empty image of shape {tuple(in_shape)}")
    if (scale is None) == (output_shape is None):
        raise SRMOSError("give exactly one of scale= or output_shape=")
    if scale is not None:
        scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale, scale)
        if len(scales) != 2 or not all(isinstance(s, numbers.Real) and math.isfinite(s) and s > 0 for s in scales):
            raise SRMOSError(f"scale must be a positive number (or a pair of them), got {scale!r}")
        scales = tuple(float(s) for s in scales)
        out_shape = tuple(int(math.ceil(s * n)) for s, n in zip(scales, in_shape))
    else:
        if len(output_shape) != 2 or not all(isinstance(n, (int, np.integer)) and n > 0 for n in output_shape):
            raise SRMOSError(f"output_shape must be two positive integers (height, width), got {output_shape!r}")
        out_shape = tuple(int(n) for n in output_shape)
        scales = tuple(o / n for o, n in zip(out_shape, in_shape))
    # MATLAB: [~, order] = sort(scale), a stable sort, so rows go first on a tie.
    order = sorted(range(2), key=lambda axis: scales[axis])
    return scales, out_shape, order


def _round_uint8(values):
    """MATLAB's conversion to uint8: clip to 0..255, round half away from zero."""
    return np.floor(np.clip(values, 0, 255) + 0.5).astype(np.uint8)


def imresize(image, scale=None, output_shape=None, method="bicubic"):
    """Resize an ``HxW`` or ``HxWxC`` array as MATLAB's ``imresize(image, scale, method)`` does.

    uint8 in -> uint8 out (rounded and clipped after each dimension, as MATLAB); float in -> float64 out.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise SRMOSError(f"imresize takes an HxW or HxWxC image, got shape {image.shape}")
    is_uint8 = image.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(image.dtype, np.floating)):
        raise SRMOSError(f"imresize takes uint8 or floating-point images, got {image.dtype}")
    scales, out_shape, order = _plan(image.shape[:2], scale, output_shape, method)
    result = image if is_uint8 else image.astype(np.float64)
    for axis in order:
        weights, indices = _axis_weights(result.shape[axis], out_shape[axis], scales[axis], method)
        moved = np.moveaxis(result, axis, 0)
        if method == "nearest":
            # One tap of weight 1 per output pixel: a pure gather, exact for any dtype.
            out = moved[indices[np.arange(len(indices)), np.argmax(weights, axis=1)]]
        else:
            out = np.zeros((out_shape[axis],) + moved.shape[1:])
            shape = (-1,) + (1,) * (moved.ndim - 1)
            for tap in range(weights.shape[1]):  # summed tap by tap, in MATLAB's order
                out += weights[:, tap].reshape(shape) * moved[indices[:, tap]]
            if is_uint8:
                out = _round_uint8(out)
        result = np.moveaxis(out, 0, axis)
    return np.ascontiguousarray(result)


def imresize_torch(x, scale=None, output_shape=None, method="bicubic"):
    """MATLAB ``imresize`` for ``NCHW`` tensors (any device); float dtype is kept.

    A uint8 tensor is resized in float64 and rounded after each dimension, giving the numpy function's uint8 output.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise SRMOSError(f"imresize_torch takes an NCHW tensor, got {getattr(x, 'shape', type(x))}")
    is_uint8 = x.dtype == torch.uint8
    if not (is_uint8 or x.dtype.is_floating_point):
        raise SRMOSError(f"imresize_torch takes uint8 or floating-point tensors, got {x.dtype}")
    scales, out_shape, order = _plan(tuple(x.shape[2:]), scale, output_shape, method)
    work_dtype = torch.float64 if is_uint8 else x.dtype
    result = x.to(work_dtype)
    for axis in order:
        dim = axis + 2
        matrix = _axis_matrix(result.shape[dim], out_shape[axis], scales[axis], method)
        matrix = torch.tensor(matrix, device=x.device, dtype=work_dtype)
        if dim == 2:
            result = torch.matmul(matrix, result)  # (H', H) @ (N, C, H, W)
        else:
            result = torch.matmul(result, matrix.T)  # (N, C, H, W) @ (W, W')
        if is_uint8:
            result = torch.floor(result.clamp(0, 255) + 0.5)
    return result.to(torch.uint8) if is_uint8 else result.contiguous()

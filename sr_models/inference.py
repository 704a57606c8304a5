"""Whole-image inference: uint8 arrays in, uint8 arrays out, any size, grey/RGB/RGBA, CPU or CUDA, tiled.

LR input is scaled to [0, 1]; the generator's output in [-1, 1] becomes uint8 by round((x + 1) / 2 * 255), clipped.
"""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .errors import ImageError, SRMOSError
from .resize import imresize


class SubPixelConv(nn.Module):
    """A conv on PixelShuffle(2)(a) computed on ``a`` itself: a conv with 4x the output channels, then PixelShuffle.

    For a k x k kernel (radius p) the 2x-resolution kernel has radius ceil(p / 2): the 9x9 tail of SRResNet becomes
    a 5x5 conv from 4C to 4*out channels, about 3x faster on oneDNN than 9x9 convs with 3 output channels.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        out_channels, in_channels, k, _ = conv.weight.shape
        p = k // 2
        r = math.ceil(p / 2)
        weight = conv.weight.new_zeros(out_channels, 2, 2, in_channels, 2, 2, 2 * r + 1, 2 * r + 1)
        # HR output (2h+i, 2w+j) reads HR input (2h+i+dy, 2w+j+dx) = a[c*4 + (Y%2)*2 + X%2, h + Y//2, w + X//2]
        # with Y = i + dy, X = j + dx: collect each HR kernel tap into its 2x-resolution tap.
        for i in range(2):
            for j in range(2):
                for dy in range(-p, p + 1):
                    for dx in range(-p, p + 1):
                        y, x = i + dy, j + dx
                        weight[:, i, j, :, y % 2, x % 2, y // 2 + r, x // 2 + r] += conv.weight[:, :, dy + p, dx + p]
        self.conv = nn.Conv2d(in_channels * 4, out_channels * 4, 2 * r + 1, padding=r)
        self.conv.weight = nn.Parameter(weight.reshape(out_channels * 4, in_channels * 4, 2 * r + 1, 2 * r + 1))
        bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(out_channels)
        self.conv.bias = nn.Parameter(bias.detach().repeat_interleave(4))

    def forward(self, x):
        return F.pixel_shuffle(self.conv(x), 2)


def fold_batch_norms(module: nn.Module):
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into that conv (in place)."""
    for sequential in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for index in range(len(sequential) - 1):
            conv, bn = sequential[index], sequential[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                sequential[index] = fuse_conv_bn_eval(conv, bn)
                sequential[index + 1] = nn.Identity()


def prelus_in_place(module: nn.Module):
    """Replace each one-slope PReLU that directly follows a Conv2d or PixelShuffle (BN-folded Identities skipped)
    in an nn.Sequential by the same function computed in place, LeakyReLU(slope, inplace=True): the layer's input is
    a fresh tensor nobody else holds, so this saves one full-size allocation and memory pass per activation."""
    for sequential in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for index, layer in enumerate(sequential):
            if not (isinstance(layer, nn.PReLU) and layer.weight.numel() == 1):
                continue
            before = [m for m in list(sequential)[:index] if not isinstance(m, nn.Identity)]
            if before and isinstance(before[-1], (nn.Conv2d, nn.PixelShuffle)):
                sequential[index] = nn.LeakyReLU(float(layer.weight.detach()), inplace=True)


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """An eval-mode copy of an SRResNet with the same outputs (to float tolerance), faster on CPU and GPU.

    BatchNorm folded into the convs; the last PixelShuffle + PReLU + 9x9 tail become PReLU + SubPixelConv (PReLU is
    pointwise with one slope, so it commutes with the shuffle); PReLUs computed in place; channels_last memory
    format for oneDNN/cuDNN.
    """
    fused = copy.deepcopy(model).eval()
    fold_batch_norms(fused)
    upsample, tail = getattr(fused, "upsample", None), getattr(fused, "tail", None)
    last = upsample[-1] if isinstance(upsample, nn.Sequential) and len(upsample) else None
    if isinstance(tail, nn.Conv2d) and isinstance(last, nn.Sequential) and len(last) == 3:
        conv, shuffle, prelu = last
        if (
            isinstance(shuffle, nn.PixelShuffle)
            and shuffle.upscale_factor == 2
            and isinstance(prelu, nn.PReLU)
            and prelu.weight.numel() == 1
        ):
            upsample[-1] = nn.Sequential(conv, prelu)
            fused.tail = SubPixelConv(tail)
    prelus_in_place(fused)
    return fused.to(memory_format=torch.channels_last).requires_grad_(False)


# Tiling. The paper's SRResNet sees 40 LR pixels on each side (archs.srresnet.receptive_radius), so tiles carrying
# 40 pixels of context give the untiled output to float tolerance. 256-pixel tiles keep CPU memory near 1 GB.
DEFAULT_TILE = 256
DEFAULT_TILE_OVERLAP = 40


def resolve_device(device=None, model=None) -> torch.device:
    """``device`` as a torch.device (default: where ``model`` lives, else CPU); asking for absent CUDA is an error."""
    if device is None:
        parameter = next(model.parameters(), None) if model is not None else None
        return parameter.device if parameter is not None else torch.device("cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise SRMOSError(f"unknown device {device!r}; use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SRMOSError("device cuda was asked for but torch finds no CUDA GPU here; use --device cpu")
    return device


def split_image(image):
    """(RGB HxWx3 uint8, kind, alpha or None) for a grey, RGB or RGBA uint8 array; anything else is an ImageError."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ImageError(f"upscaling takes uint8 images, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2), "grey", None
    if image.ndim == 3 and image.shape[2] == 3:
        return image, "rgb", None
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3], "rgba", image[:, :, 3]
    raise ImageError(f"upscaling takes HxW, HxWx3 or HxWx4 images, got shape {image.shape}")


def to_tensor(images, device):
    """uint8 NHWC arrays -> float NCHW in [0, 1], channels_last (a free view of the NHWC data)."""
    batch = torch.from_numpy(np.stack(images)).to(device)
    return batch.permute(0, 3, 1, 2).float().div_(255)


def to_uint8(sr, grey=False):
    """Generator output in [-1, 1] (N x 3 x H x W) -> uint8 NHWC (or NHW grey: the mean of the three channels)."""
    sr = sr.float()
    if grey:
        sr = sr.mean(dim=1, keepdim=True)
    out = ((sr + 1) / 2 * 255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out[..., 0] if grey else out


def tile_spans(length, tile, overlap):
    """(core_start, core_end, window_start, window_end) along one axis: near-equal cores of at most ``tile``
    pixels, each window the core plus ``overlap`` pixels of context on each side, clipped to the image."""
    count = math.ceil(length / tile)
    core = math.ceil(length / count)
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append((start, end, max(0, start - overlap), min(length, end + overlap)))
    return spans


def _run(model, x, amp):
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        return model(x.contiguous(memory_format=torch.channels_last)).float()


def _upscale_tiled(model, rgb, grey, *, device, tile, overlap, amp, scale, batch_size):
    """Upscale one HxWx3 image tile by tile; tiles of equal shape go through the network together."""
    h, w = rgb.shape[:2]
    out = np.empty((h * scale, w * scale) + (() if grey else (3,)), dtype=np.uint8)
    jobs = [(ys, xs) for ys in tile_spans(h, tile, overlap) for xs in tile_spans(w, tile, overlap)]
    by_shape = {}
    for ys, xs in jobs:
        by_shape.setdefault((ys[3] - ys[2], xs[3] - xs[2]), []).append((ys, xs))
    for group in by_shape.values():
        for first in range(0, len(group), batch_size):
            batch = group[first : first + batch_size]
            windows = [rgb[ys[2] : ys[3], xs[2] : xs[3]] for ys, xs in batch]
            sr = to_uint8(_run(model, to_tensor(windows, device), amp), grey)
            for (ys, xs), tile_out in zip(batch, sr):
                # Keep the core only: its pixels saw the whole receptive field of real image data.
                top, left = (ys[0] - ys[2]) * scale, (xs[0] - xs[2]) * scale
                core = tile_out[top : top + (ys[1] - ys[0]) * scale, left : left + (xs[1] - xs[0]) * scale]
                out[ys[0] * scale : ys[1] * scale, xs[0] * scale : xs[1] * scale] = core
    return out


def upscale_batch(
    model, images, *, device=None, tile=None, tile_overlap=DEFAULT_TILE_OVERLAP, amp=None, batch_size=None
):
    """Upscale a list of uint8 images (grey HxW, RGB HxWx3 or RGBA HxWx4) with a generator; returns uint8 arrays.

    Images of the same size that fit in one tile go through the network ``batch_size`` at a time (default 1 on CPU,
    where batching does not help, 8 on CUDA). ``tile``: LR tile side (None: DEFAULT_TILE, used only for images larger
    than that; 0: never tile). ``amp``: bf16 autocast (default: on for CUDA, off on CPU). Grey images are run as RGB
    and the output is the mean of its channels; an alpha channel is upscaled with MATLAB bicubic and re-attached.
    The model is moved to ``device`` and run in eval mode (its training mode is restored afterwards).
    """
    device = resolve_device(device, model)
    tile = DEFAULT_TILE if tile is None else int(tile)
    if tile < 0 or tile_overlap < 0:
        raise SRMOSError(f"tile ({tile}) and tile overlap ({tile_overlap}) must not be negative")
    amp = device.type == "cuda" if amp is None else bool(amp)
    batch_size = batch_size or (8 if device.type == "cuda" else 1)
    scale = getattr(model, "scale", 4)
    prepared = [split_image(image) for image in images]
    results = [None] * len(prepared)
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode():
            whole = {}
            for index, (rgb, kind, _) in enumerate(prepared):
                h, w = rgb.shape[:2]
                if tile and max(h, w) > tile:
                    results[index] = _upscale_tiled(
                        model,
                        rgb,
                        kind == "grey",
                        device=device,
                        tile=tile,
                        overlap=tile_overlap,
                        amp=amp,
                        scale=scale,
                        batch_size=batch_size,
                    )
                else:
                    whole.setdefault((h, w, kind == "grey"), []).append(index)
            for (_, _, grey), indices in whole.items():
                for first in range(0, len(indices), batch_size):
                    chunk = indices[first : first + batch_size]
                    sr = to_uint8(_run(model, to_tensor([prepared[i][0] for i in chunk], device), amp), grey)
                    for i, out in zip(chunk, sr):
                        results[i] = out
    finally:
        model.train(was_training)
    for index, (_, kind, alpha) in enumerate(prepared):
        if kind == "rgba":
            results[index] = np.dstack([results[index], imresize(alpha, scale=scale, method="bicubic")])
    return results


def upscale_array(model, image, *, device=None, tile=None, tile_overlap=DEFAULT_TILE_OVERLAP, amp=None):
    """Upscale one uint8 image (grey, RGB or RGBA) with a generator; see ``upscale_batch``."""
    return upscale_batch(model, [image], device=device, tile=tile, tile_overlap=tile_overlap, amp=amp)[0]

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


def phase_major_order(channels: int) -> list[int]:
    """PixelShuffle(2)'s input channels (c*4 + i*2 + j, for C = channels / 4) listed in the order (j, i, c)."""
    c_count = channels // 4
    return [c * 4 + i * 2 + j for j in range(2) for i in range(2) for c in range(c_count)]


def reorder_output_channels(conv: nn.Conv2d, order) -> nn.Conv2d:
    """A copy of ``conv`` whose output channel n is the original's channel ``order[n]`` (the same numbers)."""
    reordered = copy.deepcopy(conv)
    index = torch.as_tensor(order)
    with torch.no_grad():
        reordered.weight = nn.Parameter(conv.weight[index].clone())
        if conv.bias is not None:
            reordered.bias = nn.Parameter(conv.bias[index].clone())
    return reordered


class UpsampleTail(nn.Module):
    """The last upsampling block (3x3 conv to 4C channels, PixelShuffle(2), one-slope PReLU) and the k x k tail conv
    to a few channels, computed without the shuffle, without the tail's 3-output-channel convolution, in row strips.

    Why it is faster, and exact (the same sums in another order):
    - The upsampling conv's output channels are reordered to (j, i, c) (``phase_major_order``). In that order the
      NHWC memory of its output, (h, w, j, i, c), is unchanged an NHWC map of 2C channels (i, c) at the HR width:
      the HR image with each pair of rows (2h, 2h+1) side by side in the channels. No shuffle is copied.
    - The tail's kernel rows become output channels: one 1 x k conv per row phase i (groups=2) from C to k*Cout
      channels (ky, o): each HR row's k partial sums. It does exactly the paper conv's FLOPs (no zero taps, unlike a
      sub-pixel 5x5 conv, whose 100 taps hold 81 weights) with 27 output channels instead of 3, which oneDNN runs
      near its full rate.
    - A fixed 0/1 conv (kernel ceil(p/2)*2+1 rows x 1) adds each output row's k partial sums (the bias with them)
      for both output row phases, and the phases are interleaved into the HR image (a copy of the small output).
    - Row strips on the CPU (``strip_rows``, default: as many rows as keep the strip's 4C-channel map under
      STRIP_BYTES): the upsampling conv and the 1 x k conv run strip by strip (the 1 x k conv needs no rows beyond
      its strip, the 3x3 conv one on each side), so no 4C-channel map of the whole image is allocated: above 32 MiB
      glibc maps fresh pages for every call, and their page faults cost about a sixth of that conv with 2 threads.
    """

    STRIP_BYTES = 24 << 20  # the upsampling conv's output per strip: under glibc's 32 MiB mmap threshold

    @staticmethod
    def fits(conv, tail) -> bool:
        """Whether ``conv`` is a same-padded 3x3 conv to 4C channels, ``tail`` a same-padded odd k x k conv from C."""
        plain = dict(stride=(1, 1), dilation=(1, 1), groups=1)
        k = tail.kernel_size[0]
        return (
            isinstance(conv, nn.Conv2d)
            and isinstance(tail, nn.Conv2d)
            and conv.kernel_size == (3, 3)
            and conv.padding == (1, 1)
            and tail.kernel_size == (k, k)
            and k % 2 == 1
            and tail.padding == (k // 2, k // 2)
            and conv.out_channels == 4 * tail.in_channels
            and all(getattr(c, name) == value for c in (conv, tail) for name, value in plain.items())
        )

    def __init__(self, conv: nn.Conv2d, slope: float, tail: nn.Conv2d, strip_rows=None):
        super().__init__()
        if not self.fits(conv, tail):
            raise SRMOSError(
                "UpsampleTail takes a same-padded 3x3 conv to 4C channels and a same-padded odd k x k tail"
            )
        k = tail.kernel_size[0]
        self.conv = reorder_output_channels(conv, phase_major_order(conv.out_channels))
        self.slope, self.strip_rows = float(slope), strip_rows
        c, out, p = tail.in_channels, tail.out_channels, k // 2
        # 1 x k per row phase: (ky, o) output channels, the same weights for both phases.
        rows = tail.weight.detach().permute(2, 0, 1, 3).reshape(k * out, c, 1, k)
        self.row_taps = nn.Parameter(torch.cat([rows, rows]))
        # Output row 2h + i' sums its tap ky from HR row 2h + i' + ky - p, which is row h + t of phase i.
        self.reach = r = math.ceil(p / 2)
        adder = tail.weight.new_zeros(2, out, 2, k, out, 2 * r + 1, 1)
        for i_out in range(2):
            for ky in range(k):
                i_in, t = (i_out + ky - p) % 2, (i_out + ky - p) // 2
                for o in range(out):
                    adder[i_out, o, i_in, ky, o, t + r, 0] = 1
        self.row_sums = nn.Parameter(adder.reshape(2 * out, 2 * k * out, 2 * r + 1, 1))
        bias = tail.bias.detach() if tail.bias is not None else tail.weight.new_zeros(out)
        self.bias = nn.Parameter(bias.repeat(2))
        self.out_channels, self.k = out, k

    def strips(self, height, width, batch=1):
        """(start, end) row spans of near-equal strips whose upsampling output stays under STRIP_BYTES."""
        rows = self.strip_rows or max(8, self.STRIP_BYTES // (4 * self.conv.out_channels * width * batch))
        count = math.ceil(height / rows)
        size = math.ceil(height / count)
        return [(start, min(height, start + size)) for start in range(0, height, size)]

    def upsampled_rows(self, x, start, end):
        """The upsampling conv's output rows [start, end) (after the PReLU), a fresh channels_last tensor."""
        height = x.shape[2]
        if (start, end) == (0, height):
            return F.leaky_relu_(self.conv(x), self.slope)
        # One row of context above and below; zero rows only where the image ends (the conv's own padding).
        rows = x[:, :, max(0, start - 1) : min(height, end + 1)]
        if start == 0 or end == height:
            rows = F.pad(rows, (0, 0, int(start == 0), int(end == height))).contiguous(
                memory_format=torch.channels_last
            )
        u = F.conv2d(rows, self.conv.weight, self.conv.bias, padding=(0, 1))
        return F.leaky_relu_(u, self.slope)

    def row_partial_sums(self, x, start, end):
        """The 1 x k convs' output (N x 2k*Cout x rows x 2W) for rows [start, end) of the upsampled map."""
        u = self.upsampled_rows(x, start, end)
        n, c4, h, w = u.shape
        # (h, w, j, i, c) memory read as (h, 2w + j, i*C + c): a view, no copy.
        phases = u.permute(0, 2, 3, 1).reshape(n, h, 2 * w, c4 // 2).permute(0, 3, 1, 2)
        return F.conv2d(phases, self.row_taps, None, padding=(0, self.k // 2), groups=2)

    def forward(self, x):
        n, _, height, width = x.shape
        # Strips on the CPU only: CUDA's caching allocator has no page faults to avoid, and each strip is a launch.
        strips = self.strips(height, width, n) if x.device.type == "cpu" else [(0, height)]
        parts = [self.row_partial_sums(x, start, end) for start, end in strips]
        partial = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        out = F.conv2d(partial, self.row_sums, self.bias, padding=(self.reach, 0))  # N x (i', o) x H x 2W
        out = out.view(n, 2, self.out_channels, height, 2 * width).permute(0, 2, 3, 1, 4)
        return out.reshape(n, self.out_channels, 2 * height, 2 * width)


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

    BatchNorm folded into the convs; the last upsampling block (conv, PixelShuffle, one-slope PReLU) and the 9x9
    tail become one UpsampleTail (no shuffle, no 3-output-channel conv, row strips; PReLU is pointwise with one slope,
    so it commutes with the shuffle) and that block an Identity; PReLUs computed in place; channels_last memory
    format for oneDNN/cuDNN.
    """
    fused = copy.deepcopy(model).eval()
    fold_batch_norms(fused)
    upsample, tail = getattr(fused, "upsample", None), getattr(fused, "tail", None)
    last = upsample[-1] if isinstance(upsample, nn.Sequential) and len(upsample) else None
    if isinstance(last, nn.Sequential) and len(last) == 3:
        conv, shuffle, prelu = last
        if (
            isinstance(shuffle, nn.PixelShuffle)
            and shuffle.upscale_factor == 2
            and isinstance(prelu, nn.PReLU)
            and prelu.weight.numel() == 1
            and UpsampleTail.fits(conv, tail)
        ):
            upsample[-1] = nn.Identity()
            fused.tail = UpsampleTail(conv, float(prelu.weight.detach()), tail)
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

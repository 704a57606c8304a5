"""SRResNet x4 inference speed on BSD100-sized inputs (LR 120x80 -> HR 480x320) against this machine's limit.

    .venv/bin/python -m perf.inference [--device cpu|cuda] [--rounds 8] [--batch 1] [--data-dir DIR]
                                       [--try-compile] [--min-ratio 0.7] [--layers] [--threads N --clock cpu]

Prints, measured in one run with model and peak timings alternating (the machine may be shared): images/s and LR
megapixels/s of the project's inference path (sr_models.methods' fused network through upscale_batch, uint8 in and
out), of the same before its UpsampleTail rewrite (the tail as a sub-pixel conv: the old figure in the same run)
and of the plain eager model; the FLOP/s each achieves, counting the paper network's convolutions analytically
(2 * Cin * Cout * k * k * H * W each); the machine's fp32 limit: the best oneDNN 3x3 convolution rate (64 -> 64
channels, channels_last, the fastest of several batch sizes and image sizes) and torch.mm on large square matrices,
each timed as a burst of one image's worth of FLOPs so that it meets the same competition for the cores as the model;
and the ratio of achieved to conv limit. On CUDA the same in bf16 autocast, with cuDNN and bf16 torch.mm as the limit.
It checks that the fused output equals the plain eager model's to float tolerance and stops if not.

``--clock cpu`` counts this process's CPU time instead of wall-clock time (limits and figures alike): with
``--threads 1`` that is what the work costs even when other jobs load the machine.

``--layers`` adds a per-layer-group profile of both networks (perf.layer_profile): each group's time, the paper
network's FLOPs in it, its GFLOP/s and the fraction of the conv3x3 limit timed in the same rounds.
"""

import argparse
import copy
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from perf import layer_profile, machine
from perf.machine import best_time, conv3x3_limit, mm_limit
from sr_models.archs import SRResNet
from sr_models.inference import SubPixelConv, fuse_for_inference, resolve_device, upscale_batch

LR_SIZE = (80, 120)  # BSD100 LR, height x width (HR 320x480; half the set is 480x320, the same work)


def conv_flops(model, lr_shape):
    """2 * Cin * Cout * k * k * Hout * Wout summed over the model's convolutions for one LR image (via hooks)."""
    total = 0

    def count(conv, inputs, output):
        nonlocal total
        total += (
            2
            * conv.in_channels
            * conv.out_channels
            * conv.kernel_size[0]
            * conv.kernel_size[1]
            * output.shape[-2]
            * output.shape[-1]
            // conv.groups
        )

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(torch.zeros(1, 3, *lr_shape))
    for hook in hooks:
        hook.remove()
    return total


def burst_rate(function, flops_per_call, work, device):
    """FLOP/s of ``function`` called back to back until it has done about ``work`` FLOPs (one image's worth), so the
    limit is timed over the same stretch of time as the model and meets the same competition for the cores."""
    calls = max(1, math.ceil(work / flops_per_call))

    def burst():
        for _ in range(calls):
            function()

    return calls * flops_per_call / best_time(burst, device, 1)


def load_images(data_dir, count, seed=0):
    """``count`` LR images of BSD100 size: random, or BSD100's HR files made LR with MATLAB bicubic."""
    if data_dir is None:
        rng = np.random.default_rng(seed)
        return [rng.integers(0, 256, (*LR_SIZE, 3), dtype=np.uint8) for _ in range(count)]
    from sr_models.imageio import read_image
    from sr_models.resize import imresize

    files = sorted((Path(data_dir) / "BSD100" / "image_SRF_4").glob("*_HR.png"))[:count]
    if not files:
        raise SystemExit(f"no BSD100 HR images under {data_dir}/BSD100/image_SRF_4")
    return [imresize(read_image(f, mode="rgb"), scale=0.25) for f in files]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds of peak and model timings")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="images per timed call, all through the network at once (default 1 CPU, 8 CUDA)",
    )
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's, the cores)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time by wall clock, or by this process's CPU time (with --threads 1: robust on a loaded machine)",
    )
    parser.add_argument("--data-dir", default=None, help="use BSD100 images from this datasets folder")
    parser.add_argument(
        "--try-compile",
        action="store_true",
        help="also time torch.jit.freeze and torch.compile (inductor) on the fused network",
    )
    parser.add_argument("--min-ratio", type=float, default=None, help="exit 1 if achieved/conv limit is lower")
    parser.add_argument(
        "--layers", action="store_true", help="also profile each layer group of both networks against the conv limit"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine.use_cpu_clock(args.clock == "cpu")
    device = resolve_device(args.device)
    amp = device.type == "cuda"
    dtype = torch.bfloat16 if amp else torch.float32
    torch.manual_seed(0)

    plain = SRResNet().eval()
    for bn in (m for m in plain.modules() if isinstance(m, nn.BatchNorm2d)):  # trained-like BN statistics
        bn.running_mean.uniform_(-0.1, 0.1)
        bn.running_var.uniform_(0.5, 2.0)
    plain = plain.to(device)
    fused = fuse_for_inference(plain).to(device)
    flops = conv_flops(plain.cpu(), LR_SIZE)
    plain.to(device)
    batch = args.batch or (8 if amp else 1)
    images = load_images(args.data_dir, max(batch, 2))

    # Same outputs: the fused network against the plain eager one, in fp32.
    x = torch.rand(2, 3, *LR_SIZE, device=device)
    with torch.inference_mode():
        difference = (fused(x.contiguous(memory_format=torch.channels_last)) - plain(x)).abs().max().item()
    out_fused = upscale_batch(fused, images[:2], device=device, amp=False)
    out_plain = upscale_batch(plain, images[:2], device=device, amp=False)
    uint8_diff = max(np.abs(a.astype(int) - b).max() for a, b in zip(out_fused, out_plain))
    print(
        f"fused vs plain eager: max |difference| {difference:.2e} (float, output range [-1, 1]), {uint8_diff} (uint8)"
    )
    if difference > 1e-3 or uint8_diff > 1:
        raise SystemExit("the fused network does not reproduce the plain model")

    def run(model):
        return lambda: upscale_batch(model, images[:batch], device=device, amp=amp, batch_size=batch, tile=0)

    variants = {
        "srmos (fused, channels_last)": run(fused),
        "srmos before UpsampleTail": run(previous_fused(plain).to(device)),
        "plain eager PyTorch": run(plain),
    }
    if args.try_compile:
        variants.update(compiled_variants(fused, device, batch, amp, run))
    for function in variants.values():
        function()  # warm-up: oneDNN/cuDNN primitive creation
    conv_call, conv_call_flops = conv3x3_limit(device, dtype)
    mm_call, mm_call_flops = mm_limit(device, dtype)
    times = {name: float("inf") for name in variants}
    conv_peak = gemm_peak = 0.0
    for _ in range(args.rounds):  # alternate, best of each: all meet the same competition for the machine
        conv_peak = max(conv_peak, burst_rate(conv_call, conv_call_flops, flops * batch, device))
        for name, function in variants.items():
            times[name] = min(times[name], best_time(function, device, 1) / batch)
        gemm_peak = max(gemm_peak, burst_rate(mm_call, mm_call_flops, flops * batch, device))

    kind = "bf16 autocast" if amp else "fp32"
    print(
        f"device: {torch.cuda.get_device_name(device) if amp else 'CPU'}, {torch.get_num_threads()} threads, {kind}; "
        f"{args.clock} clock; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(
        f"work: SRResNet x4 (16 blocks, 64 features), LR {LR_SIZE[1]}x{LR_SIZE[0]} -> HR {LR_SIZE[1] * 4}x"
        f"{LR_SIZE[0] * 4}, {flops / 1e9:.2f} GFLOP per image (paper network's convolutions)"
    )
    label = "cuDNN" if amp else "oneDNN"
    print(
        f"machine limit: best {label} conv3x3 64->64 channels_last {conv_peak / 1e9:.1f} GFLOP/s; "
        f"torch.mm {gemm_peak / 1e9:.1f} GFLOP/s (each timed over one image's worth of FLOPs)"
    )
    megapixels = LR_SIZE[0] * LR_SIZE[1] / 1e6
    ratio = None
    for name, seconds in times.items():
        achieved = flops / seconds
        print(
            f"{name:32s} {seconds:7.3f} s/image  {1 / seconds:7.2f} images/s  {megapixels / seconds:7.3f} LR MP/s  "
            f"{achieved / 1e9:7.1f} GFLOP/s  = {achieved / conv_peak:5.1%} of conv limit, "
            f"{achieved / gemm_peak:5.1%} of torch.mm"
        )
        ratio = achieved / conv_peak if ratio is None else ratio
    if args.layers:
        x = torch.rand(batch, 3, *LR_SIZE, device=device)

        def peak_burst():
            return burst_rate(conv_call, conv_call_flops, flops * batch, device)

        profile_layers(plain, fused, x, run, device, args.rounds, peak_burst, batch, amp)
    if args.min_ratio is not None and ratio < args.min_ratio:
        print(f"FAIL: srmos reaches {ratio:.1%} of the conv limit, less than {args.min_ratio:.0%}")
        return 1
    return 0


def previous_fused(plain):
    """The fused network as srmos ran it before UpsampleTail (for the old-and-new comparison in one run): the last
    upsampling conv and its PReLU, then the 9x9 tail as a 5x5 sub-pixel conv on the unshuffled map."""
    model = fuse_for_inference(plain)
    conv, _, prelu = plain.upsample[-1]
    model.upsample[-1] = nn.Sequential(copy.deepcopy(conv), nn.LeakyReLU(float(prelu.weight.detach()), inplace=True))
    model.tail = SubPixelConv(plain.tail)
    return model.to(memory_format=torch.channels_last).requires_grad_(False)


def profile_layers(plain, fused, x, run, device, rounds, peak_burst, batch, amp):
    """Print each layer group's time and rate for the fused and the plain network (perf.layer_profile)."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        for label, model in (("srmos (fused)", fused), ("plain eager PyTorch", plain)):
            groups = layer_profile.merge_folded(layer_profile.build_groups(plain, model, x))
            peak, whole = layer_profile.time_groups(groups, run(model), device, rounds, peak_burst)
            layer_profile.print_profile(groups, peak, whole, label, images=batch)


def compiled_variants(fused, device, batch, amp, run):
    """torch.jit.freeze and torch.compile(inductor, freezing) of the fused network, where they work offline."""
    variants = {}
    example = torch.rand(batch, 3, *LR_SIZE, device=device).contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            frozen = torch.jit.freeze(torch.jit.trace(fused, example))
        frozen.scale = 4
        variants["+ torch.jit.freeze"] = run(FrozenWrapper(frozen, fused))
    except Exception as error:  # noqa: BLE001 (report, do not stop: this is an experiment)
        print(f"torch.jit.freeze unavailable: {type(error).__name__}: {error}")
    try:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        compiled = torch.compile(fused, dynamic=False)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(example)
        print(f"torch.compile: first call (compilation) {time.perf_counter() - start:.1f} s")
        variants["+ torch.compile (inductor)"] = run(FrozenWrapper(compiled, fused))
    except Exception as error:  # noqa: BLE001 (report, do not stop)
        print(f"torch.compile unavailable: {type(error).__name__}: {str(error).splitlines()[0]}")
    return variants


class FrozenWrapper(nn.Module):
    """Gives a scripted/compiled callable the parameters and ``scale`` upscale_batch looks at."""

    def __init__(self, function, fused):
        super().__init__()
        self.function, self.fused, self.scale = function, fused, 4

    def forward(self, x):
        return self.function(x)


if __name__ == "__main__":
    sys.exit(main())

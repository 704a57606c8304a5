"""Training speed: SRResNet and SRGAN updates at the paper's batch and crop (16 x 96x96) on this machine.

    python -m perf.training [--device cpu|cuda] [--steps 3] [--amp bf16] [--channels-last]

Prints iterations/s, samples/s, peak memory, the FLOPs of one update (counted by torch's FlopCounterMode over the
real train_step, forward and backward), the achieved FLOP/s, this machine's best 3x3 convolution rate measured in
the same run (oneDNN on the CPU, cuDNN on the GPU) and the ratio of the two.
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from perf.machine import conv3x3_rate, synchronize
from sr_models.imageio import write_png
from sr_models.train.config import preset
from sr_models.train.distributed import DistContext
from sr_models.train.trainer import Trainer


def peak_memory_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the process's peak RSS


def measure(name, device, args, data_dir):
    config = preset(name)
    config.data, config.num_workers, config.progress, config.device = [str(data_dir)], 0, False, str(device)
    config.amp, config.channels_last, config.init = args.amp, args.channels_last, "scratch"
    config.batch_size, config.crop_size = args.batch, args.crop
    config.vgg_random_weights_for_testing = True  # same cost as the ImageNet weights
    trainer = Trainer(config, context=DistContext(device=device))
    lr = torch.rand(args.batch, 3, args.crop // 4, args.crop // 4)
    hr = torch.rand(args.batch, 3, args.crop, args.crop) * 2 - 1
    lr, hr = trainer._to_device((lr, hr))
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(lr, hr)
    flops = counter.get_total_flops()
    for _ in range(args.warmup):
        trainer.train_step(lr, hr)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(lr, hr)
    synchronize(device)
    its = args.steps / (time.perf_counter() - start)
    return {
        "name": name,
        "it/s": its,
        "samples/s": its * args.batch,
        "flops": flops,
        "flop/s": flops * its,
        "mem": peak_memory_mib(device),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--methods", nargs="+", default=["srresnet-mse", "srgan-vgg54"])
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp, torch.float32)
    peak = conv3x3_rate(device, dtype)
    label = "oneDNN" if device.type == "cpu" else "cuDNN"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {where}; batch {args.batch} x {args.crop}x{args.crop}; amp {args.amp}; "
        f"channels_last {args.channels_last}; {args.steps} timed steps after {args.warmup} warm-up"
    )
    print(f"machine limit: best {label} conv3x3 {str(dtype).split('.')[-1]} forward {peak / 1e9:.1f} GFLOP/s")
    with tempfile.TemporaryDirectory() as tmp:
        write_png(Path(tmp) / "x.png", np.zeros((args.crop, args.crop, 3), np.uint8))
        print(
            f"{'step':14s} {'it/s':>8s} {'samples/s':>10s} {'GFLOP/step':>11s} {'GFLOP/s':>8s} {'of peak':>8s} "
            f"{'peak mem MiB':>13s}"
        )
        for name in args.methods:
            r = measure(name, device, args, tmp)
            print(
                f"{r['name']:14s} {r['it/s']:8.3f} {r['samples/s']:10.2f} {r['flops'] / 1e9:11.1f} "
                f"{r['flop/s'] / 1e9:8.1f} {r['flop/s'] / peak:8.1%} {r['mem']:13.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

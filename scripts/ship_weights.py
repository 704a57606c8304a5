"""Install the final training checkpoints as the weights srmos ships, and write their README table.

    .venv/bin/python scripts/ship_weights.py --data-dir ../shared/datasets \\
        srresnet-mse=runs/srresnet-mse-cpu/checkpoints/step_00002400.pt srgan-mse=runs/srgan-mse-cpu/checkpoints/...

For each method: ``sr_models.install`` writes ``sr_models/weights/<method>.pt`` (generator only, provenance kept,
with the run's wall time, the machine and a one-line label added), then the file is evaluated on Set5, Set14 and
BSD100 (Y PSNR/SSIM, 4-pixel border, the SR convention) and ``sr_models/weights/README.md`` is written with the
paper's figures beside ours. tests/sr_models/test_shipped_weights.py checks the files against that table.
"""

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.cli_args import comma_list
from benchmarks.published import lookup
from sr_models import methods
from sr_models.datasets import get_dataset
from sr_models.fileio import atomic_write
from sr_models.imageio import write_png
from sr_models.install import file_sha256, install
from sr_models.metrics import mean_psnr_ssim

DATASETS = ("Set5", "Set14", "BSD100")
TRAIN_DATA = "train_demo (40 photographs, about 1024x768, ../shared/datasets/train_demo)"


def wall_seconds(run_dir):
    """Training time of a run from its log.csv: each 'train' row covers log_every updates at it_per_s."""
    rows = [line.split(",", 3) for line in (Path(run_dir) / "log.csv").read_text().splitlines()]
    steps, total = 0, 0.0
    for step, kind, _stamp, pairs in rows:
        if kind != "train":
            continue
        rate = float(dict(pair.split("=") for pair in pairs.split())["it_per_s"])
        total += (int(step) - steps) / rate
        steps = int(step)
    return total


def machine():
    cores = os.cpu_count()
    return f"{platform.processor() or platform.machine()} CPU, {cores} cores shared with other work, no GPU"


def evaluate(method, weights, data_dir, datasets):
    upscaler = methods.load(method, weights=weights, device="cpu")
    results = {}
    for name in datasets:
        dataset = get_dataset(name, data_dir=data_dir)
        results[name] = mean_psnr_ssim(upscaler.upscale, [dataset.load(image) for image in dataset.images])
        print(f"{method} {name}: {results[name][0]:.3f} dB / {results[name][1]:.4f}", flush=True)
    return results


def ship(method, checkpoint, args):
    run_dir = Path(checkpoint).parent.parent
    hours = wall_seconds(run_dir) / 3600
    step = torch.load(checkpoint, map_location="cpu", weights_only=True)["step"]
    label = f"srmos CPU-trained, {step} updates, train_demo"
    notes = {"label": label, "data_name": TRAIN_DATA, "wall_time_hours": f"{hours:.2f}", "machine": machine()}
    path = install(checkpoint, method, output=Path(args.output_dir) / f"{method}.pt", notes=notes)
    return {
        "method": method,
        "step": step,
        "hours": hours,
        "sha256": file_sha256(path),
        "size": path.stat().st_size,
        "results": evaluate(method, path, args.data_dir, args.datasets),
    }


def comparison_crop(methods_shipped, weights_dir, data_dir, output, dataset="Set14", index=0, box=(120, 120, 96)):
    """One crop, side by side: bicubic | each shipped method | HR (x2 nearest-enlarged so texture is visible)."""
    data = get_dataset(dataset, data_dir=data_dir)
    lr, hr = data.load(data.images[index])
    top, left, size = box
    panels = [methods.load("bicubic").upscale(lr)]
    panels += [
        methods.load(m, weights=Path(weights_dir) / f"{m}.pt", device="cpu").upscale(lr) for m in methods_shipped
    ]
    panels.append(hr)
    crops = [np.repeat(np.repeat(p[top : top + size, left : left + size], 2, 0), 2, 1) for p in panels]
    gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([part for crop in crops for part in (crop, gap)][:-1], axis=1)
    write_png(Path(output), row)
    return ["bicubic", *methods_shipped, "HR"]


def cell(values):
    return f"{values[0]:.2f} / {values[1]:.4f}" if values else "-"


def readme(rows):
    lines = [
        "# Shipped weights",
        "",
        "Inference-only SRResNet generators (fp32, generator state only) that `sr_models.methods` loads when",
        "`$SRMOS_WEIGHTS_DIR` holds no `<method>.pt` of the user's. Trained by srmos on the CPU of a 2-core machine on",
        "the 40-image `train_demo` set: far less data and far fewer updates than the paper's 350 k ImageNet images and",
        '10^6 + 2x10^5 updates, so every table marks them "srmos CPU-trained". docs/training.md gives the commands',
        "that made them. Figures: x4, Y channel (BT.601), 4-pixel border removed, integer-Y convention.",
        "",
        "| method | file | data | updates | wall time (h) | machine | Set5 | Set14 | BSD100 | SHA-256 |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        figures = [cell(row["results"].get(name)) for name in DATASETS]
        lines.append(
            f"| {row['method']} | `{row['method']}.pt` ({row['size'] / 2**20:.1f} MiB) | train_demo | "
            f"{row['step']} | {row['hours']:.2f} | {machine()} | {' | '.join(figures)} | `{row['sha256']}` |"
        )
    lines += [
        "",
        "The paper's Table 2 (PSNR dB / SSIM; its SSIM follows another convention, compare PSNR):",
        "",
        "| method | Set5 | Set14 | BSD100 |",
        "| --- | --- | --- | --- |",
    ]
    for method in ("bicubic", "srresnet-mse", "srgan-vgg54"):
        lines.append(f"| {method} (paper) | " + " | ".join(cell(lookup(method, name)) for name in DATASETS) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", help="METHOD=CHECKPOINT")
    parser.add_argument("--data-dir", required=True, help="folder holding Set5, Set14 and BSD100")
    parser.add_argument("--output-dir", default=str(methods.SHIPPED_WEIGHTS_DIR), help="default sr_models/weights")
    parser.add_argument("--crop", help="also write a bicubic | methods | HR crop comparison PNG here")
    parser.add_argument("--datasets", type=comma_list, default=list(DATASETS), help="default Set5,Set14,BSD100")
    args = parser.parse_args(argv)
    rows = [ship(*pair.split("=", 1), args) for pair in args.pairs]
    atomic_write(Path(args.output_dir) / "README.md", readme(rows))
    if args.crop:
        shown = [row["method"] for row in rows]
        order = comparison_crop(shown, args.output_dir, args.data_dir, args.crop)
        print(f"crop: {' | '.join(order)} -> {args.crop}")
    print(readme(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of the metrics and of MATLAB-compatible resizing on a whole dataset (BSD100 by default), on this machine.

    python -m perf.metrics [--data-dir DIR] [--dataset BSD100] [--repeats 3] [--device cpu|cuda] [--threads N]

Prints, over all bicubic x4 outputs of the dataset, the time (wall and CPU of this process) of ``evaluate_many``
(uint8 images in: Y, crop, PSNR and SSIM) with 1 and with N worker threads, of our SSIM alone (the fused numba kernel
and the torch fallback) and of scikit-image's ``structural_similarity`` (same window, given the same Y planes, float64
and float32), the ratios, the numba kernels' one-off load (or compile) time, the time of x4
bicubic downscaling of every HR image (numpy and torch), the load average (the machine may be shared), and, for
context, this machine's limits measured in the same run: the best oneDNN/cuDNN 3x3 convolution rate, the torch.mm
rate and the memory copy bandwidth (the SSIM filtering is shifted multiply-adds, so memory traffic is its limit).
"""

import argparse
import os
import time

import torch

from perf.machine import conv3x3_rate, mm_rate, synchronize
from sr_models import metrics
from sr_models.datasets import get_dataset
from sr_models.metrics import evaluate_many, rgb_to_y
from sr_models.resize import imresize, imresize_torch


def best_time(fn, repeats, device=torch.device("cpu")):
    """Best wall-clock seconds of ``fn`` over ``repeats`` runs."""
    return timed(fn, repeats, device)[0]


def timed(fn, repeats, device=torch.device("cpu")):
    """(best wall seconds, best CPU seconds of this process) over ``repeats`` runs of ``fn``.

    CPU time is what a shared, busy machine still measures fairly: it leaves out the time other processes had the CPU.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def timed_together(fns, repeats, device=torch.device("cpu")):
    """``{name: (best wall, best CPU)}``, running each of ``fns`` once per round: on a shared machine the load changes
    from second to second, and interleaving exposes every contender to the same load."""
    best = {name: (float("inf"), float("inf")) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = timed(fn, 1, device)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def copy_bandwidth(device, repeats, n=64 * 2**20):
    src, dst = torch.empty(n, device=device), torch.empty(n, device=device)
    dst.copy_(src)
    return 2 * 4 * n / best_time(lambda: dst.copy_(src), repeats, device)  # read + write


def skimage_ssim_all(y_pairs):
    from skimage.metrics import structural_similarity

    for y_sr, y_hr in y_pairs:
        structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("SRMOS_DATA_DIR"),
        help="datasets folder (default: $SRMOS_DATA_DIR, else the repository's data/datasets)",
    )
    parser.add_argument("--dataset", default="BSD100")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (on a shared, busy machine 1 is fastest)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    dataset = get_dataset(args.dataset, data_dir=args.data_dir)
    hrs = [dataset.load_hr(image) for image in dataset.images]
    pairs = [(imresize(imresize(hr, 0.25), 4), hr) for hr in hrs]
    pixels = sum(hr.shape[0] * hr.shape[1] for hr in hrs)
    print(
        f"{dataset.name}: {len(pairs)} images, {pixels / 1e6:.1f} MP; torch threads {torch.get_num_threads()}, "
        f"device {device}"
    )

    print(
        f"load average (1, 5, 15 min) before: {', '.join(f'{load:.1f}' for load in os.getloadavg())} on "
        f"{os.cpu_count()} CPUs"
    )
    fused = metrics._use_numba(torch.zeros(1, device=device))
    if fused:  # the first use loads the kernels' machine code from numba's cache, or compiles it (filling the cache)
        wall, cpu = timed(lambda: evaluate_many(pairs[:1]), 1)
        hits = metrics._y_numba.stats.cache_hits and metrics._ssim_numba.stats.cache_hits
        print(
            f"numba kernels, first use (evaluate_many of one image): {wall:.3f} s wall, {cpu:.3f} s CPU "
            f"({'loaded from the cache' if hits else 'compiled: the cache was empty or stale'})"
        )
    y_pairs = [(rgb_to_y(sr)[4:-4, 4:-4], rgb_to_y(hr)[4:-4, 4:-4]) for sr, hr in pairs]
    y32_pairs = [(y_sr.astype("float32"), y_hr.astype("float32")) for y_sr, y_hr in y_pairs]  # exact: whole numbers
    y32_tensors = [
        (torch.from_numpy(y_sr)[None].to(device), torch.from_numpy(y_hr)[None].to(device)) for y_sr, y_hr in y32_pairs
    ]

    def our_ssim_all(implementation=metrics._ssim):
        with metrics._cpu_threads(1 if device.type == "cpu" else None):  # as evaluate_many runs it
            return [implementation(y_sr, y_hr) for y_sr, y_hr in y32_tensors]

    def evaluate_many_torch(threads):
        kernel, metrics._ssim_numba = metrics._ssim_numba, None  # as without numba
        try:
            return evaluate_many(pairs, device=device, threads=threads)
        finally:
            metrics._ssim_numba = kernel

    workers = sorted({1, args.threads or torch.get_num_threads()}) if device.type == "cpu" else [None]
    contenders = {
        "skimage64": lambda: skimage_ssim_all(y_pairs),
        "skimage32": lambda: skimage_ssim_all(y32_pairs),
        "ssim": our_ssim_all,
    }
    if fused:
        contenders["ssim torch"] = lambda: our_ssim_all(metrics._ssim_torch)
        contenders["evaluate_many torch"] = lambda: evaluate_many_torch(1)
    for threads in workers:
        contenders[threads] = lambda threads=threads: evaluate_many(pairs, device=device, threads=threads)
    best = timed_together(contenders, args.repeats, device)
    (theirs_wall, theirs_cpu), (theirs32_wall, theirs32_cpu) = best["skimage64"], best["skimage32"]
    print(
        f"scikit-image structural_similarity, SSIM only, Y given: float64 {theirs_wall:.3f} s wall, "
        f"{theirs_cpu:.3f} s CPU; float32 {theirs32_wall:.3f} s wall, {theirs32_cpu:.3f} s CPU"
    )
    for name, what in (("ssim", "fused numba kernel" if fused else "torch"), ("ssim torch", "torch fallback")):
        if name in best:
            wall, cpu = best[name]
            print(
                f"ours, SSIM only, same Y (float32), {what}: {wall:.3f} s wall, {cpu:.3f} s CPU: "
                f"{theirs_cpu / cpu:.1f}x / {theirs32_cpu / cpu:.1f}x less CPU than scikit-image float64 / float32"
            )
    for name in workers + (["evaluate_many torch"] if fused else []):
        wall, cpu = best[name]
        what = "torch SSIM, 1" if name == "evaluate_many torch" else name or 1
        print(
            f"evaluate_many (uint8 in: Y, crop, PSNR and SSIM), {what} worker thread(s): {wall:.3f} s wall, "
            f"{cpu:.3f} s CPU; vs scikit-image's SSIM alone (float64): {theirs_wall / wall:.1f}x wall, "
            f"{theirs_cpu / cpu:.1f}x CPU"
        )
    ours = best[workers[0]][0]
    print(f"load average (1, 5, 15 min) after: {', '.join(f'{load:.1f}' for load in os.getloadavg())}")

    down_np = best_time(lambda: [imresize(hr, 0.25) for hr in hrs], args.repeats)
    tensors = [
        torch.from_numpy(hr.copy()).to(device).permute(2, 0, 1)[None].float()
        if hr.ndim == 3
        else torch.from_numpy(hr.copy()).to(device)[None, None].float()
        for hr in hrs
    ]
    down_torch = best_time(lambda: [imresize_torch(t, 0.25) for t in tensors], args.repeats, device)
    print(f"imresize x1/4 bicubic of all HR images: numpy uint8 {down_np:.3f} s, torch float32 {down_torch:.3f} s")

    # SSIM filtering: 4 maps x 2 passes x 11 taps of multiply-add per pixel; each tap is one in-place add over
    # float32 arrays that reads two and writes one.
    ssim_flops = pixels * 4 * 2 * 11 * 2
    ssim_bytes = pixels * 4 * 2 * 11 * 3 * 4
    conv, mm, bandwidth = (
        conv3x3_rate(device, repeats=args.repeats),
        mm_rate(device, repeats=args.repeats),
        copy_bandwidth(device, args.repeats),
    )
    print(
        f"machine: conv3x3 {conv / 1e9:.1f} GFLOP/s, torch.mm {mm / 1e9:.1f} GFLOP/s, copy {bandwidth / 1e9:.1f} GB/s"
    )
    print(
        f"SSIM filtering alone would take {ssim_flops / conv * 1e3:.1f} ms at the conv3x3 rate and "
        f"{ssim_bytes / bandwidth * 1e3:.1f} ms at the copy bandwidth; evaluate_many took {ours * 1e3:.1f} ms "
        f"({ssim_bytes / bandwidth / ours:.2f} of the DRAM bound)"
    )


if __name__ == "__main__":
    main()

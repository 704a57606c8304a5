"""Speed and memory of the MOS statistics on a synthetic study (incomplete design, 10 methods per image, 5 %
repeats): reading the CSV, every screening rule, the P.910 model, significance, tables and figures, and the whole
``python -m mos_study.analysis`` command in a child process (its wall time and peak RSS: the goal of issue 17 is
< 10 s and < 2 GiB for 1.2 million ratings).

    .venv/bin/python -m perf.analysis                       # 100,000 ratings, 2,000 stimuli, 300 raters
    .venv/bin/python -m perf.analysis --ratings 1200000 --stimuli 10000 --raters 1500

Each stage prints its seconds and the process's peak RSS so far. Beside them, measured in the same run (project
rule): the statistics are group-bys over the rows, memory-bound, so the reference is numpy's ``np.bincount`` of the
scores by stimulus over the same rows (each stage is printed as so many bincount passes), and ``pandas.read_csv``
of the same file for the reading stage; torch.mm is printed as context.
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mos_study.analysis import AnalysisOptions, build_results, prepare_ratings, read_ratings, render_files, write_files
from perf.machine import mm_rate

GOAL_SECONDS = 10.0
GOAL_BYTES = 2 * 2**30
N_METHODS = 10
CSV_COLUMNS = ["dataset", "rater", "image", "method", "score", "kind", "response_ms", "trial"]


def names(prefix, count):
    width = max(3, len(str(count - 1)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(count)], dtype=object)


def synthetic_ratings(n_ratings=100_000, n_raters=300, n_images=200, n_methods=N_METHODS, seed=0):
    """A canonical ratings table: rater bias and noise, image x method quality, scores rounded to 1..5."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(1.5, 4.5, size=(n_images, n_methods))
    bias = rng.normal(0, 0.3, n_raters)
    noise = rng.uniform(0.3, 1.0, n_raters)
    rater = rng.integers(0, n_raters, n_ratings)
    stimulus = rng.integers(0, n_images * n_methods, n_ratings)
    image, method = np.divmod(stimulus, n_methods)
    score = np.clip(np.rint(quality[image, method] + bias[rater] + noise[rater] * rng.normal(size=n_ratings)), 1, 5)
    frame = pd.DataFrame(
        {
            "dataset": np.where(image < n_images // 2, "BSD100", "Set14"),
            "rater": names("rater", n_raters)[rater],
            "image": names("img", n_images)[image],
            "method": names("method", n_methods)[method],
            "score": score,
            "kind": np.where(rng.random(n_ratings) < 0.05, "repeat", "trial"),
            "response_ms": rng.gamma(4.0, 600.0, n_ratings),
            "trial": np.arange(n_ratings),
        }
    )
    return prepare_ratings(frame)


def peak_rss_bytes(usage):
    return usage.ru_maxrss * 1024  # Linux reports kilobytes


def best_seconds(function, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bincount_pass_seconds(ratings):
    """One groupby-like pass over the rows at numpy's speed: the scores summed per stimulus."""
    stimulus = ratings.groupby(["dataset", "image", "method"], sort=False).ngroup().to_numpy()
    score = ratings["score"].to_numpy()
    return best_seconds(lambda: np.bincount(stimulus, weights=score, minlength=stimulus.max() + 1))


class Stages:
    """Times stages and prints each beside the same-run bincount pass; with ``trace`` (a second pass: tracemalloc
    slows Python allocations) prints instead the peak memory each stage allocated above what it started with."""

    def __init__(self, bincount_s, trace=False):
        self.bincount_s = bincount_s
        self.trace = trace
        self.seconds = {}

    def run(self, label, function, *args, **kwargs):
        if self.trace:
            return self._traced(label, function, *args, **kwargs)
        start = time.perf_counter()
        value = function(*args, **kwargs)
        seconds = time.perf_counter() - start
        self.seconds[label] = seconds
        rss = peak_rss_bytes(resource.getrusage(resource.RUSAGE_SELF)) / 2**20
        passes = seconds / self.bincount_s
        print(f"{label:<40s} {seconds:7.2f} s  = {passes:7.0f} bincount passes   peak RSS so far {rss:6.0f} MiB")
        return value

    def _traced(self, label, function, *args, **kwargs):
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        value = function(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{label:<40s} peak {(peak - before) / 2**20:7.0f} MiB above the stage's start (tracemalloc)")
        return value


def stages(csv_path, out_dir, stage):
    """Every stage of ``python -m mos_study.analysis``, in order; returns what they made."""
    loaded = stage.run("read + check the CSV (read_ratings)", read_ratings, csv_path)
    results = stage.run("statistics (build_results)", build_results, loaded, AnalysisOptions())
    files = stage.run("tables + summary (render_files)", render_files, results, figures=False)
    all_files = stage.run("  + 4 figures, SVG and PNG", render_files, results, figures=True)
    stage.run("write files", write_files, all_files, out_dir)
    return loaded, results, files, all_files


# A small launcher times the command and reads its peak RSS from wait4: Linux keeps the larger RSS of the image a
# process replaces by exec, so a child started straight from this (large) process would report our RSS, not its own.
LAUNCHER = """import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
print(time.perf_counter() - start, usage.ru_maxrss, child.returncode)
"""


def run_command(csv_path, out_dir, *extra):
    """``python -m mos_study.analysis`` in a child process: (wall seconds, the child's own peak RSS in bytes)."""
    command = [sys.executable, "-m", "mos_study.analysis", str(csv_path), "--output-dir", str(out_dir), *extra]
    report = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True)
    seconds, max_rss_kib, returncode = report.stdout.split()
    if int(returncode) != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit status {returncode}")
    return float(seconds), int(max_rss_kib) * 1024


def verdict(seconds, rss):
    ok = seconds < GOAL_SECONDS and rss < GOAL_BYTES
    return f"{'meets' if ok else 'MISSES'} the goal (< {GOAL_SECONDS:g} s, < {GOAL_BYTES / 2**30:g} GiB)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=100_000)
    parser.add_argument("--stimuli", type=int, default=2_000, help=f"images x {N_METHODS} methods")
    parser.add_argument("--raters", type=int, default=300)
    parser.add_argument("--bootstrap", type=int, default=0, help="also time build_results with this many resamples")
    parser.add_argument("--no-command", action="store_true", help="skip the child-process runs of the command")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass over the stages")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    ratings = synthetic_ratings(args.ratings, args.raters, max(1, args.stimuli // N_METHODS))
    with tempfile.TemporaryDirectory() as work:
        csv_path = Path(work) / "ratings.csv"
        ratings[CSV_COLUMNS].to_csv(csv_path, index=False)
        n_stimuli = len(ratings[["dataset", "image", "method"]].drop_duplicates())
        print(
            f"{len(ratings)} ratings, {ratings.rater.nunique()} raters, {n_stimuli} stimuli "
            f"({csv_path.stat().st_size / 2**20:.0f} MiB of CSV); torch {torch.get_num_threads()} threads"
        )
        bincount_s = bincount_pass_seconds(ratings)
        read_csv_s = best_seconds(lambda: pd.read_csv(csv_path, dtype=str, keep_default_na=False), repeats=1)
        print(
            f"same-run reference: np.bincount of {len(ratings)} scores by stimulus {bincount_s * 1e3:.1f} ms "
            f"({len(ratings) / bincount_s / 1e6:.0f} M rows/s); pandas.read_csv of the file alone {read_csv_s:.2f} s"
        )
        del ratings
        rss = peak_rss_bytes(resource.getrusage(resource.RUSAGE_SELF)) / 2**20
        print(f"peak RSS before the stages (this script, torch and the synthetic table): {rss:.0f} MiB")
        timing = Stages(bincount_s)
        loaded, results, files, all_files = stages(csv_path, Path(work) / "out", timing)
        if args.bootstrap:
            options = AnalysisOptions(bootstrap=args.bootstrap)
            timing.run(f"  statistics with bootstrap {args.bootstrap}", build_results, loaded, options)
        figures_s = timing.seconds["  + 4 figures, SVG and PNG"] - timing.seconds["tables + summary (render_files)"]
        print(f"figures alone about {figures_s:.2f} s; {len(files)} tables and texts, {len(all_files)} files in all")
        print(f"P.910 iterations: {results.subjective_iterations}; screened out: {len(results.rejected_raters)}")
        del loaded, results, files, all_files
        if not args.no_memory:
            stages(csv_path, Path(work) / "traced", Stages(bincount_s, trace=True))
        if not args.no_command:
            for extra, label in (((), "with figures"), (("--no-figures",), "--no-figures")):
                seconds, rss = run_command(csv_path, Path(work) / f"cli{len(extra)}", *extra)
                print(
                    f"python -m mos_study.analysis, {label}: {seconds:.2f} s wall, peak RSS {rss / 2**20:.0f} MiB "
                    f"(= {seconds / bincount_s:.0f} bincount passes): {verdict(seconds, rss)}"
                )
    print(f"machine context: torch.mm 2048x2048 float32 {mm_rate(torch.device('cpu')) / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()

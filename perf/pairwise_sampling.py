"""Sampling designs for pairwise studies: comparisons needed to recover a known quality scale.

    .venv/bin/python -m perf.pairwise_sampling [--quick] [--conditions 10] [--spread 4,6] [--repeats 24]

Known true qualities (``--conditions`` spread uniformly at random over ``--spread`` JOD, new ones each repeat; one
table per spread),
simulated Thurstone Case V observers (unit-variance noise in Thurstone's unit, 1 JOD = 75 % preference), batches of
n - 1 comparisons chosen by each design (``active``: expected information gain with a minimum-spanning-tree batch;
``random``; ``full``: balanced round robin); after each batch the scale is fitted (Thurstone MLE, the reported
scale's prior) and its RMSE to the truth taken (both centred). The RMSE is averaged over repeats (same true
qualities and seeds for every design), and the comparisons at which that mean curve reaches each target are printed
with the ratios active/random and active/full, for the scale as reported by default (maximum a posteriori with the
weak prior) and with Firth's bias reduction (``--bias-reduction``).

It also times one ``next_pairs`` call (8 conditions, 7 pairs, some data: what a web request does) and, for context
(project rule), this machine's torch.mm rate in the same run.
"""

import argparse
import time

import numpy as np
import torch

from mos_study.analysis.pairwise.sampling import DESIGNS, next_pairs
from mos_study.analysis.pairwise.simulation import ESTIMATORS, run_design, simulate_choices
from perf.machine import mm_rate

TARGETS = (0.3, 0.2)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.pairwise_sampling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run for the smoke test (seconds)")
    parser.add_argument("--conditions", type=int, default=10)
    parser.add_argument("--spread", default="4,6", help="ranges of the true qualities, JOD (comma list)")
    parser.add_argument("--repeats", type=int, default=24)
    parser.add_argument("--budget", type=int, default=1500, help="comparisons per simulated study")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.conditions, args.spread, args.repeats, args.budget = 8, "4", 4, 420
    args.spread = [float(part) for part in args.spread.split(",") if part.strip()]
    return args


def request_latency(n_conditions=8, n_pairs=7, repeats=30):
    """Median seconds of one active ``next_pairs`` call on a study with 3 answers per pair so far."""
    rng = np.random.default_rng(0)
    quality = np.linspace(0, 3, n_conditions)
    wins = np.zeros((n_conditions, n_conditions))
    pairs = [(i, j) for i in range(n_conditions) for j in range(i + 1, n_conditions)] * 3
    for (i, j), first in zip(pairs, simulate_choices(quality, pairs, rng)):
        wins[(i, j) if first else (j, i)] += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        next_pairs(n_conditions, wins, n_pairs, design="active", rng=rng)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def design_table(args, spread):
    """Print one spread's table (both estimators); returns {(design, estimator): comparisons needed per target}."""
    options = dict(
        n_conditions=args.conditions, spread=spread, budget=args.budget, repeats=args.repeats, seed=args.seed
    )
    print(
        f"{args.conditions} conditions over {spread:g} JOD, {args.repeats} repeats, up to {args.budget} "
        f"comparisons, batches of {args.conditions - 1}"
    )
    runs = {}
    for design in DESIGNS:
        start = time.perf_counter()
        runs[design] = run_design(design, **options)
        print(f"  {design}: {time.perf_counter() - start:.1f} s")
    needed = {}
    for estimator in ESTIMATORS:
        print(f"{'scale: ' + estimator:<22s}" + "".join(f"  to RMSE {t:.1f} JOD" for t in TARGETS))
        for design in DESIGNS:
            needed[design, estimator] = [runs[design].needed(t, estimator) for t in TARGETS]
            cells = "".join(f"  {_count(n, args.budget):>15s}" for n in needed[design, estimator])
            print(f"{design:<22s}{cells}")
        for other in ("random", "full"):
            pairs = zip(needed["active", estimator], needed[other, estimator])
            print(f"{'active/' + other:<22s}" + "".join(f"  {_ratio(a, b):>15s}" for a, b in pairs))
    return needed


def _count(value, budget):
    return f">{budget}" if np.isnan(value) else f"{value:.0f}"


def _ratio(a, b):
    if np.isnan(a) or np.isnan(b):
        return "n/a"
    return f"{a / b:.2f}"


def main(argv=None):
    args = parse_args(argv)
    tables = {spread: design_table(args, spread) for spread in args.spread}
    latency = request_latency()
    print(f"next_pairs, active, 8 conditions, 7 pairs: {latency * 1e3:.1f} ms per call (goal <= 20 ms)")
    print(f"machine context: torch.mm 2048x2048 float32 {mm_rate(torch.device('cpu')) / 1e9:.1f} GFLOP/s")
    return tables


if __name__ == "__main__":
    main()

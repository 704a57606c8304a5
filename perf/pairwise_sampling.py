"""Sampling designs for pairwise studies: comparisons needed to recover a known quality scale.

    .venv/bin/python -m perf.pairwise_sampling [--quick] [--conditions 10] [--spread 4,6] [--seeds 0,1,2,3]
        [--repeats 24] [--budget 1500]

Known true qualities (``--conditions`` spread uniformly at random over ``--spread`` JOD, new ones each study; one
table per spread), simulated Thurstone Case V observers (unit-variance noise in Thurstone's unit, 1 JOD = 75 %
preference), batches of n - 1 comparisons chosen by each design (``active``: greedy batch by expected variance
reduction; ``random``; ``full``: balanced round robin); after each batch the scale is fitted and its RMSE to the
truth taken (both centred), for the scale as reported by default (maximum a posteriori with the weak 10 JOD prior,
``map``) and with Firth's bias reduction (``bias-reduced``). Every design is scored by the same fits, on the same
true qualities and seeds.

Each seed runs ``--repeats`` studies. Per target RMSE the table gives the comparisons at which the mean RMSE curve
of each seed's studies reaches it (``seeds``: one figure per seed, so the spread between seeds shows), and those of
the mean and the median curve of all seeds' studies together (the median is not moved by a few studies whose fit
went far off; the mean is). ``blow-ups`` counts the studies whose RMSE is still above 1 JOD somewhere after n(n - 1)
comparisons. The ratio rows divide active's figures by random's and full's; then a line says whether active
needed fewer comparisons than both in every seed and summary, and the largest ratio, and the last the ceiling of
what any design could save: the share of uniform pairs' comparisons that the A-optimal fixed design, knowing the
true qualities, needs in the limit of many comparisons (``simulation.optimal_share``, mean over the studies).

It also times one ``next_pairs`` call (8 conditions, 7 pairs, some data: what a web request does) and, for context
(project rule), this machine's torch.mm rate in the same run.
"""

import argparse
import time

import numpy as np
import torch

from mos_study.analysis.pairwise.sampling import DESIGNS, next_pairs
from mos_study.analysis.pairwise.simulation import (
    ESTIMATORS,
    optimal_share,
    pooled,
    run_seeds,
    simulate_choices,
    true_qualities,
)
from perf.machine import mm_rate

TARGETS = (0.3, 0.2)
OTHERS = ("random", "full")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.pairwise_sampling", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run for the smoke test (seconds)")
    parser.add_argument("--conditions", type=int, default=10)
    parser.add_argument("--spread", default="4,6", help="ranges of the true qualities, JOD (comma list)")
    parser.add_argument("--seeds", default="0,1,2,3", help="comma list; each seed runs --repeats studies")
    parser.add_argument("--repeats", type=int, default=24, help="studies per seed")
    parser.add_argument("--budget", type=int, default=1500, help="comparisons per simulated study")
    args = parser.parse_args(argv)
    if args.quick:
        args.conditions, args.spread, args.seeds, args.repeats, args.budget = 8, "4", "0,1", 4, 420
    args.spread = [float(part) for part in args.spread.split(",") if part.strip()]
    args.seeds = [int(part) for part in args.seeds.split(",") if part.strip()]
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


def ideal_share(args, spread):
    """The mean over the benchmark's studies (same true qualities) of ``simulation.optimal_share``."""
    shares = [
        optimal_share(true_qualities(args.conditions, spread, np.random.default_rng([seed, repeat])))
        for seed in args.seeds
        for repeat in range(args.repeats)
    ]
    return float(np.mean(shares))


def figures(runs, target, estimator):
    """Comparisons needed: one per seed (its mean curve), then all seeds' mean and median curves."""
    every = pooled(runs)
    per_seed = [run.needed(target, estimator) for run in runs]
    return per_seed, [every.needed(target, estimator, "mean"), every.needed(target, estimator, "median")]


def design_table(args, spread):
    """Print one spread's table (both estimators); returns {(design, estimator): {target: (per seed, summaries)}}
    and the largest ratio of active's figures to another design's (NaN where a figure is missing)."""
    options = dict(n_conditions=args.conditions, spread=spread, budget=args.budget, repeats=args.repeats)
    studies = len(args.seeds) * args.repeats
    print(
        f"{args.conditions} conditions over {spread:g} JOD: seeds {','.join(map(str, args.seeds))} x "
        f"{args.repeats} studies, up to {args.budget} comparisons, batches of {args.conditions - 1}"
    )
    runs = {}
    for design in DESIGNS:
        start = time.perf_counter()
        runs[design] = run_seeds(design, args.seeds, **options)
        print(f"  {design}: {time.perf_counter() - start:.1f} s")
    needed, worst = {}, 0.0
    for estimator in ESTIMATORS:
        header = "".join(f"  RMSE {t:.1f}: seeds | mean median" for t in TARGETS)
        print(f"{'scale: ' + estimator:<20s}{header}  blow-ups (of {studies})")
        for design in DESIGNS:
            needed[design, estimator] = {t: figures(runs[design], t, estimator) for t in TARGETS}
            cells = "".join(_cells(*needed[design, estimator][t], _count(args.budget)) for t in TARGETS)
            print(f"{design:<20s}{cells}  {pooled(runs[design]).blowups(estimator):>4d}")
        for other in OTHERS:
            cells = ""
            for t in TARGETS:
                (seeds_a, summary_a), (seeds_b, summary_b) = needed["active", estimator][t], needed[other, estimator][t]
                ratios = _ratios(seeds_a, seeds_b, args.budget), _ratios(summary_a, summary_b, args.budget)
                worst = max(worst, max(bound for bound, _ in ratios[0] + ratios[1]))
                cells += _cells(*ratios, _show_ratio)
            print(f"{'active/' + other:<20s}{cells}")
    return needed, worst


def _ratios(active, other, budget):
    """Per figure (ratio or its bound, sign): active's comparisons over the other design's. Where the other never
    reached the target within the budget, the ratio is below active/budget ("<"); where active did not, above
    budget/other (">", counted as a loss); where neither did, unknown (infinite: counted as a loss)."""
    out = []
    for a, b in zip(active, other):
        if np.isnan(a):
            out.append((np.inf, "n/a") if np.isnan(b) else (budget / b, ">"))
        else:
            out.append((a / budget, "<") if np.isnan(b) else (a / b, ""))
    return out


def _cells(per_seed, summaries, show):
    return f"  {'/'.join(show(v) for v in per_seed):>13s} | {show(summaries[0]):>4s} {show(summaries[1]):>6s}"


def _count(budget):
    return lambda value: f">{budget}" if np.isnan(value) else f"{value:.0f}"


def _show_ratio(ratio):
    bound, sign = ratio
    return "n/a" if sign == "n/a" else f"{sign}{bound:.2f}"


def main(argv=None):
    args = parse_args(argv)
    tables = {}
    for spread in args.spread:
        tables[spread], worst = design_table(args, spread)
        verdict = "yes" if worst < 1 else "no"
        print(f"active fewer than random and full in every seed, summary, scale and target: {verdict} ", end="")
        print(f"(largest ratio {worst:.2f})")
        ceiling = ideal_share(args, spread)
        print(
            f"ceiling: the A-optimal fixed design knowing the truth needs {ceiling:.2f} of uniform pairs' comparisons\n"
        )
    latency = request_latency()
    print(f"next_pairs, active, 8 conditions, 7 pairs: {latency * 1e3:.1f} ms per call (goal <= 20 ms)")
    print(f"machine context: torch.mm 2048x2048 float32 {mm_rate(torch.device('cpu')) / 1e9:.1f} GFLOP/s")
    return tables


if __name__ == "__main__":
    main()

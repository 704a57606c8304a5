"""Speed of the MOS statistics: 100,000 ratings (300 raters, 2,000 stimuli = 200 images x 10 methods, incomplete
design, 5 % repeats) through every screening rule, the P.910 model, significance and all files.

    .venv/bin/python -m perf.analysis [--ratings 100000]

Prints the seconds per stage and, for context (project rule), this machine's torch.mm rate measured in the same run.
The statistics are pandas/numpy group-bys and bincounts: memory-bound, so the GEMM rate is context, not a roofline.
"""

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from mos_study.analysis import AnalysisOptions, build_results, prepare_ratings, render_files, write_files
from perf.machine import mm_rate


def synthetic_ratings(n_ratings=100_000, n_raters=300, n_images=200, n_methods=10, seed=0):
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
            "rater": [f"rater{r:03d}" for r in rater],
            "image": [f"img{i:03d}" for i in image],
            "method": [f"method{m:02d}" for m in method],
            "score": score,
            "kind": np.where(rng.random(n_ratings) < 0.05, "repeat", "trial"),
            "response_ms": rng.gamma(4.0, 600.0, n_ratings),
            "trial": np.arange(n_ratings),
        }
    )
    return prepare_ratings(frame)


def timed(label, function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    print(f"{label:<36s} {time.perf_counter() - start:7.2f} s")
    return value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ratings", type=int, default=100_000)
    args = parser.parse_args()
    ratings = synthetic_ratings(args.ratings)
    print(
        f"{len(ratings)} ratings, {ratings.rater.nunique()} raters, "
        f"{len(ratings[['dataset', 'image', 'method']].drop_duplicates())} stimuli; "
        f"torch {torch.get_num_threads()} threads"
    )
    results = timed("statistics (build_results)", build_results, ratings, AnalysisOptions())
    timed("  with bootstrap 200", build_results, ratings, AnalysisOptions(bootstrap=200))
    files = timed("tables + summary (no figures)", render_files, results, figures=False)
    timed("tables + summary + 4 figures", render_files, results, figures=True)
    with tempfile.TemporaryDirectory() as out:
        timed("write files", write_files, files, out)
    print(f"P.910 iterations: {results.subjective_iterations}; screened out: {len(results.rejected_raters)}")
    print(f"machine context: torch.mm 2048x2048 float32 {mm_rate(torch.device('cpu')) / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()

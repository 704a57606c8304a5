"""Simulated pairwise studies: Thurstone Case V observers choosing between conditions of known quality, and the
sampling-design experiment behind ``python -m perf.pairwise_sampling`` (also used by the tests).

An observer sees the two conditions with independent Gaussian noise on their qualities and picks the better: in JOD,
``P(i preferred to j) = Φ(0.6745 · (q_i - q_j))`` (unit-variance noise on the difference in Thurstone's unit, pwcmp's
σ = 1.4826 JOD), so a difference of 1 JOD is preferred 75 % of the time.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .sampling import next_pairs
from .scaling import MODEL_UNITS_PER_JOD, fisher_weight, fit_scale, win_probability


def simulate_choices(quality, pairs, rng):
    """For each pair (i, j), whether i was preferred (bool array)."""
    pairs = np.asarray(pairs, dtype=int).reshape(-1, 2)
    difference = quality[pairs[:, 0]] - quality[pairs[:, 1]]
    return rng.random(len(pairs)) < win_probability(difference)


def simulate_study(quality, n_raters, pairs_per_rater, *, images=("img",), methods=None, seed=0, design="random"):
    """A comparisons table (``rater,image,method_a,method_b,choice``) of simulated raters; each rater's pairs come from
    ``next_pairs`` on that rater's image's wins so far (``design``)."""
    rng = np.random.default_rng(seed)
    quality = np.asarray(quality, dtype=float)
    methods = list(methods or [f"m{i}" for i in range(len(quality))])
    wins = {image: np.zeros((len(quality), len(quality))) for image in images}
    rows = []
    for rater in range(n_raters):
        for image in images:
            pairs = next_pairs(len(quality), wins[image], pairs_per_rater, design=design, rng=rng)
            for (i, j), first in zip(pairs, simulate_choices(quality, pairs, rng)):
                wins[image][(i, j) if first else (j, i)] += 1
                rows.append([f"r{rater:03d}", image, methods[i], methods[j], "a" if first else "b"])
    return pd.DataFrame(rows, columns=["rater", "image", "method_a", "method_b", "choice"])


def rmse(estimate, truth):
    """RMSE of a scale against the truth after removing each one's mean (a scale is defined up to a shift)."""
    return float(np.sqrt(np.mean(((estimate - estimate.mean()) - (truth - truth.mean())) ** 2)))


ESTIMATORS = ("map", "bias-reduced")  # the scale as reported by default, and with Firth's bias reduction
SUMMARIES = ("mean", "median")  # of the RMSE over studies, at each checkpoint
BLOWUP_JOD = 1.0


@dataclass(frozen=True)
class DesignRun:
    design: str
    comparisons: np.ndarray  # checkpoints: comparisons made so far
    rmse: np.ndarray  # (studies, checkpoints) RMSE of the recovered scale (JOD), the default (MAP) fit
    rmse_bias_reduced: np.ndarray  # the same with Firth's bias reduction
    n_conditions: int

    def errors(self, estimator="map"):
        return self.rmse if estimator == "map" else self.rmse_bias_reduced

    def needed(self, target, estimator="map", summary="mean"):
        """Comparisons at which the mean (or median) RMSE over studies first falls to ``target`` (linear
        interpolation between checkpoints); NaN when it never does. The median is not moved by a few studies
        whose fit went far off; the mean is, and both are reported."""
        errors = self.errors(estimator)
        return crossing(
            self.comparisons, errors.mean(axis=0) if summary == "mean" else np.median(errors, axis=0), target
        )

    def blowups(self, estimator="map", limit=BLOWUP_JOD):
        """Studies whose RMSE is still above ``limit`` JOD at some checkpoint after n(n - 1) comparisons (every
        pair twice on average): a fit stretched by unanimous pairs, or a design that left part of the scale open."""
        n = self.n_conditions
        late = self.comparisons >= n * (n - 1)
        return int((self.errors(estimator)[:, late] > limit).any(axis=1).sum())


def crossing(comparisons, curve, target):
    below = np.flatnonzero(curve <= target)
    if len(below) == 0:
        return float("nan")
    k = below[0]
    if k == 0:
        return float(comparisons[0])
    x0, x1, y0, y1 = comparisons[k - 1], comparisons[k], curve[k - 1], curve[k]
    return float(x0 + (y0 - target) / (y0 - y1) * (x1 - x0))


def pooled(runs):
    """One DesignRun of the studies of several (same design, same checkpoints)."""
    first = runs[0]
    return DesignRun(
        first.design,
        first.comparisons,
        np.concatenate([run.rmse for run in runs]),
        np.concatenate([run.rmse_bias_reduced for run in runs]),
        first.n_conditions,
    )


def true_qualities(n_conditions, spread, rng):
    """Qualities (JOD) spread uniformly at random over [0, spread], fixed first and last so the range is the same."""
    inner = rng.uniform(0.0, spread, n_conditions - 2)
    return np.sort(np.concatenate([[0.0, spread], inner]))


def run_design(design, *, n_conditions=10, spread=4.0, budget=1500, batch=None, repeats=10, seed=0):
    """RMSE after every batch of ``batch`` comparisons (default n - 1, one spanning tree), up to ``budget``
    comparisons, over ``repeats`` simulated studies (the same true qualities and seeds for every design), for the
    default fit and the bias-reduced one."""
    batch = batch or n_conditions - 1
    steps = budget // batch
    errors = np.zeros((2, repeats, steps))
    for repeat in range(repeats):
        truth = true_qualities(n_conditions, spread, np.random.default_rng([seed, repeat]))
        rng = np.random.default_rng([seed, repeat, 1])
        wins = np.zeros((n_conditions, n_conditions))
        for step in range(steps):
            pairs = next_pairs(n_conditions, wins, batch, design=design, rng=rng)
            for (i, j), first in zip(pairs, simulate_choices(truth, pairs, rng)):
                wins[(i, j) if first else (j, i)] += 1
            estimate = fit_scale(wins)
            errors[0, repeat, step] = rmse(estimate, truth)
            errors[1, repeat, step] = rmse(fit_scale(wins, start=estimate, bias_reduction=True), truth)
    return DesignRun(design, batch * np.arange(1, steps + 1), errors[0], errors[1], n_conditions)


def run_seeds(design, seeds, **options):
    """``run_design`` once per seed (each seed its own ``repeats`` studies): [DesignRun, ...] in seed order."""
    return [run_design(design, seed=seed, **options) for seed in seeds]


def optimal_share(quality, iterations=1000):
    """The comparisons that the best fixed design, knowing the true qualities, needs for a given squared error of
    the scale, as a share of what uniform pairs (``random``, ``full``) need, in the limit of many comparisons: the
    A-optimal allocation over pairs (minimum trace of the centred inverse Fisher information per comparison), by the
    multiplicative algorithm (Silvey, Titterington & Torsney 1978). No design that learns the qualities as it goes
    can beat it by much once every pair has a few answers; it is the ceiling of what active sampling can save."""
    quality = np.asarray(quality, dtype=float) * MODEL_UNITS_PER_JOD["thurstone"]
    n = len(quality)
    upper = np.triu_indices(n, 1)
    weight = fisher_weight("thurstone", quality[:, None] - quality[None, :])[0][upper]
    share = np.full(len(weight), 1.0 / len(weight))
    uniform = _error_and_gradient(n, upper, weight, share)[0]
    for _ in range(iterations):
        error, gradient = _error_and_gradient(n, upper, weight, share)
        share = share * gradient / np.sum(share * gradient)
    return float(error / uniform)


def _error_and_gradient(n, upper, weight, share):
    """trace(C I⁻¹ C) of the design ``share`` (C the centring), and minus its derivative per pair."""
    coupling = np.zeros((n, n))
    coupling[upper] = share * weight
    coupling = coupling + coupling.T
    information = np.diag(coupling.sum(axis=1)) - coupling + np.ones((n, n)) / n
    centre = np.eye(n) - 1.0 / n
    covariance = centre @ np.linalg.inv(information) @ centre
    squared = covariance @ covariance
    diagonal = np.diag(squared)
    return np.trace(covariance), weight * (diagonal[:, None] + diagonal[None, :] - 2 * squared)[upper]

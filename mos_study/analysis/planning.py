"""Study planning: how many ratings a MOS study needs, from a pilot's ratings or an assumed standard deviation.

Two questions, both per dataset and with the same statistics the analysis reports:

- **Precision of a method's MOS**: the 95 % CI of ``mos.csv`` is ``mos ± q·sd/√n`` over the n ratings of a method
  (``mos.mos_table``); the ratings needed for a target half-width h are the smallest n with ``q·sd/√n <= h``, q the
  normal quantile (``normal``) or Student's t with n-1 degrees of freedom (``t``, found by search). Spread over the
  K images of the dataset: ``ceil(n / K)`` ratings per stimulus.
- **Detecting a MOS difference Δ between two methods** with the primary test, paired over the K images: the per-image
  difference of MOS has variance ``σ_d² = σ_img² + 2·σ_e²/r`` (σ_e the SD of one rating about its stimulus' mean,
  σ_img the SD over images of the true per-image difference, r ratings per stimulus). A two-sided paired test at
  level α has power ``1-β`` when ``K·Δ²/σ_d² >= (q_{1-α/2} + q_{1-β})²`` (normal approximation; with ``t`` the
  quantiles of Student's t with K-1 degrees of freedom), hence ``r >= 2σ_e² / (K·Δ²/(q_{1-α/2}+q_{1-β})² - σ_img²)``.
  Where the denominator is not positive no number of ratings suffices: more images are needed,
  ``K >= (q_{1-α/2}+q_{1-β})²·σ_img²/Δ²`` at the least.

Raters: with every rater scoring every stimulus (a complete design), raters = ratings per stimulus; with S stimuli in
the study and M per rater, ``ceil(r·S/M)``. A pilot gives σ (SD of a method's ratings), σ_e (pooled within-stimulus
SD) and σ_img per pair (the variance of the pilot's per-image differences less its rating noise, at least 0).
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .order import methods_in_order, paper_sort
from .ratings import RatingsError, test_rows

APPROXIMATIONS = ("normal", "t")


def _quantile(p, approximation, df=None):
    if approximation == "normal" or df is None:
        return float(stats.norm.ppf(p))
    return float(stats.t.ppf(p, df))


def ratings_for_half_width(sd, half_width, confidence=0.95, approximation="t"):
    """The smallest number of ratings n whose CI ``mos ± q·sd/√n`` has half-width <= ``half_width``."""
    _check_approximation(approximation)
    if sd < 0 or half_width <= 0:
        raise RatingsError(f"need sd >= 0 and a half-width > 0 (got sd {sd}, half-width {half_width})")
    p = 1 - (1 - confidence) / 2
    n = max(2, math.ceil((_quantile(p, "normal") * sd / half_width) ** 2))
    if approximation == "t":
        while stats.t.ppf(p, n - 1) * sd / math.sqrt(n) > half_width:
            n += 1
    return n


def half_width_for_ratings(sd, n_ratings, confidence=0.95, approximation="t"):
    """The half-width ``q·sd/√n`` of the CI of a MOS over ``n_ratings`` ratings (``mos.mos_table``'s CI); NaN
    below 2 ratings with ``t``."""
    _check_approximation(approximation)
    if n_ratings < 1 or (approximation == "t" and n_ratings < 2):
        return math.nan
    p = 1 - (1 - confidence) / 2
    return _quantile(p, approximation, n_ratings - 1) * sd / math.sqrt(n_ratings)


def ratings_per_stimulus_for_difference(
    difference, sd_rating, n_images, *, sd_image=0.0, alpha=0.05, power=0.8, approximation="normal"
):
    """Ratings per stimulus r for the paired per-image test to detect ``difference`` (see the module docstring);
    None where no r suffices with ``n_images`` images."""
    _check_approximation(approximation)
    if difference <= 0 or n_images < 2 or not 0 < power < 1 or not 0 < alpha < 1:
        raise RatingsError("need a difference > 0, at least 2 images, 0 < power < 1 and 0 < alpha < 1")
    q = _quantile(1 - alpha / 2, approximation, n_images - 1) + _quantile(power, approximation, n_images - 1)
    budget = n_images * difference**2 / q**2 - sd_image**2  # the rating noise 2 σ_e² / r may take this much
    if budget <= 0:
        return None
    return max(1, math.ceil(2 * sd_rating**2 / budget))


def images_for_difference(difference, sd_image, *, alpha=0.05, power=0.8):
    """The fewest images with which any number of ratings could reach the power (normal approximation)."""
    q = _quantile(1 - alpha / 2, "normal") + _quantile(power, "normal")
    return max(2, math.floor(q**2 * sd_image**2 / difference**2) + 1)


def power_of(difference, sd_rating, n_images, ratings_per_stimulus, *, sd_image=0.0, alpha=0.05):
    """Power of the paired per-image test (normal approximation) with r ratings per stimulus."""
    sd_d = math.sqrt(sd_image**2 + 2 * sd_rating**2 / ratings_per_stimulus)
    return float(stats.norm.cdf(math.sqrt(n_images) * difference / sd_d - stats.norm.ppf(1 - alpha / 2)))


def raters_needed(ratings_per_stimulus, n_stimuli=None, stimuli_per_rater=None):
    """Complete design (every rater scores every stimulus): r raters; else ``ceil(r·S/M)``."""
    if ratings_per_stimulus is None:
        return None
    if not n_stimuli or not stimuli_per_rater or stimuli_per_rater >= n_stimuli:
        return int(ratings_per_stimulus)
    return math.ceil(ratings_per_stimulus * n_stimuli / stimuli_per_rater)


def _check_approximation(approximation):
    if approximation not in APPROXIMATIONS:
        raise RatingsError(f"approximation must be one of {', '.join(APPROXIMATIONS)}, not {approximation!r}")


@dataclass
class PlanOptions:
    half_width: float = 0.2
    difference: float = 0.3
    power: float = 0.8
    alpha: float = 0.05
    approximation: str = "t"
    stimuli_per_rater: int | None = None


def pilot_estimates(ratings):
    """From canonical pilot ratings (calibration rows left out): per (dataset, method) the SD of its ratings, the
    images and stimuli; per dataset the pooled within-stimulus SD σ_e; per pair of methods σ_img."""
    trials = test_rows(ratings).astype({"dataset": str, "image": str, "method": str})
    if trials.empty:
        raise RatingsError("the pilot has no ratings outside calibration trials")
    per_method = trials.groupby(["dataset", "method"])["score"].agg(n_ratings="count", sd="std").reset_index()
    per_method["n_images"] = trials.groupby(["dataset", "method"])["image"].nunique().to_numpy()
    stimuli = trials.groupby(["dataset", "image", "method"])["score"].agg(["count", "var", "mean"]).reset_index()
    df = (stimuli["count"] - 1).clip(lower=0)
    pooled = (stimuli["var"].fillna(0) * df).groupby(stimuli["dataset"]).sum() / df.groupby(stimuli["dataset"]).sum()
    sd_rating = np.sqrt(pooled).to_dict()
    pairs = []
    for dataset, part in stimuli.groupby("dataset"):
        wide_mean = part.pivot(index="image", columns="method", values="mean")
        wide_n = part.pivot(index="image", columns="method", values="count")
        for a, b in itertools.combinations(methods_in_order(wide_mean.columns), 2):
            both = wide_mean[[a, b]].dropna().index
            if len(both) < 2:
                continue
            d = wide_mean.loc[both, a] - wide_mean.loc[both, b]
            noise = sd_rating[dataset] ** 2 * (1 / wide_n.loc[both, a] + 1 / wide_n.loc[both, b])
            sd_image = math.sqrt(max(0.0, float(d.var(ddof=1)) - float(noise.mean())))
            pairs.append(
                {
                    "dataset": dataset,
                    "method_a": a,
                    "method_b": b,
                    "pilot_difference": float(d.mean()),
                    "sd_image": sd_image,
                    "n_images": len(both),
                }
            )
    return per_method, sd_rating, pd.DataFrame(pairs)


def plan_from_pilot(ratings, options):
    """Two tables: ``precision`` (dataset, method, sd, ratings_needed, ratings_per_stimulus, raters) and
    ``difference`` (dataset, method_a, method_b, sd_rating, sd_image, ratings_per_stimulus, raters, power)."""
    per_method, sd_rating, pairs = pilot_estimates(ratings)
    n_stimuli = int(per_method["n_images"].sum())
    rows = []
    for row in per_method.itertuples(index=False):
        sd = float(row.sd) if pd.notna(row.sd) else float(sd_rating.get(row.dataset, 0.0))
        n = ratings_for_half_width(sd, options.half_width, approximation=options.approximation)
        r = math.ceil(n / row.n_images)
        rows.append(
            {
                "dataset": row.dataset,
                "method": row.method,
                "sd": sd,
                "n_images": int(row.n_images),
                "ratings_needed": n,
                "ratings_per_stimulus": r,
                "raters": raters_needed(r, n_stimuli, options.stimuli_per_rater),
            }
        )
    precision = paper_sort(pd.DataFrame(rows), ["dataset", "method"])
    rows = []
    for pair in pairs.itertuples(index=False):
        rows.append(
            difference_row(
                pair.dataset,
                pair.method_a,
                pair.method_b,
                sd_rating[pair.dataset],
                pair.sd_image,
                pair.n_images,
                options,
                n_stimuli,
            )
        )
    difference = pd.DataFrame(rows)
    if not difference.empty:
        difference = paper_sort(difference, ["dataset", "method_a", "method_b"])
    return precision, difference


def difference_row(dataset, a, b, sd_rating, sd_image, n_images, options, n_stimuli=None):
    r = ratings_per_stimulus_for_difference(
        options.difference,
        sd_rating,
        n_images,
        sd_image=sd_image,
        alpha=options.alpha,
        power=options.power,
        approximation=options.approximation,
    )
    return {
        "dataset": dataset,
        "method_a": a,
        "method_b": b,
        "difference": options.difference,
        "sd_rating": sd_rating,
        "sd_image": sd_image,
        "n_images": int(n_images),
        "ratings_per_stimulus": r,
        "raters": raters_needed(r, n_stimuli, options.stimuli_per_rater),
        "power_normal": None
        if r is None
        else power_of(options.difference, sd_rating, n_images, r, sd_image=sd_image, alpha=options.alpha),
        "images_needed_at_least": images_for_difference(
            options.difference, sd_image, alpha=options.alpha, power=options.power
        )
        if r is None
        else None,
    }

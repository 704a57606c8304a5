"""Pairwise significance between methods within each dataset, Holm-corrected."""

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ["dataset", "method_a", "method_b", "test", "statistic", "p_value", "p_holm", "significant", "n_a", "n_b"]


def holm(p_values):
    """Holm-Bonferroni step-down adjusted p-values; NaN entries stay NaN and do not count in the family."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def significance(ratings, mos_per_image, alpha=0.05):
    """Per dataset and pair of methods: Wilcoxon signed-rank over images on per-image MOS (images both methods have;
    scipy's default: two-sided, zero differences dropped, exact for small samples) and Mann-Whitney U over the
    ratings (two-sided). Holm's correction runs over the pairs of one dataset, separately for each test."""
    rows = []
    ratings = ratings.astype({"dataset": str, "method": str})
    mos_per_image = mos_per_image.astype({"dataset": str, "image": str, "method": str})
    for dataset, per_image in mos_per_image.groupby("dataset", sort=True):
        wide = per_image.pivot(index="image", columns="method", values="mos")
        scores = ratings[ratings["dataset"] == dataset].groupby("method")["score"]
        for a, b in itertools.combinations(sorted(wide.columns), 2):
            paired = wide[[a, b]].dropna()
            rows.append([dataset, a, b, "wilcoxon", *_wilcoxon(paired[a], paired[b]), len(paired), len(paired)])
            xa, xb = scores.get_group(a).to_numpy(), scores.get_group(b).to_numpy()
            test = stats.mannwhitneyu(xa, xb, alternative="two-sided")
            rows.append([dataset, a, b, "mannwhitney", float(test.statistic), float(test.pvalue), len(xa), len(xb)])
    table = pd.DataFrame(
        rows, columns=["dataset", "method_a", "method_b", "test", "statistic", "p_value", "n_a", "n_b"]
    )
    table["p_holm"] = np.nan
    for _, index in table.groupby(["dataset", "test"]).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"])
    table["significant"] = table["p_holm"] < alpha
    return table[COLUMNS].sort_values(["dataset", "test", "method_a", "method_b"]).reset_index(drop=True)


def _wilcoxon(x, y):
    difference = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    if len(difference) == 0:
        return np.nan, np.nan
    if not difference.any():
        return 0.0, 1.0  # identical per-image MOS: no evidence of a difference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = stats.wilcoxon(x, y)
    return float(test.statistic), float(test.pvalue)

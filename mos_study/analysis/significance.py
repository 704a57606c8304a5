"""Pairwise significance between methods within each dataset, Holm-corrected.

The primary test is Wilcoxon's signed-rank test paired over images on per-image MOS: the image is the unit that was
sampled, and pairing removes the image's own difficulty. The Mann-Whitney U test over individual ratings is kept
because the SRGAN paper used it (``role`` "as in the paper"); it treats every rating as independent although a
rater's and an image's ratings are correlated, so its p-values are far too small (srgan-mse vs srresnet-mse on
Set14: Holm p 4.2e-8 against 0.147 per image). See docs/analysis.md.
"""

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import special, stats

from .order import methods_in_order, paper_sort

COLUMNS = [
    "dataset",
    "method_a",
    "method_b",
    "test",
    "statistic",
    "p_value",
    "p_holm",
    "significant",
    "n_a",
    "n_b",
    "role",
]
PRIMARY_TEST = "wilcoxon"
PAPER_TEST = "mannwhitney"
ROLES = {PRIMARY_TEST: "primary", PAPER_TEST: "as in the paper"}
TEST_ORDER = {PRIMARY_TEST: 0, PAPER_TEST: 1}


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
    scipy's default: two-sided, zero differences dropped, exact for small samples), the primary test, and
    Mann-Whitney U over the ratings (two-sided), as in the paper. Holm's correction runs over the pairs of one
    dataset, separately for each test. Rows: datasets and pairs in the paper's order (method_a the earlier method),
    the primary test first."""
    rows = []
    scores = scores_by_method(ratings)
    mos_per_image = mos_per_image.astype({"dataset": str, "image": str, "method": str})
    for dataset, per_image in mos_per_image.groupby("dataset", sort=True):
        wide = per_image.pivot(index="image", columns="method", values="mos")
        counts = value_counts(scores, dataset)
        for a, b in itertools.combinations(methods_in_order(wide.columns), 2):
            paired = wide[[a, b]].dropna()
            rows.append([dataset, a, b, "wilcoxon", *_wilcoxon(paired[a], paired[b]), len(paired), len(paired)])
            xa, xb = scores[dataset, a], scores[dataset, b]
            rows.append([dataset, a, b, "mannwhitney", *mann_whitney(counts[a], counts[b], xa, xb), len(xa), len(xb)])
    table = pd.DataFrame(
        rows, columns=["dataset", "method_a", "method_b", "test", "statistic", "p_value", "n_a", "n_b"]
    )
    table["p_holm"] = np.nan
    for _, index in table.groupby(["dataset", "test"]).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"])
    table["significant"] = table["p_holm"] < alpha
    table["role"] = table["test"].map(ROLES)
    table["test_order"] = table["test"].map(TEST_ORDER)
    return paper_sort(table, ["dataset", "test_order", "method_a", "method_b"])[COLUMNS]


def scores_by_method(ratings):
    """(dataset, method) as strings -> that method's scores in the table's order: one group-by over the key codes,
    not a string comparison of every rating per dataset."""
    keys = [ratings[key].astype("category") for key in ("dataset", "method")]
    codes = [key.cat.codes.to_numpy() for key in keys]
    names = [key.cat.categories.astype(str) for key in keys]
    group = codes[0].astype(np.int64) * len(names[1]) + codes[1]
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    score = ratings["score"].to_numpy()[order]
    firsts = group[order][np.r_[0, bounds]] if len(order) else []
    return {
        (names[0][g // len(names[1])], names[1][g % len(names[1])]): part
        for g, part in zip(firsts, np.split(score, bounds))
    }


def value_counts(scores, dataset):
    """method -> how many of its ratings in ``dataset`` have each distinct score of the dataset (ascending)."""
    methods = {method: values for (name, method), values in scores.items() if name == dataset}
    distinct = np.unique(np.concatenate(list(methods.values())))
    return {m: np.bincount(np.searchsorted(distinct, v), minlength=len(distinct)) for m, v in methods.items()}


def mann_whitney(counts_a, counts_b, xa, xb):
    """(U, p) of ``scipy.stats.mannwhitneyu(xa, xb, alternative="two-sided")`` computed from the counts of each
    distinct score instead of ranking every rating: scipy's asymptotic formula step by step, with the same numbers
    (ranks of ties are half-integers and tie counts integers, so each sum is exact in float64, as scipy's are).
    Small samples without ties get scipy's exact test."""
    n1, n2 = int(counts_a.sum()), int(counts_b.sum())
    t = (counts_a + counts_b).astype(float)
    if not (n1 > 8 and n2 > 8) and not (t > 1).any():
        test = stats.mannwhitneyu(xa, xb, alternative="two-sided")
        return float(test.statistic), float(test.pvalue)
    rank = np.cumsum(t) - t + (t + 1) / 2  # the average rank of each distinct score
    u1 = float(np.dot(counts_a, rank)) - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    n = n1 + n2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - float(np.sum(t**3 - t)) / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u - n1 * n2 / 2 - 0.5) / s  # with the continuity correction
    return u1, float(np.clip(special.ndtr(-z) * 2, 0.0, 1.0))


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

"""Rater screening for pairwise data, after pwcmp's ``pw_outlier_analysis`` (Perez-Ortiz & Mantiuk 2017).

For each rater, every image is scaled again from everyone else's comparisons (leave one rater out, same model and
prior), and the rater's own choices are scored by their log-likelihood under that scale (natural log; a tie counts
half a choice each way). pwcmp sums these over images; we also divide by the rater's number of comparisons
(``mean_log_likelihood``), because with active sampling raters see different numbers of trials and a plain sum
would make a rater who did more trials look worse. The distance is pwcmp's: with Q1 and IQR the first quartile and
interquartile range of the raters' mean log-likelihoods, ``distance = (Q1 - L) / IQR`` for L below Q1, else 0 (only
raters who agree less with the others than most do are far). A rater is flagged an outlier at distance > 1.5
(Tukey's fence; pwcmp prints the distance and leaves the threshold to the analyst). Flagged raters are reported, not
removed: pwcmp warns that small differences occur by chance, so the decision stays the researcher's.
"""

import numpy as np
import pandas as pd

from .scaling import log_likelihood, fit_model_units

OUTLIER_DISTANCE = 1.5
COLUMNS = ["rater", "n_comparisons", "log_likelihood", "mean_log_likelihood", "distance", "outlier"]


def rater_log_likelihoods(tensor, model, prior_sd, bias_reduction=False):
    """Per rater of a WinTensor: (log-likelihood of their choices under the others' scale, comparisons made)."""
    per_image = tensor.per_image
    others = per_image[None] - tensor.wins  # (raters, images, n, n): everyone else's wins
    scores = fit_model_units(others, model, prior_sd, bias_reduction=bias_reduction)
    totals = log_likelihood(tensor.wins, scores, model).sum(axis=-1)
    counts = tensor.wins.sum(axis=(1, 2, 3))
    return totals, counts


def screen_raters(tensors, model, prior_sd, threshold=OUTLIER_DISTANCE, bias_reduction=False):
    """The screening table over all datasets: a rater's log-likelihoods are summed over datasets (as pwcmp sums over
    scenes)."""
    totals, counts = {}, {}
    for tensor in tensors:
        if len(tensor.raters) < 2:
            continue  # nobody else to compare with
        values, n = rater_log_likelihoods(tensor, model, prior_sd, bias_reduction)
        for rater, value, count in zip(tensor.raters, values, n):
            totals[rater] = totals.get(rater, 0.0) + float(value)
            counts[rater] = counts.get(rater, 0.0) + float(count)
    raters = sorted(totals)
    table = pd.DataFrame(
        {
            "rater": raters,
            "n_comparisons": [counts[r] for r in raters],
            "log_likelihood": [totals[r] for r in raters],
        }
    )
    table["mean_log_likelihood"] = table["log_likelihood"] / table["n_comparisons"].where(table["n_comparisons"] > 0)
    table["distance"] = outlier_distance(table["mean_log_likelihood"].to_numpy())
    table["outlier"] = table["distance"] > threshold
    return table[COLUMNS]


def outlier_distance(values):
    """pwcmp's distance to the lower part of the distribution: (Q1 - L) / IQR below Q1, else 0."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    q1, q3 = np.nanpercentile(values, [25, 75])
    spread = q3 - q1
    if not spread > 0:
        return np.zeros_like(values)
    return np.where(values < q1, (q1 - values) / spread, 0.0)

"""Mean opinion scores with Student-t confidence intervals, P.913 bias removal and a rater/image bootstrap."""

import numpy as np
import pandas as pd
from scipy import stats

STIMULUS = ["dataset", "image", "method"]
METHOD = ["dataset", "method"]


def mos_table(ratings, keys):
    """MOS per group of ``keys``: n_ratings, mos, sd (sample, N-1), ci95_low/high = mos -+ t(0.975, n-1) sd / sqrt(n).

    This is the confidence interval of ITU-R BT.500-14 Annex 1 §A1-2.2 with Student's t in place of 1.96, as
    ITU-T P.1401 recommends for small panels. A group of one rating has no sd and no interval (left empty).
    """
    grouped = ratings.groupby(keys, sort=True)["score"]
    table = grouped.agg(n_ratings="count", mos="mean", sd="std").reset_index()  # pandas' std is the sample sd
    n = table["n_ratings"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.975, n - 1) * table["sd"].to_numpy() / np.sqrt(n)
    half = np.where(n > 1, half, np.nan)
    table["ci95_low"] = table["mos"] - half
    table["ci95_high"] = table["mos"] + half
    return table


def remove_bias(ratings):
    """ITU-T P.913 (06/2021) §12.4 subject bias removal.

    Each rater's bias is the mean, over the stimuli the rater scored, of (rater's score - that stimulus's MOS over
    all raters); the bias is subtracted from every score of that rater. Scores may leave the scale afterwards.
    """
    stimulus_mos = ratings.groupby(STIMULUS)["score"].transform("mean")
    bias = (ratings["score"] - stimulus_mos).groupby(ratings["rater"]).transform("mean")
    adjusted = ratings.copy()
    adjusted["score"] = ratings["score"] - bias
    return adjusted


def bootstrap_ci(ratings, n_resamples, seed=0, chunk=32):
    """Percentile 95 % CI of MOS per (dataset, method), resampling raters and images (with replacement) together.

    Each resample draws the panel of raters and, independently, the images of each dataset; a rating's weight is
    (times its rater was drawn) x (times its image was drawn); the resampled MOS is the weighted mean.
    """
    rng = np.random.default_rng(seed)
    rater_code = pd.factorize(ratings["rater"], sort=True)[0]
    image_code = pd.factorize(ratings["dataset"].astype(str) + "\x00" + ratings["image"].astype(str), sort=True)[0]
    group_keys = ratings[METHOD].drop_duplicates().sort_values(METHOD).reset_index(drop=True)
    group_code = pd.MultiIndex.from_frame(group_keys).get_indexer(pd.MultiIndex.from_frame(ratings[METHOD]))
    n_raters, n_images, n_groups = rater_code.max() + 1, image_code.max() + 1, len(group_keys)
    image_dataset = pd.factorize(ratings["dataset"], sort=True)[0]
    dataset_of_image = np.zeros(n_images, dtype=int)
    dataset_of_image[image_code] = image_dataset
    score = ratings["score"].to_numpy(dtype=float)
    means = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        rater_counts = _counts(rng, size, np.zeros(n_raters, dtype=int))
        image_counts = _counts(rng, size, dataset_of_image)
        weight = rater_counts[:, rater_code] * image_counts[:, image_code]
        flat = (np.arange(size)[:, None] * n_groups + group_code[None, :]).ravel()
        total = np.bincount(flat, (weight * score).ravel(), size * n_groups).reshape(size, n_groups)
        count = np.bincount(flat, weight.ravel(), size * n_groups).reshape(size, n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(total / count)
    means = np.concatenate(means)
    result = group_keys.copy()
    result["boot_ci95_low"] = np.nanpercentile(means, 2.5, axis=0)
    result["boot_ci95_high"] = np.nanpercentile(means, 97.5, axis=0)
    return result


def _counts(rng, size, stratum):
    """Multinomial draw counts per item, resampling within each stratum (dataset) as many items as it holds."""
    counts = np.zeros((size, len(stratum)), dtype=float)
    for value in np.unique(stratum):
        members = np.flatnonzero(stratum == value)
        draws = rng.integers(0, len(members), size=(size, len(members)))
        for row in range(size):
            counts[row, members] = np.bincount(draws[row], minlength=len(members))
    return counts

"""``build_pairwise_results``: scale per method and per image, CIs, win matrix, rater screening and significance of
a pairwise-comparison study, as one frozen PairwiseResults (tables as DataFrames, summary as text lines)."""

import itertools
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import stats

from ..order import paper_sort
from ..ratings import RatingsError
from ..significance import holm
from .comparisons import read_comparisons
from .scaling import (
    DEFAULT_PRIOR_SD,
    MODEL_UNITS_PER_JOD,
    bootstrap_scales,
    check_model,
    fit_model_units,
    fit_scale,
    log_likelihood,
)
from .screening import OUTLIER_DISTANCE, screen_raters
from .summary import summary_lines
from .tensors import datasets_of, win_tensor

ALPHA = 0.05
TEST_ROLES = {"bootstrap": "primary", "likelihood-ratio": "comparisons independent"}


@dataclass(frozen=True)
class PairwiseResults:
    scale_per_method: pd.DataFrame
    scale_per_image: pd.DataFrame
    win_matrix: pd.DataFrame
    raters: pd.DataFrame
    significance: pd.DataFrame
    summary: tuple
    comparisons: pd.DataFrame
    options: dict = field(default_factory=dict)

    def tables(self):
        """File name -> table, for the CSV files."""
        return {
            "pairwise_scale.csv": self.scale_per_method,
            "pairwise_scale_per_image.csv": self.scale_per_image,
            "pairwise_wins.csv": self.win_matrix,
            "pairwise_raters.csv": self.raters,
            "pairwise_significance.csv": self.significance,
        }

    @property
    def has_mos(self):
        return "mos" in self.scale_per_method.columns


def build_pairwise_results(
    comparisons,
    *,
    model="thurstone",
    bootstrap=1000,
    seed=0,
    mos=None,
    prior_sd=DEFAULT_PRIOR_SD,
    alpha=ALPHA,
    bias_reduction=False,
):
    """Scale a comparisons table (canonical, or anything ``read_comparisons`` accepts) per dataset: the method scale
    from all images' comparisons pooled in one win matrix, the per-image scale from that image's comparisons; JOD with
    the first method in the paper's order at 0; percentile 95 % CIs from ``bootstrap`` resamples of raters (seeded).
    ``mos``: a per-method MOS table (``method,mos`` [, ``dataset``, ``ci95_low``, ``ci95_high``]) put beside.
    ``bias_reduction``: Firth's bias-reduced estimate in place of the maximum (a posteriori) likelihood one, in every
    fit (scale, bootstrap, tests, screening)."""
    check_model(model)
    if bootstrap < 0:
        raise RatingsError(f"--bootstrap must be 0 or more, not {bootstrap}")
    comparisons = read_comparisons(comparisons)  # checked even when canonical already: cheap, and never wrong
    tensors = [win_tensor(comparisons, dataset) for dataset in datasets_of(comparisons)]
    fit = dict(model=model, prior_sd=prior_sd, bias_reduction=bool(bias_reduction))
    tables = _dataset_tables(tensors, bootstrap, seed, fit, alpha)
    scale = tables["scale_per_method"] if mos is None else _with_mos(tables["scale_per_method"], mos)
    result = PairwiseResults(
        **{**tables, "scale_per_method": scale},
        raters=screen_raters(tensors, model, prior_sd, bias_reduction=fit["bias_reduction"]),
        summary=(),
        comparisons=comparisons,
        options={**fit, "bootstrap": int(bootstrap), "seed": int(seed), "alpha": alpha},
    )
    return replace(result, summary=tuple(summary_lines(result)))


def _dataset_tables(tensors, bootstrap, seed, fit, alpha):
    """The per-dataset tables of every dataset, concatenated and in the paper's order (dataset ``k`` bootstraps with
    seed ``seed + k``)."""
    parts = {"scale_per_method": [], "scale_per_image": [], "win_matrix": [], "significance": []}
    for offset, tensor in enumerate(tensors):
        boot = _bootstrap(tensor, bootstrap, seed + offset, fit)
        parts["scale_per_method"].append(_method_scale(tensor, boot, fit))
        parts["scale_per_image"].append(_image_scale(tensor, boot, fit))
        parts["win_matrix"].append(_win_table(tensor))
        parts["significance"].append(_significance(tensor, boot, fit))
    tables = {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}
    return {
        "scale_per_method": paper_sort(tables["scale_per_method"], ["dataset", "method"]),
        "scale_per_image": paper_sort(tables["scale_per_image"], ["dataset", "image", "method"]),
        "win_matrix": paper_sort(tables["win_matrix"], ["dataset", "method", "opponent"]),
        "significance": _holm_per_dataset(tables["significance"], alpha),
    }


def _bootstrap(tensor, n_boot, seed, fit):
    """Resampled JOD scores (mean 0): pooled (B, n) and per image (B, images, n); None without a bootstrap, or with
    one rater (resampling raters then says nothing about the spread)."""
    if n_boot == 0 or len(tensor.raters) < 2:
        return None
    stacked = np.concatenate([tensor.pooled_per_rater[:, None], tensor.wins], axis=1)  # (raters, 1 + images, n, n)
    scores = bootstrap_scales(stacked, n_boot, seed, **fit)
    return {"pooled": scores[:, 0], "per_image": scores[:, 1:]}


def _interval(samples, reference):
    """Percentile 95 % CI of samples (B, ..., n) anchored at ``reference`` (index on the last axis)."""
    anchored = samples - np.take(samples, [reference], axis=-1)
    return np.percentile(anchored, 2.5, axis=0), np.percentile(anchored, 97.5, axis=0)


def _counts(wins):
    compared = wins + np.swapaxes(wins, -1, -2)
    return compared.sum(axis=-1), wins.sum(axis=-1)


def _method_scale(tensor, boot, fit):
    scores = fit_scale(tensor.pooled, **fit)
    scores = scores - scores[0]
    comparisons, points = _counts(tensor.pooled)
    low, high = _interval(boot["pooled"], 0) if boot else (np.full_like(scores, np.nan),) * 2
    return pd.DataFrame(
        {
            "dataset": tensor.dataset,
            "method": tensor.methods,
            "scale": scores,
            "ci95_low": low,
            "ci95_high": high,
            "n_comparisons": comparisons,
            "wins": points,
            "n_images": tensor.present().sum(axis=0),
            "n_raters": len(tensor.raters),
        }
    )


def _image_scale(tensor, boot, fit):
    """Per image, the JOD scale of the methods compared on it, the first of them (paper's order) at 0."""
    scores = fit_scale(tensor.per_image, **fit)
    present = tensor.present()
    comparisons, points = _counts(tensor.per_image)
    rows = []
    for k, image in enumerate(tensor.images):
        shown = np.flatnonzero(present[k])
        if len(shown) == 0:
            continue
        reference = shown[0]
        if boot:
            low, high = _interval(boot["per_image"][:, k], reference)
        else:
            low = high = np.full(len(tensor.methods), np.nan)
        for i in shown:
            rows.append(
                [tensor.dataset, image, tensor.methods[i], scores[k, i] - scores[k, reference], low[i], high[i]]
                + [comparisons[k, i], points[k, i]]
            )
    columns = ["dataset", "image", "method", "scale", "ci95_low", "ci95_high", "n_comparisons", "wins"]
    return pd.DataFrame(rows, columns=columns)


def _win_table(tensor):
    """Every ordered pair of methods: points won by ``method`` against ``opponent`` and comparisons between them."""
    pooled = tensor.pooled
    rows = []
    for i, j in itertools.permutations(range(len(tensor.methods)), 2):
        n = pooled[i, j] + pooled[j, i]
        rate = pooled[i, j] / n if n else np.nan
        rows.append([tensor.dataset, tensor.methods[i], tensor.methods[j], pooled[i, j], n, rate])
    return pd.DataFrame(rows, columns=["dataset", "method", "opponent", "wins", "n_comparisons", "win_rate"])


def _significance(tensor, boot, fit):
    """Per pair (method_a earlier in the paper's order): bootstrap over raters (primary) and likelihood ratio."""
    pooled = tensor.pooled
    model_scores = fit_model_units(pooled, **fit)
    full = log_likelihood(pooled, model_scores, fit["model"])
    scores = model_scores / MODEL_UNITS_PER_JOD[fit["model"]]
    rows = []
    for a, b in itertools.combinations(range(len(tensor.methods)), 2):
        names = [tensor.dataset, tensor.methods[a], tensor.methods[b]]
        difference = scores[b] - scores[a]
        if boot is not None:
            rows.append(
                [*names, "bootstrap", difference, *_wald(difference, boot["pooled"][:, b] - boot["pooled"][:, a])]
            )
        statistic = max(float(2.0 * (full - _merged_log_likelihood(pooled, a, b, fit))), 0.0)
        rows.append([*names, "likelihood-ratio", difference, statistic, float(stats.chi2.sf(statistic, 1))])
    columns = ["dataset", "method_a", "method_b", "test", "difference", "statistic", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def _wald(difference, samples):
    """z = difference / bootstrap SD and its two-sided normal p. A percentile p-value cannot go below 2 / (B + 1),
    which Holm's correction over many pairs would swamp. NaN without spread (Holm then leaves the pair out)."""
    spread = float(np.std(samples, ddof=1)) if len(samples) > 1 else np.nan
    if not spread > 0:
        return np.nan, np.nan
    z = difference / spread
    return z, float(2.0 * stats.norm.sf(abs(z)))


def _merged_log_likelihood(wins, a, b, fit):
    """Log-likelihood with methods a and b forced equal: b's comparisons become a's, and their comparisons with each
    other each have probability 1/2."""
    keep = [i for i in range(len(wins)) if i != b]
    merged = wins.copy()
    merged[a] += merged[b]
    merged[:, a] += merged[:, b]
    between = wins[a, b] + wins[b, a]
    merged[a, a] = 0.0
    merged = merged[np.ix_(keep, keep)]
    scores = fit_model_units(merged, **fit)
    return log_likelihood(merged, scores, fit["model"]) + between * np.log(0.5)


def _holm_per_dataset(table, alpha):
    table["p_holm"] = np.nan
    for _, index in table.groupby(["dataset", "test"]).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"])
    table["significant"] = table["p_holm"] < alpha
    table["role"] = table["test"].map(TEST_ROLES)
    table["test_order"] = table["test"].map({name: i for i, name in enumerate(TEST_ROLES)})
    table = paper_sort(table, ["dataset", "test_order", "method_a", "method_b"])
    columns = ["dataset", "method_a", "method_b", "test", "difference", "statistic", "p_value", "p_holm"]
    return table[[*columns, "significant", "role"]]


def _with_mos(scale, mos):
    """The scale table with ``mos`` (and its CI) of the same method (and dataset, where both have one) beside. A MOS
    table of one dataset whose name matches none of the comparisons' (a file named after itself) joins on the method;
    a MOS table that names none of the compared methods is an error."""
    mos = mos.copy()
    if "method" not in mos.columns or "mos" not in mos.columns:
        raise RatingsError("the MOS table needs columns method and mos (e.g. mos.csv of the ACR analysis)")
    keys = ["dataset", "method"] if "dataset" in mos.columns else ["method"]
    mos = mos.astype({key: str for key in keys})
    if (
        keys == ["dataset", "method"]
        and not set(mos["dataset"]) & set(scale["dataset"])
        and mos["dataset"].nunique() == 1
    ):
        keys = ["method"]
    if not set(mos["method"]) & set(scale["method"]):
        raise RatingsError(
            f"the MOS table names none of the compared methods ({', '.join(map(str, scale['method'].unique()))})"
        )
    extra = {"mos": "mos", "ci95_low": "mos_ci95_low", "ci95_high": "mos_ci95_high"}
    mos = mos[keys + [c for c in extra if c in mos.columns]].rename(columns=extra)
    return scale.merge(mos.drop_duplicates(keys), on=keys, how="left")


__all__ = ["OUTLIER_DISTANCE", "PairwiseResults", "build_pairwise_results"]

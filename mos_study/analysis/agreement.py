"""Which metric agrees with the raters: SROCC, KROCC, PLCC after the VQEG logistic fit and RMSE of every metric
against MOS, with bootstrap 95 % CIs, and whether the best one agrees significantly better than PSNR.

Two levels, as in the literature: per stimulus (each (image, method) stimulus: its MOS against its metric value) and
per method (a method's MOS against its metric averaged over its images; the units are (dataset, method) pairs). Rows
for each dataset when a study has several, and for all datasets pooled ("all").

- Correlations keep their sign (a lower-is-better metric that agrees has negative SROCC); ``direction`` says which
  way the metric points and ``agrees_as_expected`` whether the sign matches it. Agreement is |correlation|.
- PLCC and RMSE are computed after the four-parameter logistic of VQEG (FR-TV Phase II, 2003), fitted by least
  squares: MOS_p = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2. Where it cannot be fitted (too few points, or
  no convergence) a straight line is fitted instead and ``fit`` says so.
- CIs: percentile bootstrap over the units (stimuli or methods), ``RESAMPLES`` resamples, seeded. Resamples are
  drawn as counts per unit (multinomial), which gives the resample's ranks, tau-b and Pearson exactly without
  materialising it. The logistic is fitted once, on all units; PLCC resamples reuse that fit (the CI leaves the
  fit's own uncertainty out).
- The reference stimuli (infinite PSNR: the HR image scored against itself, where every full-reference metric is a
  constant) are left out of every metric, so all metrics are judged on the same stimuli.
- Against PSNR (``REFERENCE_METRIC``), on the stimuli both metrics have: Williams' test for two dependent
  correlations sharing MOS (Williams 1959; Steiger 1980, eq. 7) on PLCC after each metric's fit, and a paired
  bootstrap of the |SROCC| difference.
- A metric computed with stand-in backbone weights (LPIPS/DISTS with random weights, ``--metric-stand-in-weights``)
  is marked as models trained with stand-in VGG features are: a ``weights`` column saying ``stand-in`` in every
  table, and its name with the dagger, and the note, in the summary line. Without such a metric nothing changes.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from .metrics import STAND_IN_MARK, check_metrics, metric_names
from .order import datasets_in_order, paper_sort

REFERENCE_METRIC = "psnr_y"
RESAMPLES = 1000
MIN_LOGISTIC_POINTS = 6  # four parameters: fewer points interpolate rather than fit
KENDALL_MATRIX_LIMIT = 1500  # units up to which tau-b resamples use an n x n sign matrix; above, scipy is faster
# Metrics where a lower value means a better image (the registry of sr_models.quality says so per metric too).
LOWER_IS_BETTER = ("gmsd", "lpips", "dists", "niqe", "brisque", "pi", "mse", "rmse")
STIMULUS_KEYS = ["dataset", "image", "method"]
AGREEMENT_COLUMNS = [
    "dataset",
    "level",
    "metric",
    "direction",
    "n",
    "fit",
    "srocc",
    "srocc_ci95_low",
    "srocc_ci95_high",
    "krocc",
    "krocc_ci95_low",
    "krocc_ci95_high",
    "plcc",
    "plcc_ci95_low",
    "plcc_ci95_high",
    "rmse",
    "agrees_as_expected",
    "b1",
    "b2",
    "b3",
    "b4",
]
TEST_COLUMNS = [
    "dataset",
    "metric",
    "reference",
    "test",
    "n",
    "value",
    "reference_value",
    "difference",
    "ci95_low",
    "ci95_high",
    "statistic",
    "p_value",
]
WILLIAMS = "williams_plcc"
STAND_IN_WEIGHTS = "stand-in"  # benchmarks.tables.STAND_IN_WEIGHTS: the weights note of metric_provenance.csv
STAND_IN_METRIC_NOTE = f"{STAND_IN_MARK} stand-in weights: not the published metric"
BOOTSTRAP_SROCC = "bootstrap_srocc_difference"


# --------------------------------------------------------------------------- direction


def direction(metric):
    """'lower' or 'higher' (is better); 'higher (assumed)' for a metric this module does not know."""
    name = str(metric).lower()
    if any(name == known or name.startswith(known + "_") for known in LOWER_IS_BETTER):
        return "lower"
    if name in ("psnr_y", "ssim_y", "ms_ssim", "vif", "fsim") or name.startswith(("psnr", "ssim")):
        return "higher"
    return "higher (assumed)"


def direction_words(value):
    """'lower is better', 'higher is better', 'higher is better, assumed' (for titles and the summary line)."""
    return f"{value.split(' ')[0]} is better" + (", assumed" if "assumed" in value else "")


# --------------------------------------------------------------------------- the logistic fit


def logistic4(x, b1, b2, b3, b4):
    """VQEG's four-parameter logistic, (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2, without overflow."""
    return (b1 - b2) * special.expit((np.asarray(x, dtype=float) - b3) / np.abs(b4)) + b2


@dataclass
class Fit:
    """A fitted mapping from metric values to MOS: the logistic (``params`` b1..b4) or a straight line."""

    kind: str  # "logistic", or "linear: <why the logistic was not used>"
    params: tuple = (np.nan, np.nan, np.nan, np.nan)
    line: tuple = (np.nan, np.nan)  # slope, intercept of the fallback

    def predict(self, x):
        x = np.asarray(x, dtype=float)
        if self.kind == "logistic":
            return logistic4(x, *self.params)
        return self.line[0] * x + self.line[1]


def fit_logistic(x, mos):
    """Least-squares fit of ``logistic4`` on standardised x (for conditioning), starting from the MOS range, the
    median and a slope the sign of Spearman's rho; a straight line where the logistic cannot be fitted."""
    x, mos = np.asarray(x, dtype=float), np.asarray(mos, dtype=float)
    if len(x) < MIN_LOGISTIC_POINTS or len(np.unique(x)) < 3:
        return _line(x, mos, f"linear: fewer than {MIN_LOGISTIC_POINTS} points or 3 values for the logistic")
    centre, spread = x.mean(), x.std()
    z = (x - centre) / spread
    increasing = _spearman(x, mos) >= 0
    high, low = mos.max(), mos.min()
    start = [high, low, np.median(z), 1.0] if increasing else [low, high, np.median(z), 1.0]
    # Bounds keep the curve's ends near the MOS range and its centre near the data: on data without a bend the
    # unbounded fit runs off to a far-away stretch of the curve (b1 in the thousands), same fit, useless numbers.
    span = max(high - low, 1e-6)
    # The slope's bound (|b4| at least 0.2 standard deviations: 10-90 % of the rise over at least 0.9 of them) keeps
    # the curve from becoming a step that catches one or two stimuli of a small study.
    bounds = ([low - span, low - span, -3.0, 0.2], [high + span, high + span, 3.0, 20.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, z, mos, p0=start, bounds=bounds, max_nfev=20000)
    except (RuntimeError, optimize.OptimizeWarning, ValueError):
        return _line(x, mos, "linear: the logistic fit did not converge")
    if not np.all(np.isfinite(params)) or params[3] == 0:
        return _line(x, mos, "linear: the logistic fit did not converge")
    b1, b2, b3, b4 = params
    return Fit("logistic", (float(b1), float(b2), float(centre + spread * b3), float(spread * abs(b4))))


def _line(x, mos, why):
    if len(np.unique(x)) < 2:
        return Fit(why, line=(0.0, float(np.mean(mos)) if len(mos) else np.nan))
    slope, intercept = np.polyfit(x, mos, 1)
    return Fit(why, line=(float(slope), float(intercept)))


# --------------------------------------------------------------------------- correlations and resamples


def _quiet(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(function(*args)[0])


def _spearman(x, y):
    return _quiet(stats.spearmanr, x, y)


def point_estimates(x, mos, fit):
    """SROCC, KROCC (tau-b), PLCC of the fitted prediction, RMSE of the fitted prediction: scipy's own numbers."""
    if len(x) < 3 or len(np.unique(x)) < 2 or len(np.unique(mos)) < 2:
        return {"srocc": np.nan, "krocc": np.nan, "plcc": np.nan, "rmse": np.nan}
    prediction = fit.predict(x)
    plcc = _quiet(stats.pearsonr, prediction, mos) if np.ptp(prediction) > 0 else np.nan
    return {
        "srocc": _spearman(x, mos),
        "krocc": _quiet(stats.kendalltau, x, mos),
        "plcc": plcc,
        "rmse": float(np.sqrt(np.mean((mos - prediction) ** 2))),
    }


def resample_counts(n, resamples, seed):
    """``resamples`` x ``n`` counts: how often each unit is drawn in each bootstrap resample (seeded)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (np.arange(resamples)[:, None] * n + draws).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(float)


def _groups(values):
    """Sorted order, start of each run of equal values in it, and each unit's run (for ties)."""
    order = np.argsort(values, kind="stable")
    new = np.r_[True, values[order][1:] != values[order][:-1]]
    run = np.empty(len(values), dtype=int)
    run[order] = np.cumsum(new) - 1
    return order, np.flatnonzero(new), run


def resample_ranks(values, counts):
    """Average ranks (ties averaged, 1-based) of every unit within each resample, and the sum over tie groups of
    the squared group size (for tau-b's tie terms)."""
    order, starts, run = _groups(np.asarray(values, dtype=float))
    per_group = np.add.reduceat(counts[:, order], starts, axis=1)
    below = np.cumsum(per_group, axis=1) - per_group
    return (below + (per_group + 1) / 2)[:, run], (per_group**2).sum(axis=1)


def weighted_pearson(a, b, counts):
    """Pearson's r of each resample, rows of ``a``/``b`` (or 1-d, shared) weighted by ``counts``; NaN where one
    side is constant. Weighted sums in one pass each (einsum), from which r follows by the moment formulas."""
    a, b = np.broadcast_to(a, counts.shape), np.broadcast_to(b, counts.shape)
    total = counts.sum(axis=1)

    def weighted(*columns):
        return np.einsum("ij" + ",ij" * len(columns) + "->i", counts, *columns)

    sum_a, sum_b = weighted(a), weighted(b)
    var_a = weighted(a, a) - sum_a**2 / total
    var_b = weighted(b, b) - sum_b**2 / total
    cov = weighted(a, b) - sum_a * sum_b / total
    scale = np.maximum(weighted(a, a), 1e-300) * np.maximum(weighted(b, b), 1e-300)
    constant = (var_a * var_b) <= 1e-24 * scale  # rounding residue of a constant side is not a variance
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(var_a * var_b)
    return np.where(np.isfinite(r) & ~constant, np.clip(r, -1, 1), np.nan)


def resample_kendall(x, y, counts, ties_x, ties_y):
    """Kendall's tau-b of each resample from counts: C - D = w'Sw / 2 with S = sign(dx) sign(dy); the pairs tied
    in x are (sum of squared tie-group counts - N) / 2, likewise in y (copies of one unit tie in both)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    total = counts.sum(axis=1)
    if len(x) <= KENDALL_MATRIX_LIMIT:
        # float32 is exact here: counts and signs are small integers and every partial sum of counts @ signs is at
        # most N < 2**24; the products with counts are taken in float64.
        signs = (np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])).astype(np.float32)
        concordance = ((counts.astype(np.float32) @ signs).astype(float) * counts).sum(axis=1) / 2
    else:  # too many units for the matrix: each resample in scipy's O(n log n)
        return np.array(
            [_quiet(stats.kendalltau, np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))) for w in counts]
        )
    pairs = total * (total - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = concordance / np.sqrt((pairs - (ties_x - total) / 2) * (pairs - (ties_y - total) / 2))
    return np.where(np.isfinite(tau), np.clip(tau, -1, 1), np.nan)


def bootstrap_coefficients(x, mos, fit, counts, ranks=None):
    """Each resample's SROCC, KROCC and PLCC (of the fixed fitted prediction): three arrays. ``ranks``: the
    ``resample_ranks`` of x and of mos where already computed."""
    (rank_x, ties_x), (rank_y, ties_y) = ranks or (resample_ranks(x, counts), resample_ranks(mos, counts))
    return {
        "srocc": weighted_pearson(rank_x, rank_y, counts),
        "krocc": resample_kendall(x, mos, counts, ties_x, ties_y),
        "plcc": weighted_pearson(fit.predict(x), mos, counts),
    }


def percentile_ci(values, level=0.95):
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


# --------------------------------------------------------------------------- Williams' test


def williams_test(r12, r13, r23, n):
    """Williams' t for H0: rho12 = rho13, two correlations sharing variable 1 (here MOS), with r23 the correlation
    of the two others; df = n - 3 (Steiger 1980, eq. 7). Returns (t, two-sided p).

    t = (r12 - r13) sqrt((n - 1)(1 + r23) / (2 (n - 1)/(n - 3) |R| + rbar^2 (1 - r23)^3)),
    |R| = 1 - r12^2 - r13^2 - r23^2 + 2 r12 r13 r23, rbar = (r12 + r13) / 2."""
    if n <= 3 or not np.all(np.isfinite([r12, r13, r23])):
        return np.nan, np.nan
    if r12 == r13:
        return 0.0, 1.0  # the same correlation: no difference (also when r23 = 1 makes the formula 0/0)
    det = 1 - r12**2 - r13**2 - r23**2 + 2 * r12 * r13 * r23
    mean = (r12 + r13) / 2
    denominator = 2 * (n - 1) / (n - 3) * det + mean**2 * (1 - r23) ** 3
    if denominator <= 0:
        return np.nan, np.nan
    t = (r12 - r13) * np.sqrt((n - 1) * (1 + r23) / denominator)
    return float(t), float(2 * stats.t.sf(abs(t), n - 3))


def bootstrap_p(differences):
    """Two-sided percentile-bootstrap p-value of H0: difference = 0 (never 0: +1 in numerator and denominator)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if not len(d):
        return np.nan
    below, above = (np.sum(d <= 0) + 1) / (len(d) + 1), (np.sum(d >= 0) + 1) / (len(d) + 1)
    return float(min(1.0, 2 * min(below, above)))


# --------------------------------------------------------------------------- the tables


@dataclass
class Agreement:
    """The agreement tables of one analysis, the units they were computed on, and the summary line."""

    per_stimulus: pd.DataFrame
    per_method: pd.DataFrame
    tests: pd.DataFrame
    summary: str
    stimuli: pd.DataFrame = field(repr=False, default=None)  # dataset,image,method,mos,<metrics> (the figure's dots)
    fits: dict = field(repr=False, default_factory=dict)  # metric -> Fit at the stimulus level, all datasets
    stand_ins: frozenset = frozenset()  # metrics computed with stand-in backbone weights (marked wherever named)


def metric_label(metric, stand_ins=frozenset()):
    """``lpips_alex†`` for a metric computed with stand-in weights, the name otherwise."""
    return f"{metric}{STAND_IN_MARK}" if metric in stand_ins else str(metric)


def with_weights(table, stand_ins):
    """``table`` with a ``weights`` column after ``metric`` (``stand-in`` or empty) where there are stand-in metrics;
    the table itself otherwise, so that analyses without them write the same bytes as before."""
    if not stand_ins:
        return table
    table = table.copy()
    marks = np.where(table["metric"].astype(str).isin(stand_ins), STAND_IN_WEIGHTS, "")
    table.insert(table.columns.get_loc("metric") + 1, "weights", pd.Series(marks, index=table.index, dtype=object))
    return table


def stimulus_units(mos_per_image, metrics):
    """Per-image MOS beside the metrics, the reference stimuli (infinite PSNR) left out."""
    table = mos_per_image[[*STIMULUS_KEYS, "mos"]].astype({k: str for k in STIMULUS_KEYS})
    table = table.merge(metrics.astype({k: str for k in STIMULUS_KEYS}), on=STIMULUS_KEYS, how="inner")
    if REFERENCE_METRIC in table:
        table = table[~np.isinf(table[REFERENCE_METRIC].to_numpy(dtype=float))]
    return paper_sort(table, STIMULUS_KEYS)


def method_units(mos, stimuli, names):
    """A method's MOS beside its metrics averaged over its (non-reference) images."""
    means = stimuli.groupby(["dataset", "method"], as_index=False, sort=True)[names].mean()
    table = mos[["dataset", "method", "mos"]].astype({"dataset": str, "method": str})
    return paper_sort(table.merge(means, on=["dataset", "method"], how="inner"), ["dataset", "method"])


class GroupResamples:
    """The bootstrap resamples of one group of units (a dataset, or all), drawn once per subset of units used (the
    units where the columns asked for are finite) and shared by every metric, so that metrics are judged, and
    compared with PSNR, on the same resamples. Resample ranks and fits are computed once per column and subset;
    ``forget(column)`` drops a metric's once it is done (each is resamples x units floats)."""

    def __init__(self, units, resamples, seed):
        self.units, self.resamples, self.seed = units, resamples, seed
        self._cache = {}

    def finite(self, *columns):
        return np.isfinite(self.units[list(columns)].to_numpy(dtype=float)).all(axis=1)

    def values(self, column, mask):
        return self.units[column].to_numpy(dtype=float)[mask]

    def _memo(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def counts(self, mask):
        return self._memo(
            ("counts", mask.tobytes()), lambda: resample_counts(int(mask.sum()), self.resamples, self.seed)
        )

    def ranks(self, column, mask):
        """The resample ranks of ``column`` on the units of ``mask``, and its tie term (``resample_ranks``)."""
        return self._memo(
            ("ranks", column, mask.tobytes()), lambda: resample_ranks(self.values(column, mask), self.counts(mask))
        )

    def fit(self, column, mask):
        make = lambda: fit_logistic(self.values(column, mask), self.values("mos", mask))  # noqa: E731
        return self._memo(("fit", column, mask.tobytes()), make)

    def forget(self, column):
        self._cache = {key: value for key, value in self._cache.items() if column not in key[1:2]}


def agreement_row(group, metric):
    """One metric's row (without dataset/level) and its fit."""
    mask = group.finite(metric, "mos")
    x, mos = group.values(metric, mask), group.values("mos", mask)
    fit = group.fit(metric, mask) if len(x) >= 2 else Fit("linear: fewer than 2 points")
    row = {"metric": metric, "direction": direction(metric), "n": len(x), "fit": fit.kind}
    row.update(point_estimates(x, mos, fit))
    if len(x) >= 3 and group.resamples:
        ranks = (group.ranks(metric, mask), group.ranks("mos", mask))
        draws = bootstrap_coefficients(x, mos, fit, group.counts(mask), ranks)
        for name, values in draws.items():
            row[f"{name}_ci95_low"], row[f"{name}_ci95_high"] = percentile_ci(values)
    expected = -1 if row["direction"] == "lower" else 1
    row["agrees_as_expected"] = bool(np.sign(row["srocc"]) == expected) if np.isfinite(row["srocc"]) else False
    row.update(zip(("b1", "b2", "b3", "b4"), fit.params))
    return row, fit


def compare_with_reference(group, metric, reference=REFERENCE_METRIC):
    """Williams' test on PLCC after each fit and a paired bootstrap of the |SROCC| difference, metric against the
    reference, on the units of ``group`` (a GroupResamples) both have: two rows of TEST_COLUMNS (without dataset)."""
    mask = group.finite(metric, reference, "mos")
    x, ref, mos = (group.values(c, mask) for c in (metric, reference, "mos"))
    n = len(x)
    base = {"metric": metric, "reference": reference, "n": n}
    if n < 4:
        return [{**base, "test": WILLIAMS}, {**base, "test": BOOTSTRAP_SROCC}]
    pred, pred_ref = group.fit(metric, mask).predict(x), group.fit(reference, mask).predict(ref)
    r12, r13 = _safe_pearson(pred, mos), _safe_pearson(pred_ref, mos)
    t, p = williams_test(r12, r13, _safe_pearson(pred, pred_ref), n)
    williams = {**base, "test": WILLIAMS, "value": r12, "reference_value": r13, "difference": r12 - r13}
    williams.update(statistic=t, p_value=p)
    rho, rho_ref = _spearman(x, mos), _spearman(ref, mos)
    counts, rank_y = group.counts(mask), group.ranks("mos", mask)[0]
    spearman = {c: weighted_pearson(group.ranks(c, mask)[0], rank_y, counts) for c in (metric, reference)}
    draws = np.sign(rho) * spearman[metric] - np.sign(rho_ref) * spearman[reference]
    low, high = percentile_ci(draws)
    boot = {**base, "test": BOOTSTRAP_SROCC, "value": abs(rho), "reference_value": abs(rho_ref)}
    boot.update(difference=abs(rho) - abs(rho_ref), ci95_low=low, ci95_high=high, p_value=bootstrap_p(draws))
    return [williams, boot]


def _safe_pearson(a, b):
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return np.nan
    return _quiet(stats.pearsonr, a, b)


def _groups_of(units):
    """(dataset, units) per dataset when there are several, then ("all", every unit)."""
    datasets = datasets_in_order(units["dataset"].unique())
    return ([(d, units[units["dataset"] == d]) for d in datasets] if len(datasets) > 1 else []) + [("all", units)]


def agreement_tables(units, names, level, resamples, seed, with_tests=False):
    """Rows of every metric in ``names`` per group (``_groups_of``), the fits of the pooled group and, with
    ``with_tests``, each metric's tests against PSNR on the same resamples."""
    rows, tests, fits = [], [], {}
    for dataset, part in _groups_of(units):
        group = GroupResamples(part, resamples, seed)
        for metric in names:
            row, fit = agreement_row(group, metric)
            rows.append({"dataset": dataset, "level": level, **row})
            fits.update({metric: fit} if dataset == "all" else {})
            if with_tests and metric != REFERENCE_METRIC and REFERENCE_METRIC in names:
                tests += [{"dataset": dataset, **test} for test in compare_with_reference(group, metric)]
            if metric != REFERENCE_METRIC:  # PSNR's resample ranks serve every metric's test
                group.forget(metric)
    return (
        pd.DataFrame(rows).reindex(columns=AGREEMENT_COLUMNS),
        pd.DataFrame(tests).reindex(columns=TEST_COLUMNS),
        fits,
    )


def metric_agreement(mos_per_image, mos, metrics, *, resamples=RESAMPLES, seed=0, alpha=0.05, stand_ins=()):
    """Every metric of ``metrics`` (``metrics.metric_names``) against MOS at both levels, the tests against PSNR
    and the summary line; ``stand_ins``: metrics computed with stand-in backbone weights (marked)."""
    metrics = check_metrics(metrics)  # a study's frame may hold a metric as objects (None where not computed)
    names = metric_names(metrics)
    stand_ins = frozenset(map(str, stand_ins)) & set(names)
    stimuli = stimulus_units(mos_per_image, metrics)
    per_stimulus, tests, fits = agreement_tables(stimuli, names, "stimulus", resamples, seed, with_tests=True)
    per_method, _, _ = agreement_tables(method_units(mos, stimuli, names), names, "method", resamples, seed)
    summary = summary_line(per_stimulus, tests, alpha, stand_ins)
    per_stimulus, per_method, tests = (with_weights(t, stand_ins) for t in (per_stimulus, per_method, tests))
    return Agreement(per_stimulus, per_method, tests, summary, stimuli=stimuli, fits=fits, stand_ins=stand_ins)


# --------------------------------------------------------------------------- the summary line


def _number(value, digits=3):
    return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _p(value):
    return "-" if value is None or not np.isfinite(value) else f"{value:.3g}"


def summary_line(per_stimulus, tests, alpha=0.05, stand_ins=frozenset()):
    """Which metric agrees best with MOS (|SROCC| per stimulus, all datasets) and whether significantly better
    than PSNR by Williams' test and by the bootstrap of the SROCC difference. A best metric among ``stand_ins``
    is named with the dagger and the note at the end: its figures are not the published metric's."""
    pooled = per_stimulus[(per_stimulus["dataset"] == "all") & per_stimulus["srocc"].notna()]
    if pooled.empty:
        return "Metric agreement: too few stimuli with both MOS and metric values to correlate them."
    best = pooled.loc[pooled["srocc"].abs().idxmax()]
    text = _best_against_psnr(pooled, best, tests, alpha, metric_label(best["metric"], stand_ins))
    return text + f" {STAND_IN_METRIC_NOTE}." if best["metric"] in stand_ins else text


def _best_against_psnr(pooled, best, tests, alpha, label):
    text = (
        f"Best agreement with MOS (|SROCC| per stimulus, all datasets, n = {int(best['n'])}): {label} "
        f"({direction_words(best['direction'])}), SROCC {_number(best['srocc'])} "
        f"[95% CI {_number(best['srocc_ci95_low'])}, {_number(best['srocc_ci95_high'])}]"
    )
    if best["metric"] == REFERENCE_METRIC:
        return text + f"; no metric agrees better than PSNR ({REFERENCE_METRIC})."
    reference = pooled[pooled["metric"] == REFERENCE_METRIC]
    if reference.empty:
        return text + f"; no PSNR ({REFERENCE_METRIC}) to compare with."
    text += f"; PSNR ({REFERENCE_METRIC}): SROCC {_number(reference['srocc'].iloc[0])}"
    found = tests[(tests["dataset"] == "all") & (tests["metric"] == best["metric"])].set_index("test")
    if WILLIAMS not in found.index or not np.isfinite(found.loc[WILLIAMS, "p_value"]):
        return text + "; too few stimuli to test the difference."
    williams, boot = found.loc[WILLIAMS], found.loc[BOOTSTRAP_SROCC]
    better = {
        "Williams": williams["difference"] > 0 and williams["p_value"] < alpha,
        "bootstrap": boot["difference"] > 0 and boot["p_value"] < alpha,
    }
    verdict = (
        "significantly better than PSNR by both tests"
        if all(better.values())
        else f"significantly better than PSNR by the {next(k for k, v in better.items() if v)} test only"
        if any(better.values())
        else "not significantly better than PSNR"
    )
    return text + (
        f". Against PSNR: Williams' test on PLCC after the logistic fit {_number(williams['value'])} vs "
        f"{_number(williams['reference_value'])}, t({int(williams['n']) - 3}) = {_number(williams['statistic'], 2)}, "
        f"p = {_p(williams['p_value'])}; bootstrap of the |SROCC| difference {_number(boot['difference'])} "
        f"[{_number(boot['ci95_low'])}, {_number(boot['ci95_high'])}], p = {_p(boot['p_value'])}: {verdict} "
        f"(alpha {alpha:g})."
    )

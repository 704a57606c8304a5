"""The one code path from a ratings table to every statistic: ``build_results(ratings, options) -> Results``."""

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Optional

import pandas as pd

from .agreement import metric_agreement
from .metrics import correlations, table2
from .ratings import RatingsError, test_rows
from .mos import METHOD, STIMULUS, bootstrap_ci, mos_table, remove_bias
from .order import paper_sort
from .screening import RULES, ScreeningOptions, screen
from .significance import significance
from .subjective_model import fit_p910

SUBJECTIVE_MODELS = ("p910", "none")


@dataclass
class AnalysisOptions:
    """Everything that changes the numbers; written to export.json beside the results."""

    scale: tuple = (1.0, 5.0)
    screening: ScreeningOptions = field(default_factory=ScreeningOptions)
    keep_screened: bool = False
    subjective_model: str = "p910"
    bias_removal: bool = False  # ITU-T P.913 §12.4, applied to the MOS tables
    bootstrap: int = 0  # resamples for the rater x image bootstrap CI of MOS (0: off)
    seed: int = 0
    alpha: float = 0.05

    def __post_init__(self):
        if self.subjective_model not in SUBJECTIVE_MODELS:
            raise RatingsError(
                f"unknown subjective model {self.subjective_model!r}; use one of {', '.join(SUBJECTIVE_MODELS)}"
            )
        unknown = set(self.screening.rules) - set(RULES)
        if unknown:
            raise RatingsError(f"unknown screening rule(s) {', '.join(sorted(unknown))}; use {','.join(RULES)} or none")

    def as_dict(self):
        return asdict(self)


@dataclass
class Results:
    """All tables of one analysis; ``tables()`` maps file names to DataFrames."""

    options: AnalysisOptions
    ratings: pd.DataFrame  # canonical ratings, calibration rows included
    screening: pd.DataFrame
    mos_per_image: pd.DataFrame
    mos: pd.DataFrame
    mos_per_image_all_raters: pd.DataFrame
    mos_all_raters: pd.DataFrame
    significance: pd.DataFrame
    subjective_stimuli: Optional[pd.DataFrame] = None
    subjective_raters: Optional[pd.DataFrame] = None
    subjective_iterations: int = 0
    metrics: Optional[pd.DataFrame] = None
    metric_correlation: Optional[pd.DataFrame] = None
    table2: Optional[pd.DataFrame] = None
    agreement: Optional[object] = None  # agreement.Agreement: every metric against MOS (with metrics)
    provenance: Optional[pd.DataFrame] = None  # method,learned,stand_in_features,...,line (benchmarks' provenance.csv)

    @property
    def stand_in_methods(self):
        """Methods trained with stand-in VGG features (marked in every table and figure)."""
        if self.provenance is None or "stand_in_features" not in self.provenance:
            return set()
        flags = self.provenance["stand_in_features"].astype(str).str.lower().isin(["true", "1"])
        return set(self.provenance.loc[flags, "method"].astype(str))

    @property
    def rejected_raters(self):
        return list(self.screening.loc[self.screening["rejected"], "rater"])

    @property
    def input_sha256(self):
        """Digest of the canonical ratings (sorted, line numbers left out), so reordered input gives the same."""
        canonical = self.ratings.drop(columns="line")
        # pandas hashes a categorical as its values (and ten times faster): only other key columns become str.
        text = {key: str for key in KEYS if not _text_categories(canonical[key])}
        canonical = canonical.astype(text) if text else canonical
        return hashlib.sha256(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes()).hexdigest()

    def tables(self):
        tables = {
            "mos_per_image.csv": self.mos_per_image,
            "mos.csv": self.mos,
            "mos_per_image_all_raters.csv": self.mos_per_image_all_raters,
            "mos_all_raters.csv": self.mos_all_raters,
            "screening.csv": self.screening,
            "significance.csv": self.significance,
        }
        if self.subjective_stimuli is not None:
            tables["subjective_model_stimuli.csv"] = self.subjective_stimuli
            tables["subjective_model_raters.csv"] = self.subjective_raters
        if self.metric_correlation is not None:
            tables["metric_correlation.csv"] = self.metric_correlation
            tables["table2.csv"] = self.table2
        if self.agreement is not None:
            tables["metric_agreement.csv"] = self.agreement.per_stimulus
            tables["metric_agreement_per_method.csv"] = self.agreement.per_method
            tables["metric_agreement_tests.csv"] = self.agreement.tests
        if self.provenance is not None:
            tables["provenance.csv"] = self.provenance
        return tables


KEYS = ["dataset", "rater", "image", "method"]


def _text_categories(values):
    return isinstance(values.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(values.cat.categories)


def sort_ratings(ratings):
    """Canonical order, with the key columns as sorted categoricals: group-bys on them are many times faster."""
    ratings = ratings.copy(deep=False)  # copy-on-write (pandas 3): the caller's frame is never changed
    for key in KEYS:
        ratings[key] = pd.Categorical(ratings[key].astype(str))  # categories come sorted
    return ratings.sort_values(KEYS + ["repetition", "trial", "line"], na_position="first", kind="stable").reset_index(
        drop=True
    )


def read_provenance(path):
    """A benchmark folder's ``provenance.csv`` (``benchmarks.tables.PROVENANCE_COLUMNS``) as a DataFrame."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RatingsError(f"{path}: cannot read the provenance table ({exc})") from None
    if "method" not in table.columns:
        raise RatingsError(f"{path}:1: no 'method' column: not a provenance.csv of python -m benchmarks run")
    return table


def read_metric_provenance(path):
    """The metrics a ``metric_provenance.csv`` (benchmark or study export) says were computed with stand-in
    backbone weights (``weights_note`` ``stand-in``): a set of names."""
    from .agreement import STAND_IN_WEIGHTS

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RatingsError(f"{path}: cannot read the metric provenance table ({exc})") from None
    if not {"metric", "weights_note"} <= set(table.columns):
        raise RatingsError(
            f"{path}:1: no 'metric' and 'weights_note' columns: not a metric_provenance.csv of python -m benchmarks "
            "run or of a study export (give the right file with --metric-provenance)"
        )
    return set(table.loc[table["weights_note"].str.strip() == STAND_IN_WEIGHTS, "metric"])


def check_provenance(provenance, ratings):
    """Only the rows of methods the study rated, in the paper's order, with stand_in_features as a boolean."""
    table = pd.DataFrame(provenance).astype({"method": str})
    table = table[table["method"].isin(set(ratings["method"].astype(str)))]
    if "stand_in_features" in table:
        table["stand_in_features"] = table["stand_in_features"].astype(str).str.lower().isin(["true", "1"])
    if "learned" in table:
        table["learned"] = table["learned"].astype(str).str.lower().isin(["true", "1"])
    return paper_sort(table, ["method"])


def build_results(ratings, options=None, metrics=None, provenance=None, stand_in_metrics=()):
    """Screen raters, compute MOS (with and without screened raters), significance, the subjective model and, given
    a metrics table (dataset,image,method,psnr_y,ssim_y), correlations and Table 2. ``ratings`` is canonical
    (see ``ratings.prepare_ratings``); calibration rows serve screening only. ``provenance`` (a benchmark folder's
    ``provenance.csv`` rows) adds a ``stand_in_features`` column to the MOS tables and the marks in every file;
    ``stand_in_metrics`` (names of metrics computed with stand-in backbone weights) marks them in the agreement.
    Every table lists datasets and methods in the paper's order (``order.paper_sort``)."""
    options = options or AnalysisOptions()
    ratings = sort_ratings(ratings)
    screening = screen(ratings, options.screening, options.scale)
    trials = test_rows(ratings)
    kept = (
        trials
        if options.keep_screened
        else trials[~trials["rater"].isin(set(screening.loc[screening["rejected"], "rater"]))]
    )
    if kept.empty:
        raise RatingsError(
            "no ratings left after screening: every rater was rejected "
            "(see the reasons with --keep-screened, or switch rules off with --screening)"
        )
    adjust = remove_bias if options.bias_removal else (lambda frame: frame)
    all_raters, kept = adjust(trials), adjust(kept)
    mos = mos_table(kept, METHOD)
    if options.bootstrap:
        mos = mos.merge(bootstrap_ci(kept, options.bootstrap, options.seed), on=METHOD, how="left")
    provenance = None if provenance is None else check_provenance(provenance, ratings)
    stand_ins = set()
    if provenance is not None and "stand_in_features" in provenance:
        stand_ins = set(provenance.loc[provenance["stand_in_features"], "method"])

    def ordered(table, keys):
        table = paper_sort(table, keys)
        if provenance is not None:
            table["stand_in_features"] = table["method"].astype(str).isin(stand_ins)
        return table

    results = Results(
        options=options,
        ratings=ratings,
        screening=screening,
        mos_per_image=ordered(mos_table(kept, STIMULUS), STIMULUS),
        mos=ordered(mos, METHOD),
        mos_per_image_all_raters=ordered(mos_table(all_raters, STIMULUS), STIMULUS),
        mos_all_raters=ordered(mos_table(all_raters, METHOD), METHOD),
        significance=pd.DataFrame(),
        provenance=provenance,
    )
    results.significance = significance(kept, results.mos_per_image, options.alpha)
    if options.subjective_model == "p910":
        # The model weighs raters by their inconsistency instead of rejecting them (P.913 §12.6), so it sees all.
        results.subjective_stimuli, results.subjective_raters, results.subjective_iterations = fit_p910(trials)
        results.subjective_stimuli = paper_sort(
            results.subjective_stimuli[["dataset", "image", "method", "quality", "ci95_low", "ci95_high", "n_ratings"]],
            STIMULUS,
        )
    if metrics is not None:
        results.metrics = metrics
        results.metric_correlation = correlations(results.mos_per_image, results.mos, metrics)
        results.table2 = paper_sort(table2(results.mos, metrics), METHOD)
        results.agreement = metric_agreement(
            results.mos_per_image,
            results.mos,
            metrics,
            seed=options.seed,
            alpha=options.alpha,
            stand_ins=stand_in_metrics,
        )
    return results

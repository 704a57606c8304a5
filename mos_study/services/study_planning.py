"""The planning hint of the create-study form: from an assumed SD of one rating and the form's datasets and ratings
per stimulus, the expected 95 % CI half-width of a method's MOS per dataset and the ratings per stimulus a target
half-width needs; the numbers of ``python -m mos_study.analysis plan`` (``analysis.planning``)."""

import argparse
import math
from dataclasses import dataclass, field

from benchmarks.cli_args import comma_list
from sr_models.datasets import KNOWN_DATASETS

from .study_options import OPTIONS_BY_NAME

DEFAULT_SD = 1.0  # an assumption: 5-point ACR ratings of SR outputs typically spread by about one point
TARGET_HALF_WIDTH = 0.2
PLANNED_FIELDS = ("datasets", "methods", "include_hr", "ratings_per_stimulus")  # the form fields the hint reads


@dataclass
class PlanningHint:
    sd: float
    ratings_per_stimulus: int
    target: float
    datasets: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # per known dataset: dataset, images, ratings, half_width, needed
    unknown: list = field(default_factory=list)  # datasets whose number of images is not known here
    notes: list = field(default_factory=list)  # inputs that could not be read (their defaults were used)
    command: str = ""


def planning_hint(datasets, ratings_per_stimulus, sd=DEFAULT_SD, target=TARGET_HALF_WIDTH, n_methods=None):
    """Each method of a dataset of K images gets ``ratings_per_stimulus·K`` ratings; its MOS's CI half-width is
    ``t(0.975, n-1)·sd/√n`` (as ``mos.csv``), and ``ceil(ratings_for_half_width(sd, target) / K)`` ratings per
    stimulus reach ``target``."""
    from ..analysis.planning import half_width_for_ratings, ratings_for_half_width

    hint = PlanningHint(sd=sd, ratings_per_stimulus=ratings_per_stimulus, target=target, datasets=list(datasets))
    needed = ratings_for_half_width(sd, target) if sd > 0 else 1
    for dataset in datasets:
        images = KNOWN_DATASETS.get(dataset)
        if images is None:
            hint.unknown.append(dataset)
            continue
        n = ratings_per_stimulus * images
        hint.rows.append(
            {
                "dataset": dataset,
                "images": images,
                "ratings": n,
                "half_width": half_width_for_ratings(sd, n),
                "needed": max(1, math.ceil(needed / images)),
            }
        )
    images = hint.rows[0]["images"] if hint.rows else "K"
    methods = f" --methods {n_methods}" if n_methods else ""
    hint.command = f"python -m mos_study.analysis plan --sd {sd:g} --images {images}{methods} --half-width {target:g}"
    return hint


def planning_hint_from(data):
    """The hint for a request's values (the form's ``datasets``, ``methods``, ``include_hr`` and
    ``ratings_per_stimulus``, and ``planning_sd``), the form's suggestions and defaults where absent."""
    datasets = _names(data.get("datasets"), OPTIONS_BY_NAME["datasets"].suggested)
    methods = _names(data.get("methods"), OPTIONS_BY_NAME["methods"].suggested)
    include_hr = data.get("include_hr") in ("on", "true", "1", "True") if "datasets" in data else True
    option = OPTIONS_BY_NAME["ratings_per_stimulus"]
    ratings = _number(data.get("ratings_per_stimulus"), int, option.default, option.minimum, "ratings per stimulus")
    sd = _number(data.get("planning_sd"), float, DEFAULT_SD, 0.0, "assumed SD")
    notes = [note for _, note in (ratings, sd) if note]
    hint = planning_hint(datasets, ratings[0], sd[0], n_methods=len(methods) + include_hr if methods else None)
    hint.notes = notes
    return hint


def _names(value, fallback):
    try:
        return comma_list(value or "")
    except argparse.ArgumentTypeError:  # no name: the form says so; the hint uses the suggestion
        return comma_list(fallback)


def _number(value, kind, default, minimum, words):
    if value is None or str(value).strip() == "":
        return default, None
    try:
        number = kind(str(value).strip())
    except ValueError:
        return default, f"{words} {value!r} is not a number: {default:g} used"
    if not math.isfinite(number) or number < minimum:
        return default, f"{words} must be at least {minimum:g}: {default:g} used"
    return number, None

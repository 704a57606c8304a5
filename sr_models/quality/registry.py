"""The quality-metric registry: a name maps to a ``QualityMetric`` (what it measures, in which convention, from which
source) whose ``batch`` function scores images.

Like ``sr_models.methods``: ``register(metric)`` adds one, ``get(name)`` finds one (an unknown name lists the
alternatives; a metric srmos cannot compute says why), ``available()`` lists them. Aliases: ``psnr`` and ``ssim``
are ``psnr_y`` and ``ssim_y`` (``sr_models.metrics``, the SR papers' convention).
"""

import importlib
from dataclasses import dataclass, field
from typing import Callable

from ..errors import MissingExtraError, UnknownMetricError

FULL_REFERENCE = "full-reference"
NO_REFERENCE = "no-reference"
BASE_METRICS = ("psnr_y", "ssim_y")  # always measured by the benchmark (sr_models.metrics)
ALIASES = {"psnr": "psnr_y", "ssim": "ssim_y"}
EXTRA_INSTALL = "pip install -e '.[metrics]' (or pip install -r requirements-metrics.txt)"
STAND_IN = "stand-in"  # the weights_note of a figure made with stand-in (not ImageNet) backbone weights

# Metrics asked for in the literature that srmos cannot compute, and why (the error for their names).
UNAVAILABLE = {
    "ma": (
        "the Ma score (Ma et al. 2017, 'Learning a no-reference quality metric for single-image super-resolution') "
        "needs its trained regression-forest model, which no package on the index ships (pyiqa downloads it at "
        "run time, which srmos never does), so srmos cannot compute it"
    ),
    "pi": (
        "the Perceptual Index PI = ((10 - Ma) + NIQE) / 2 needs the Ma score, whose trained model no package on "
        "the index ships, so srmos cannot compute it; NIQE alone is available as 'niqe'"
    ),
}


@dataclass(frozen=True)
class MetricContext:
    """How a run computes metrics: the torch device, the folder of backbone weights (default: the torch hub
    cache), whether stand-in backbone weights are allowed, and the Y convention of ``psnr_y``/``ssim_y``."""

    device: str = "cpu"
    weights_dir: str | None = None
    stand_in: bool = False
    y_convention: str = "integer"


@dataclass(frozen=True)
class QualityMetric:
    """One metric. ``batch(srs, hrs, context)`` scores lists of uint8 images already cropped (``hrs`` is a list of
    None for a no-reference metric) and returns floats; ``space`` is the short convention key stored with each
    value, ``convention`` the sentence that explains it; ``requires`` the module of the metrics extra it needs."""

    name: str
    kind: str
    higher_is_better: bool
    space: str
    convention: str
    source: str
    paper: str
    batch: Callable = field(repr=False, compare=False)
    requires: str | None = None
    learned: bool = False
    note: Callable | None = field(default=None, repr=False, compare=False)  # note(context) -> weights_note
    min_side: int = 1  # the smallest image side (after the border) the metric can score

    @property
    def full_reference(self):
        return self.kind == FULL_REFERENCE

    def weights_note(self, context):
        """'' for a metric without learned weights, else what its weights are ('stand-in' for stand-ins)."""
        return self.note(context) if self.note else ""


_REGISTRY = {}


def register(metric, *, replace=False):
    if metric.name in _REGISTRY and not replace:
        raise UnknownMetricError(f"metric {metric.name} is already registered; pass replace=True to replace it")
    _REGISTRY[metric.name] = metric


def available():
    """Registered metric names in registration order (psnr_y, ssim_y first)."""
    return list(_REGISTRY)


def canonical(name):
    name = str(name).strip().lower()
    return ALIASES.get(name, name)


def get(name):
    """The QualityMetric of a name or alias; an unknown or impossible one raises ``UnknownMetricError``."""
    key = canonical(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if key in UNAVAILABLE:
        raise UnknownMetricError(f"metric {name!r}: {UNAVAILABLE[key]}")
    names = ", ".join(available() + [f"{alias} (= {target})" for alias, target in ALIASES.items()])
    raise UnknownMetricError(f"unknown metric {name!r}; available: {names}")


def resolve(names):
    """Canonical names, each once, in the order given, every one checked (``get``)."""
    resolved = []
    for name in names:
        key = get(name).name
        if key not in resolved:
            resolved.append(key)
    return resolved


def require(module, metric_name):
    """The imported module a metric needs; absent, one line that names the install extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(
            f"metric {metric_name} needs the Python package {module!r}, part of srmos's 'metrics' extra: "
            f"{EXTRA_INSTALL}"
        ) from None

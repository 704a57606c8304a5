"""Image-quality metrics beside PSNR/SSIM: a registry (``registry``) of named metrics and ``compute``/``compute_many``.

Built in: ``psnr_y``, ``ssim_y`` (``sr_models.metrics``, the SR convention; aliases ``psnr``, ``ssim``); full
reference ``ms_ssim``, ``gmsd``, ``vif`` (VIFp), ``fsim`` (``piq_metrics``, through piq), ``lpips_alex``,
``lpips_vgg`` (``lpips_metric``), ``dists`` (``dists_metric``), learned, on ImageNet backbones (``backbones``); no
reference ``niqe`` (``niqe``: the authors' MATLAB NIQE and model) and ``niqe_skvideo`` (scikit-video's variant).
``ma`` and ``pi`` cannot be computed (``registry.UNAVAILABLE`` says why). piq, lpips and DISTS_pytorch come with
the ``metrics`` install extra; asking for a metric whose package is absent raises ``MissingExtraError`` naming it.

``compute(name, sr, hr, crop_border=4, ...)`` scores one pair of uint8 images (``hr`` None for no-reference
metrics); ``compute_many`` a list, batched by shape on a GPU. ``weights_note(name, ...)`` says what a learned
metric's weights were (``"stand-in"`` for stand-ins).
"""

from ..errors import SRMOSError

# Each module registers its metrics on import; this order is the registry's (psnr_y and ssim_y first).
from . import base, piq_metrics, lpips_metric, dists_metric, niqe, niqe_skvideo  # noqa: F401, I001
from .registry import (
    ALIASES,
    BASE_METRICS,
    FULL_REFERENCE,
    NO_REFERENCE,
    STAND_IN,
    UNAVAILABLE,
    MetricContext,
    QualityMetric,
    available,
    canonical,
    get,
    register,
    resolve,
)
from .tensors import check_pair, crop

__all__ = [
    "ALIASES",
    "BASE_METRICS",
    "FULL_REFERENCE",
    "NO_REFERENCE",
    "STAND_IN",
    "UNAVAILABLE",
    "MetricContext",
    "QualityMetric",
    "available",
    "canonical",
    "compute",
    "compute_many",
    "context_for",
    "get",
    "register",
    "resolve",
    "weights_note",
]


def context_for(device=None, weights_dir=None, stand_in=False, y_convention="integer"):
    """A MetricContext; ``device`` None means CUDA when there is one."""
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return MetricContext(str(device), str(weights_dir) if weights_dir else None, bool(stand_in), y_convention)


def compute_many(name, pairs, *, crop_border=4, context=None, **options):
    """One float per ``(sr, hr)`` pair (``hr`` may be None for a no-reference metric); ``options`` build the
    context (``device``, ``weights_dir``, ``stand_in``, ``y_convention``) when none is given."""
    metric = get(name)
    context = context or context_for(**options)
    srs, hrs = [], []
    for sr, hr in pairs:
        if metric.full_reference:
            if hr is None:
                raise SRMOSError(f"{metric.name} is a full-reference metric: give the HR image too")
            check_pair(sr, hr)
        srs.append(crop(sr, crop_border))
        hrs.append(crop(hr, crop_border) if metric.full_reference else None)
    return metric.batch(srs, hrs, context) if srs else []


def compute(name, sr, hr=None, *, crop_border=4, context=None, **options):
    """The metric's value for one uint8 image (and its HR reference)."""
    return compute_many(name, [(sr, hr)], crop_border=crop_border, context=context, **options)[0]


def weights_note(name, context=None, **options):
    return get(name).weights_note(context or context_for(**options))

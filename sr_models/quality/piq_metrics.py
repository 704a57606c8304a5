"""MS-SSIM, GMSD, VIF (pixel domain) and FSIM through ``piq`` 0.8.0 (the metrics extra), on RGB in [0, 1].

piq does its own colour handling, which is not the SR papers' Y (PSNR/SSIM stay ``sr_models.metrics``): MS-SSIM is
computed per RGB channel and averaged; GMSD and VIFp take luma 0.299 R + 0.587 G + 0.114 B (unrounded, piq's
``rgb2yiq`` / its VIF code); FSIM is FSIMc on colour images (YIQ, chromatic terms included) and FSIM on grey ones.
Grey images are scored as one channel. The output is ``x`` (distorted) and HR ``y`` (reference), as piq expects.
"""

from ..errors import SRMOSError
from .registry import FULL_REFERENCE, QualityMetric, register, require
from .tensors import score_batches

PIQ = "piq 0.8.0"
RGB01 = "rgb01"


def _piq_scores(name, function, options=None):
    """A batch function calling ``piq.<function>(sr, hr, data_range=1, reduction='none', **options(sr))``; a
    too-small image is one clear error."""

    def batch(srs, hrs, context):
        piq = require("piq", name)

        def score(sr, hr):
            keywords = options(sr) if options else {}
            try:
                return getattr(piq, function)(sr, hr, data_range=1.0, reduction="none", **keywords)
            except (ValueError, AssertionError) as error:  # piq checks sizes with both
                raise SRMOSError(f"{name} cannot score a {sr.shape[-1]}x{sr.shape[-2]} image: {error}") from None

        return score_batches(srs, hrs, context.device, score)

    return batch


def _fsim_options(sr):
    return {"chromatic": sr.shape[1] == 3}


CONVENTION = "RGB in [0, 1] (uint8 / 255), the same border removed as for PSNR"

register(
    QualityMetric(
        name="ms_ssim",
        kind=FULL_REFERENCE,
        higher_is_better=True,
        space=RGB01,
        convention=CONVENTION + "; per channel, averaged; Gaussian 11/1.5, 5 scales, Wang et al.'s weights",
        source=PIQ + " multi_scale_ssim",
        paper="Wang, Simoncelli, Bovik, 'Multiscale structural similarity for image quality assessment', 2003",
        batch=_piq_scores("ms_ssim", "multi_scale_ssim"),
        requires="piq",
        min_side=161,
    )
)
register(
    QualityMetric(
        name="gmsd",
        kind=FULL_REFERENCE,
        higher_is_better=False,
        space=RGB01,
        convention=CONVENTION + "; on luma 0.299 R + 0.587 G + 0.114 B, 2x2 average-downsampled, T = 170/255^2",
        source=PIQ + " gmsd",
        paper="Xue, Zhang, Mou, Bovik, 'Gradient magnitude similarity deviation', IEEE TIP 2014",
        batch=_piq_scores("gmsd", "gmsd"),
        requires="piq",
        min_side=4,
    )
)
register(
    QualityMetric(
        name="vif",
        kind=FULL_REFERENCE,
        higher_is_better=True,
        space=RGB01,
        convention=CONVENTION + "; VIFp, the pixel-domain VIF of the authors' later code (not the wavelet-domain "
        "VIF of the paper), on luma 0.299 R + 0.587 G + 0.114 B, 4 scales, sigma_n^2 = 2",
        source=PIQ + " vif_p",
        paper="Sheikh, Bovik, 'Image information and visual quality', IEEE TIP 2006",
        batch=_piq_scores("vif", "vif_p"),
        requires="piq",
        min_side=41,
    )
)
register(
    QualityMetric(
        name="fsim",
        kind=FULL_REFERENCE,
        higher_is_better=True,
        space=RGB01,
        convention=CONVENTION + "; FSIMc (YIQ, chromatic terms) on colour images, FSIM on grey ones",
        source=PIQ + " fsim",
        paper="Zhang, Zhang, Mou, Zhang, 'FSIM: a feature similarity index for image quality assessment', "
        "IEEE TIP 2011",
        batch=_piq_scores("fsim", "fsim", _fsim_options),
        requires="piq",
        min_side=8,
    )
)

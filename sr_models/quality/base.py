"""``psnr_y`` and ``ssim_y`` in the registry: the existing SR-convention code of ``sr_models.metrics``."""

from .registry import FULL_REFERENCE, QualityMetric, register


def _base_batch(key):
    def batch(srs, hrs, context):
        from ..metrics import evaluate_many

        values = evaluate_many(list(zip(srs, hrs)), crop_border=0, convention=context.y_convention)
        return [row[key] for row in values]

    return batch


for _name, _higher, _label in (("psnr_y", True, "PSNR (dB)"), ("ssim_y", True, "SSIM")):
    register(
        QualityMetric(
            name=_name,
            kind=FULL_REFERENCE,
            higher_is_better=_higher,
            space="y",
            convention=f"{_label} on ITU-R BT.601 Y, the run's Y convention (integer or float), border removed",
            source="srmos sr_models.metrics",
            paper="SSIM: Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004",
            batch=_base_batch(_name),
        )
    )

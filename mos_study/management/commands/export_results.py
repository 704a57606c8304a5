"""``manage.py export_results --study NAME --output-dir DIR``: a study's ratings and every statistic, as files.

Thin: the ratings come from ``services.study.ratings_frame`` and go through ``mos_study.analysis.run_analysis``,
the code path of ``python -m mos_study.analysis``, so running that CLI on the exported ratings.csv gives the same
files. Adds ratings.csv and metrics_summary.csv (PSNR/SSIM of the study's outputs from the benchmark records).
"""
from types import SimpleNamespace

import pandas as pd
from django.core.management.base import BaseCommand, CommandError

from benchmarks.tables import SUMMARY_COLUMNS, csv_text, summarise
from sr_models.errors import SRMOSError

from ...analysis import run_analysis
from ...analysis.__main__ import add_analysis_arguments, options_from_args
from ...analysis.export import to_csv_text
from ...models import Metric, Study
from ...services.study import ratings_frame

RATINGS_COLUMNS = ["study", "rater", "session", "trial", "dataset", "image", "method", "score", "response_ms",
                   "timestamp", "kind", "repetition", "expected_score"]
METRIC_COLUMNS = ["dataset", "image", "method", "psnr_y", "ssim_y"]


def ratings_csv(study, ratings):
    """ratings.csv: study,rater,session,trial,dataset,image,method,score,response_ms,timestamp, then kind,
    repetition, expected_score (calibration anchors)."""
    table = ratings.assign(study=study.name)[RATINGS_COLUMNS]
    for column in ("trial", "score", "response_ms", "repetition", "expected_score"):
        if (table[column].dropna() % 1 == 0).all():
            table[column] = table[column].astype("Int64")  # whole numbers print without decimals
    return to_csv_text(table).encode()


def study_metrics(study, y_convention="integer", crop_border=4):
    """PSNR/SSIM per stimulus output of the study (dataset,image,method,psnr_y,ssim_y), or None without records."""
    rows = (Metric.objects.filter(output__stimuli__study=study, y_convention=y_convention, crop_border=crop_border)
            .values_list("output__image__dataset", "output__image__name", "output__method__name", "psnr_y", "ssim_y")
            .distinct())
    table = pd.DataFrame(list(rows), columns=METRIC_COLUMNS)
    if table.empty:
        return None
    return table.sort_values(METRIC_COLUMNS[:3]).reset_index(drop=True)


class Command(BaseCommand):
    help = ("Export a study's ratings (ratings.csv) and its statistics: MOS with CIs, rater screening, subjective "
            "model, significance, metric correlations, Table 2, summary.md and figures, as python -m "
            "mos_study.analysis writes them.")

    def add_arguments(self, parser):
        parser.add_argument("--study", required=True, help="the study's name")
        parser.add_argument("--output-dir", required=True)
        parser.add_argument("--y-convention", default="integer", help="which recorded PSNR/SSIM to use")
        parser.add_argument("--crop-border", type=int, default=4)
        add_analysis_arguments(parser)

    def handle(self, *args, **options):
        study = Study.objects.filter(name=options["study"]).first()
        if study is None:
            names = ", ".join(Study.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(f"no study named {options['study']!r} (studies: {names})")
        try:
            analysis_options = options_from_args(SimpleNamespace(**options))
            ratings = ratings_frame(study)
            if ratings.empty or (ratings["kind"] == "calibration").all():
                raise CommandError(f"study {study.name!r} has no ratings yet: nothing to export")
            metrics = study_metrics(study, options["y_convention"], options["crop_border"])
            extra = {"ratings.csv": ratings_csv(study, ratings)}
            if metrics is not None:
                extra["metrics_summary.csv"] = csv_text(SUMMARY_COLUMNS, summarise(metrics.to_dict("records"))).encode()
            results = run_analysis(ratings, options["output_dir"], analysis_options, metrics=metrics,
                                   extra_files=extra, figures=not options["no_figures"])
        except SRMOSError as exc:
            raise CommandError(str(exc)) from exc
        rejected = results.rejected_raters
        self.stdout.write(f"{len(ratings)} ratings from {ratings['rater'].nunique()} raters "
                          f"({len(rejected)} screened out); results in {options['output_dir']}")

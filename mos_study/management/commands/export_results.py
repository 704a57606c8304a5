"""``manage.py export_results --study NAME --output-dir DIR``: a study's ratings and every statistic, as files.

Thin: ``services.exports.build_export`` reads the ratings once and renders every file through
``mos_study.analysis`` (the code path of ``python -m mos_study.analysis``, so running that CLI on the exported
ratings.csv gives the same files); the dashboard's downloads come from the same function. Adds ratings.csv and
metrics_summary.csv (PSNR/SSIM of the study's outputs from the benchmark records).
"""

from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError

from sr_models.errors import SRMOSError

from ...analysis import write_files
from ...analysis.__main__ import add_analysis_arguments, options_from_args
from ...models import Study
from ...services.exports import build_export
from ...services.pairwise_exports import describe


class Command(BaseCommand):
    help = (
        "Export a study's ratings (ratings.csv) and its statistics: MOS with CIs, rater screening, subjective "
        "model, significance, metric correlations, Table 2, the agreement of every recorded metric with MOS "
        "(metric_agreement*.csv), summary.md and figures, as python -m mos_study.analysis writes them."
    )

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
            export = build_export(
                study,
                options_from_args(SimpleNamespace(**options)),
                y_convention=options["y_convention"],
                crop_border=options["crop_border"],
                figures=not options["no_figures"],
                gold_given=options.get("gold_min_agreement") is not None,
            )
            write_files(export.files, options["output_dir"])
        except SRMOSError as exc:
            raise CommandError(str(exc)) from exc
        if study.protocol == Study.Protocol.PAIRWISE:
            self.stdout.write(f"{describe(export)}; results in {options['output_dir']}")
            return
        ratings, rejected = export.results.ratings, export.results.rejected_raters
        self.stdout.write(
            f"{len(ratings)} ratings from {ratings['rater'].nunique()} raters "
            f"({len(rejected)} screened out); results in {options['output_dir']}"
        )

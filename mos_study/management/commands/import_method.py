"""``manage.py import_method``: register an external model's x4 outputs as a method, measured and recorded."""

from django.core.management.base import BaseCommand, CommandError

from benchmarks.cli_args import add_measure_options
from sr_models.errors import SRMOSError

from ...services.benchmark import import_and_record


class Command(BaseCommand):
    help = (
        "Register a folder of an external model's x4 outputs (files named after the dataset's images) as a "
        "method: stored content-addressed, measured like a built-in method and recorded for studies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="method name to record the outputs under")
        parser.add_argument("--dataset", required=True, help="the dataset the outputs belong to (name or folder)")
        parser.add_argument("--outputs", required=True, help="folder of the model's output images")
        parser.add_argument("--description", default="", help="what the method is (shown to researchers)")
        add_measure_options(parser)

    def handle(self, *args, **options):
        from benchmarks.tables import markdown_table, summarise

        name = options["name"]
        try:
            run = import_and_record(
                name,
                options["dataset"],
                options["outputs"],
                data_dir=options["data_dir"],
                output_dir=options["output_dir"],
                y_convention=options["y_convention"],
                crop_border=options["crop_border"],
                progress=not options["quiet"],
                description=options["description"],
            )
        except (SRMOSError, OSError) as exc:  # OSError: a folder that cannot be read or written
            raise CommandError(str(exc)) from exc
        self.stdout.write(markdown_table(summarise(run.rows), options["y_convention"], run.crop_border))
        self.stdout.write(
            f"{len(run.rows)} outputs of {name} recorded (benchmark run {run.pk}); tabulate them "
            f"beside others with `python manage.py run_benchmark --datasets {run.datasets[0]} "
            f"--methods bicubic,{name}`."
        )

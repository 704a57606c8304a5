"""``manage.py run_benchmark``: generate, measure and tabulate outputs, and record the run in the database."""

import signal

from django.core.management.base import BaseCommand, CommandError

from benchmarks.cli_args import add_measure_options, add_metric_options, comma_list
from sr_models.errors import SRMOSError

from ...services.benchmark import mark_abandoned_runs, run_and_record, stale_after_s


class Command(BaseCommand):
    help = (
        "Run every (method, image) output as a Celery task (in-process unless CELERY_BROKER_URL is set), "
        "measure PSNR/SSIM on Y (and the --metrics asked for), write the tables and record the run, outputs and "
        "metrics."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--datasets",
            type=comma_list,
            default=["Set5"],
            help="comma-separated dataset names or folders (default Set5)",
        )
        parser.add_argument(
            "--methods",
            type=comma_list,
            required=True,
            help="comma-separated method names (built-in, imported, or package.module:callable)",
        )
        parser.add_argument("--weights-dir", help="checkpoints folder (default SRMOS_WEIGHTS_DIR)")
        add_measure_options(parser)
        add_metric_options(parser)
        parser.add_argument("--device", help="torch device for the networks (default: CUDA when there is one)")
        parser.add_argument(
            "--timeout",
            type=float,
            default=None,
            help="seconds to wait for each next result from the workers (default: 600, or the "
            "broker's visibility timeout + 120 s where that is longer)",
        )
        parser.add_argument("--queue", help="Celery queue the jobs go to (default: the default queue, 'celery')")

    def handle(self, *args, **options):
        for pk in mark_abandoned_runs():
            self.stderr.write(
                f"benchmark run {pk} lost its command (no heartbeat for over {stale_after_s()} s): marked failed"
            )
        previous = signal.signal(signal.SIGTERM, interrupted)  # a stopped command cancels its run, like Ctrl-C
        try:
            run = run_and_record(
                options["datasets"],
                options["methods"],
                data_dir=options["data_dir"],
                weights_dir=options["weights_dir"],
                output_dir=options["output_dir"],
                y_convention=options["y_convention"],
                crop_border=options["crop_border"],
                device=options["device"],
                progress=not options["quiet"],
                timeout=options["timeout"],
                queue=options["queue"],
                metrics=options["metrics"],
                metric_stand_in=options["metric_stand_in_weights"],
                metric_weights_dir=options["metric_weights_dir"],
            )
        except (SRMOSError, OSError) as exc:  # OSError: a folder that cannot be read or written
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            raise CommandError("interrupted: the run is marked cancelled and workers skip its remaining jobs") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        result = run.result
        self.stdout.write(result.markdown)
        self.stdout.write(
            f"{result.n_generated} outputs generated, {result.n_skipped} already stored; "
            f"recorded as benchmark run {run.pk}."
        )
        self.stdout.write(f"Files in {result.output_dir}:")
        for path in result.files.values():
            self.stdout.write(f"  {path}")


def interrupted(signum, frame):
    raise KeyboardInterrupt

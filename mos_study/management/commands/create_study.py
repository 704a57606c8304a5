"""python manage.py create_study: build a MOS study from stored benchmark outputs and print the rater link."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from benchmarks.cli_args import comma_list
from sr_models.errors import SRMOSError

from ...models import Study
from ...services.study import create_study


class Command(BaseCommand):
    help = "Create a MOS study from benchmark outputs (running the benchmark where outputs are missing)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="unique short name (letters, digits, - and _)")
        parser.add_argument("--datasets", required=True, type=comma_list, help="e.g. Set5,Set14,BSD100")
        parser.add_argument("--methods", required=True, type=comma_list, help="e.g. nn,bicubic,srresnet-mse")
        parser.add_argument("--include-hr", action="store_true", help="also show the HR originals")
        parser.add_argument("--images-per-session", type=int, default=0, help="0: every stimulus in each session")
        parser.add_argument("--ratings-per-stimulus", type=int, default=26)
        parser.add_argument("--calibration-images", type=int, default=0, help="images shown as NN (1) and HR (5)")
        parser.add_argument("--repeated-trials", type=int, default=0, help="trials shown twice per session")
        parser.add_argument("--title", default="")
        parser.add_argument("--owner", help="username of the researcher who owns the study")
        parser.add_argument("--data-dir", help="datasets folder (default: SRMOS_DATA_DIR)")
        parser.add_argument("--seed", type=int, help="seed for the choice of calibration images")
        parser.add_argument("--completion-url", default="", help="panel page linked from the completion code")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="site address for the rater link")
        parser.add_argument(
            "--exist-ok", action="store_true", help="if a study of that name exists, print its link and change nothing"
        )

    def handle(self, *args, **options):
        existing = Study.objects.filter(name=options["name"]).first()
        if existing is not None and options["exist_ok"]:
            self.stdout.write(f"Study {existing.name!r} exists already.")
            self.stdout.write(f"Rater link: {self.rater_link(existing, options)}")
            return
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"no user named {options['owner']!r}: create it with `manage.py createsuperuser`")
        try:
            study = create_study(
                options["name"],
                options["datasets"],
                options["methods"],
                include_hr=options["include_hr"],
                images_per_session=options["images_per_session"],
                ratings_per_stimulus=options["ratings_per_stimulus"],
                calibration_images=options["calibration_images"],
                repeated_trials=options["repeated_trials"],
                title=options["title"],
                owner=owner,
                data_dir=options["data_dir"],
                seed=options["seed"],
                completion_url=options["completion_url"],
            )
        except SRMOSError as error:
            raise CommandError(str(error)) from error
        n = study.stimuli.filter(is_calibration=False).count()
        self.stdout.write(f"Created study {study.name!r} with {n} stimuli.")
        self.stdout.write(f"Rater link: {self.rater_link(study, options)}")

    @staticmethod
    def rater_link(study, options):
        return options["base_url"].rstrip("/") + reverse("mos_study:start", args=[study.token])

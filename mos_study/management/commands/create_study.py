"""python manage.py create_study: build a MOS study from stored benchmark outputs and print the rater link."""

import argparse
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from benchmarks.cli_args import comma_list
from sr_models.errors import SRMOSError

from ...models import Study
from ...services.study_options import CHOICE, FLAG, INTEGER, NAMES, STUDY_OPTIONS
from ...services.study_setup import create_study


class Command(BaseCommand):
    help = (
        "Create a MOS study from benchmark outputs. Where outputs are missing, the study is created preparing and "
        "the task mos_study.prepare_study runs the benchmark (in this process without a broker, else on a "
        "worker, which the command waits for unless --no-wait)."
    )

    def add_arguments(self, parser):
        for option in STUDY_OPTIONS:  # the study's own options, shared with the admin's form
            parser.add_argument(option.flag, **argument_of(option))
        parser.add_argument("--owner", help="username of the researcher who owns the study")
        parser.add_argument("--data-dir", help="datasets folder (default: SRMOS_DATA_DIR)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="site address for the rater link")
        parser.add_argument(
            "--exist-ok", action="store_true", help="if a study of that name exists, print its link and change nothing"
        )
        parser.add_argument(
            "--wait",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="wait until a preparing study's outputs are made and it opens (default); --no-wait returns at once",
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
                **{option.name: options[option.name] for option in STUDY_OPTIONS},
                owner=owner,
                data_dir=options["data_dir"],
            )
        except SRMOSError as error:
            raise CommandError(str(error)) from error
        if study.status == Study.Status.PREPARING and options["wait"]:
            self.stdout.write(f"Study {study.name!r} is being prepared: waiting for the worker to make its outputs.")
            study = wait_until_prepared(study)
        if study.status == Study.Status.FAILED:
            raise CommandError(
                f"{study.preparation_error} (study {study.name!r} is marked failed; create it again "
                f"under the same name once fixed)"
            )
        if study.status == Study.Status.PREPARING:
            self.stdout.write(f"Study {study.name!r} is being prepared; it opens to raters when its outputs exist.")
        else:
            n = study.stimuli.filter(is_calibration=False, is_gold=False).count()
            self.stdout.write(f"Created study {study.name!r} with {n} stimuli.")
        self.stdout.write(f"Rater link: {self.rater_link(study, options)}")

    @staticmethod
    def rater_link(study, options):
        return options["base_url"].rstrip("/") + reverse("mos_study:start", args=[study.token])


def argument_of(option):
    """The argparse keywords of one study option."""
    if option.kind == FLAG:
        return {"action": "store_true", "help": option.help}
    arguments = {"required": option.required, "default": option.default, "help": option.help}
    if option.kind == NAMES:
        arguments["type"] = comma_list
    elif option.kind == INTEGER:
        arguments["type"] = int
    elif option.kind == CHOICE:
        arguments["choices"] = [value for value, _ in option.choices]
    return arguments


def wait_until_prepared(study, poll_s=2.0):
    """The study, re-read every ``poll_s`` seconds until it is no longer preparing."""
    while study.status == Study.Status.PREPARING:
        time.sleep(poll_s)
        study.refresh_from_db()
    return study

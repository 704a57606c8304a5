"""python manage.py train_model: train SRResNet / an SRGAN variant (the same flags as `python -m sr_models train`)."""

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sr_models.errors import SRMOSError
from sr_models.train import cli


class Command(BaseCommand):
    help = "Train SRResNet or an SRGAN variant from a folder of HR images (see docs/training.md)."

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        # Validation data defaults to the site's datasets folder (SRMOS_DATA_DIR).
        options.setdefault("val_data_dir", str(settings.SRMOS_DATA_DIR))
        try:
            result = cli.run(argparse.Namespace(**options))
        except SRMOSError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(cli.summary(result))

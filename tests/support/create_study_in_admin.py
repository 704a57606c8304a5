"""Create a study through the admin's form (Django's test client, a logged-in superuser); print what came back as
JSON: the answer, how long it took, the study's status right after, and whether the request process loaded the
benchmark (torch, benchmarks.runner).

    python tests/support/create_study_in_admin.py NAME DATASETS METHODS   (settings from the environment;
        SRMOS_TEST_QUEUE: the Celery queue the study's task goes to)
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from config.celery import app  # noqa: E402
from mos_study.models import Study  # noqa: E402


def main(name, datasets, methods):
    if os.environ.get("SRMOS_TEST_QUEUE"):
        app.conf.task_default_queue = os.environ["SRMOS_TEST_QUEUE"]
    boss = get_user_model().objects.create_superuser("boss", password="boss-test-password")
    client = Client()
    client.force_login(boss)
    form = {
        "name": name,
        "datasets": datasets,
        "methods": methods,
        "include_hr": "on",
        "images_per_session": 0,
        "ratings_per_stimulus": 3,
        "calibration_images": 1,
        "repeated_trials": 0,
    }
    started = time.monotonic()
    response = client.post(reverse("admin:mos_study_study_create"), form)
    seconds = time.monotonic() - started
    study = Study.objects.filter(name=name).first()
    print(
        json.dumps(
            {
                "status_code": response.status_code,
                "location": response.get("Location", ""),
                "seconds": seconds,
                "study_status": study and study.status,
                "stimuli": study.stimuli.count() if study else None,
                "loaded_torch": "torch" in sys.modules,
                "loaded_runner": "benchmarks.runner" in sys.modules,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])

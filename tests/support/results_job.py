"""Drive a study's results job from outside, as raters and a researcher would; print what happened as JSON.

    python tests/support/results_job.py rate STUDY_ID RATERS TRIALS   # RATERS new raters rate TRIALS trials each
    python tests/support/results_job.py page STUDY_ID                 # the results page as its owner sees it

Settings from the environment (SRMOS_TEST_QUEUE: the Celery queue the results jobs go to).
"""

import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from config.celery import app  # noqa: E402
from mos_study.models import Study  # noqa: E402
from mos_study.services.rating import rate_trial  # noqa: E402
from mos_study.services.sessions import start_session  # noqa: E402

FRESHNESS = re.compile(r'<p id="results-freshness"[^>]*>([^<]*)</p>')


def rate(study_id, raters, trials):
    """Each new rater rates the first TRIALS trials of a session: one transaction, one hook call, per rating."""
    study = Study.objects.get(pk=study_id)
    started, count = time.monotonic(), 0
    for _ in range(raters):
        session = start_session(study, participant_id=f"burst-{uuid.uuid4().hex[:8]}")
        for k, trial in enumerate(session.trials.order_by("position")[:trials]):
            rate_trial(session.rater.token, trial.token, 1 + k % 5, response_ms=1500)
            count += 1
    return {"ratings": count, "seconds": time.monotonic() - started}


def page(study_id):
    study = Study.objects.get(pk=study_id)
    client = Client()
    client.force_login(study.owner)
    started = time.monotonic()
    response = client.get(reverse("mos_study:study_results", args=[study.pk]))
    seconds = time.monotonic() - started
    found = FRESHNESS.search(response.content.decode())
    return {"status": response.status_code, "seconds": seconds, "line": found.group(1) if found else ""}


if __name__ == "__main__":
    if os.environ.get("SRMOS_TEST_QUEUE"):
        app.conf.task_default_queue = os.environ["SRMOS_TEST_QUEUE"]
    command, *args = sys.argv[1:]
    print(json.dumps(rate(*map(int, args)) if command == "rate" else page(int(args[0]))))

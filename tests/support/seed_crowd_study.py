"""Create a crowd-sized study straight in the database (no image files, bulk inserts) for the results-page benchmark,
and compute its results once, as the job does; print its facts as JSON.

    python tests/support/seed_crowd_study.py NAME RATINGS STIMULI RATERS   (settings from the environment)

The study's stimuli are STIMULI / 10 images x 10 methods; RATERS raters rate RATINGS random stimuli between them.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from mos_study.models import (  # noqa: E402
    Method,
    Output,
    Rater,
    Rating,
    RatingSession,
    Stimulus,
    Study,
    TestImage,
    Trial,
)
from mos_study.services import results_cache  # noqa: E402

METHODS = 10
BATCH = 5000


def stimuli_of(study, n_stimuli):
    methods = [Method.objects.get_or_create(name=f"method{m:02d}")[0] for m in range(METHODS)]
    images = TestImage.objects.bulk_create(
        TestImage(dataset="Crowd", name=f"img_{k:05d}", hr_sha256=f"{k:064x}", width=16, height=16)
        for k in range(n_stimuli // METHODS)
    )
    outputs = Output.objects.bulk_create(
        (
            Output(method=m, image=i, sha256=f"{i.pk:032x}{m.pk:032x}", file="outputs/none.png", width=16, height=16)
            for i in images
            for m in methods
        ),
        batch_size=BATCH,
    )
    return Stimulus.objects.bulk_create((Stimulus(study=study, output=o) for o in outputs), batch_size=BATCH)


def main(name, n_ratings, n_stimuli, n_raters):
    rng = np.random.default_rng(0)
    owner = get_user_model().objects.create_user("researcher", password="load-test-password")
    study = Study.objects.create(name=name, owner=owner)
    stimuli = stimuli_of(study, n_stimuli)
    raters = Rater.objects.bulk_create(Rater(study=study, participant_id=f"P{r}") for r in range(n_raters))
    sessions = RatingSession.objects.bulk_create(RatingSession(rater=r, study=study, seed=0) for r in raters)
    quality = rng.uniform(1.5, 4.5, len(stimuli))
    per_session = np.bincount(rng.integers(0, n_raters, n_ratings), minlength=n_raters)
    for session, count in zip(sessions, per_session):
        picks = rng.integers(0, len(stimuli), count)
        trials = Trial.objects.bulk_create(
            (Trial(session=session, position=p, stimulus=stimuli[s]) for p, s in enumerate(picks)), batch_size=BATCH
        )
        scores = np.clip(np.rint(quality[picks] + rng.normal(0, 0.8, count)), 1, 5).astype(int)
        Rating.objects.bulk_create(
            (Rating(trial=t, score=int(s), response_ms=1500) for t, s in zip(trials, scores)), batch_size=BATCH
        )
    started = time.monotonic()
    outcome = results_cache.compute(study.pk)
    print(
        json.dumps(
            {
                "id": study.pk,
                "ratings": int(per_session.sum()),
                "job": outcome,
                "job_seconds": time.monotonic() - started,
                "username": "researcher",
                "password": "load-test-password",
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:5]))

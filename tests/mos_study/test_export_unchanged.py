"""A fixed study (seeded sessions, scripted raters) exports byte-identical files from one release to the next.

The golden hashes in ``data/export_golden.json`` were written by the code before the architecture refactor (issue 12);
a refactor that changes any export byte fails here. A deliberate change of an export rewrites the file with
``SRMOS_WRITE_GOLDEN=1 pytest tests/mos_study/test_export_unchanged.py`` and says why in its commit.
"""

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.core.management import call_command

from mos_study.models import Rating, RatingSession, Rater
from mos_study.services.rating import rate_trial
from mos_study.services.sessions import start_session

from tests.support.study_factory import stored_study

GOLDEN = Path(__file__).parent / "data" / "export_golden.json"
QUALITY = {"nn": 1, "bicubic": 2, "srgan-vgg54": 4, "hr": 5}
EPOCH = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def rate_like_a_panel(study, n_raters=6):
    """Seeded sessions rated by scripted raters whose scores depend on method, position and rater only."""
    for r in range(n_raters):
        session = start_session(study, participant_id=f"P{r:02d}", seed=100 + r)
        for trial in session.trials.order_by("position").select_related("stimulus__output__method"):
            quality = QUALITY[trial.stimulus.output.method.name]
            score = min(5, max(1, quality + (trial.position * 7 + r * 3) % 3 - 1))
            rate_trial(session.rater.token, trial.token, score, response_ms=900 + 37 * trial.position)
    # Wall-clock stamps are the only input that changes between runs: pin them.
    for k, rating in enumerate(Rating.objects.order_by("pk")):
        Rating.objects.filter(pk=rating.pk).update(created=EPOCH + timedelta(seconds=k))
    RatingSession.objects.update(started=EPOCH, finished=EPOCH + timedelta(hours=1))
    # Completion codes (exported since issue 13) are random too: pin them.
    for k, pk in enumerate(RatingSession.objects.order_by("pk").values_list("pk", flat=True)):
        RatingSession.objects.filter(pk=pk).update(completion_code=f"GOLDEN{k:04d}")
    Rater.objects.update(consented_at=EPOCH)


def export_hashes(tmp_path):
    study = stored_study(
        tmp_path / "media", "golden", images_per_session=12, ratings_per_stimulus=4, repeated_trials=2, seed=7
    )
    rate_like_a_panel(study)
    out = tmp_path / "export"
    call_command("export_results", "--study", "golden", "--output-dir", str(out), "--no-figures")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_a_fixed_study_exports_the_golden_files(tmp_path):
    hashes = export_hashes(tmp_path)
    if os.environ.get("SRMOS_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    assert hashes == json.loads(GOLDEN.read_text())

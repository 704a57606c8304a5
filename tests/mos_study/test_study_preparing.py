"""A study whose outputs are missing is created *preparing*; the task ``prepare_study`` makes its outputs and stimuli
and opens it, or marks it failed. Here Celery runs in-process (the embedded default); a real worker on Redis:
test_celery_worker.py."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from mos_study import tasks
from mos_study.models import BenchmarkRun, Study
from mos_study.services.errors import StudyNotOpen
from mos_study.services.sessions import start_session
from mos_study.services.study_setup import create_study


def create(*args):
    out = io.StringIO()
    call_command("create_study", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_command_prepares_a_study_in_process_end_to_end(bench_dirs, caplog):
    text = create(
        "--name", "inline", "--datasets", "Set5", "--methods", "nn", "--include-hr", "--calibration-images", "1"
    )
    study = Study.objects.get(name="inline")
    # 5 images x (nn, hr), less the calibration image's two: calibration content is never a test trial
    assert "Created study 'inline' with 8 stimuli." in text and f"/s/{study.token}/" in text
    assert study.status == Study.Status.OPEN and study.preparation_error == ""
    assert study.stimuli.filter(is_calibration=True).count() == 2
    assert BenchmarkRun.objects.get().status == BenchmarkRun.Status.DONE
    assert start_session(study).trials.count() == 2 + 8
    # In-process tasks look for no broker: kombu used to warn "No hostname was supplied" here (the quick start).
    assert not [record for record in caplog.records if record.name.startswith("kombu")]


@pytest.mark.django_db(transaction=True)
def test_the_admin_form_prepares_a_study_in_process(bench_dirs, client):
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    form = {
        "name": "from-admin",
        "datasets": "Set5",
        "methods": "nn",
        "images_per_session": 0,
        "ratings_per_stimulus": 5,
        "calibration_images": 0,
        "repeated_trials": 0,
    }
    response = client.post(reverse("admin:mos_study_study_create"), form)
    study = Study.objects.get(name="from-admin")
    assert response.status_code == 302 and response["Location"].endswith(f"/{study.pk}/change/")
    assert study.status == Study.Status.OPEN and study.stimuli.count() == 5


@pytest.mark.django_db
def test_a_preparing_study_takes_no_raters_until_its_task_has_run(
    bench_dirs, client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as queued:  # the task is sent once the study row is committed
        study = create_study("later", ["Set5"], ["nn"], include_hr=True)
    assert study.status == Study.Status.PREPARING and not study.stimuli.exists() and len(queued) == 1
    with pytest.raises(StudyNotOpen, match="being prepared"):
        start_session(study)
    page = client.get(reverse("mos_study:start", args=[study.token]))
    assert page.status_code == 409 and b"being prepared" in page.content

    assert tasks.prepare_study.apply(args=(study.pk,)).get() == Study.Status.OPEN
    study.refresh_from_db()
    assert study.status == Study.Status.OPEN and study.stimuli.count() == 10
    assert tasks.prepare_study.apply(args=(study.pk,)).get() == Study.Status.OPEN  # redelivered: changes nothing
    assert study.stimuli.count() == 10


@pytest.mark.django_db(transaction=True)
def test_a_failed_preparation_is_recorded_and_the_name_can_be_used_again(bench_dirs):
    with pytest.raises(CommandError, match="unknown method 'no-such-method'.*marked failed"):
        create("--name", "typo", "--datasets", "Set5", "--methods", "no-such-method")
    study = Study.objects.get(name="typo")
    assert study.status == Study.Status.FAILED and "unknown method 'no-such-method'" in study.preparation_error
    assert not study.stimuli.exists()
    with pytest.raises(StudyNotOpen):
        start_session(study)
    create("--name", "typo", "--datasets", "Set5", "--methods", "nn")  # replaces the failed study
    assert Study.objects.get(name="typo").status == Study.Status.OPEN


@pytest.mark.django_db(transaction=True)
def test_the_command_can_leave_a_preparing_study_to_the_workers(bench_dirs, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.prepare_study, "delay", lambda *args, **kwargs: sent.append((args, kwargs)))
    text = create("--name", "queued", "--datasets", "Set5", "--methods", "nn", "--no-wait")
    study = Study.objects.get(name="queued")
    assert "is being prepared" in text and f"/s/{study.token}/" in text and study.status == Study.Status.PREPARING
    assert sent == [((study.pk,), {"data_dir": None})]

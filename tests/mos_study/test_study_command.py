"""manage.py create_study on stored outputs (the benchmark-running path is covered by tests/e2e)."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from mos_study.models import Study

from tests.support.study_factory import store_outputs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outputs(media_root):
    return store_outputs(media_root)


def create(*args):
    out = io.StringIO()
    call_command("create_study", *args, stdout=out)
    return out.getvalue()


def test_create_study_prints_the_rater_link(settings):
    owner = User.objects.create_user("ana")
    text = create(
        "--name",
        "cmd",
        "--datasets",
        "Set5",
        "--methods",
        "bicubic,srgan-vgg54",
        "--include-hr",
        "--images-per-session",
        "6",
        "--ratings-per-stimulus",
        "3",
        "--calibration-images",
        "2",
        "--repeated-trials",
        "1",
        "--owner",
        "ana",
        "--base-url",
        "https://mos.example.org/",
        "--completion-url",
        "https://panel.example/done",
    )
    study = Study.objects.get(name="cmd")
    assert (
        f"Rater link: https://mos.example.org/s/{study.token}/" in text and "9 stimuli" in text
    )  # 2 calibration images are no test trials: 3 x 3
    assert (study.owner, study.images_per_session, study.ratings_per_stimulus) == (owner, 6, 3)
    assert (study.calibration_images, study.repeated_trials) == (2, 1)
    assert study.stimuli.filter(is_calibration=True).count() == 4
    assert study.config["completion_url"] == "https://panel.example/done"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--owner", "nobody"], "no user named 'nobody'"),
        (["--calibration-images", "9"], "more images than the 5 available"),
        (["--images-per-session", "-1"], "must be 0 or more"),
    ],
)
def test_create_study_reports_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        create("--name", "bad", "--datasets", "Set5", "--methods", "bicubic", *args)
    assert not Study.objects.exists()


def test_create_study_exist_ok_prints_the_existing_link_and_changes_nothing():
    create("--name", "again", "--datasets", "Set5", "--methods", "bicubic")
    study = Study.objects.get(name="again")
    n_stimuli = study.stimuli.count()
    text = create("--name", "again", "--datasets", "Set5", "--methods", "bicubic,srgan-vgg54", "--exist-ok")
    assert "exists already" in text and f"/s/{study.token}/" in text
    assert Study.objects.count() == 1 and study.stimuli.count() == n_stimuli
    with pytest.raises(CommandError):
        create("--name", "again", "--datasets", "Set5", "--methods", "bicubic")

"""Creating a study: its stimuli are stored benchmark outputs; where outputs are missing a Celery task makes them.

``create_study`` checks the options (``study_options``). Where every output it needs is stored, it builds the open
study and its stimuli at once, in one transaction. Where outputs are missing, it records the study as *preparing*
(it takes no raters yet) and queues the task ``mos_study.prepare_study`` (``tasks.prepare_study``) once the study row
is committed; the task runs the missing outputs through the benchmark service (``services.benchmark``), then builds
the stimuli and opens the study, or marks it *failed* with the error (``Study.preparation_error``). So no web request
runs a benchmark: with a broker, the admin's form returns at once. Without one (Celery eager, the embedded default),
the task runs in the calling process before ``create_study`` returns.
"""

import logging
import random
import secrets
from collections import defaultdict

from django.db import transaction

from sr_models.errors import SRMOSError

from ..models import HR_METHOD, PUBLIC_TITLE, Output, Stimulus, Study, TestImage
from .errors import StudyError
from .sessions import lock_study
from .study_options import check_options

NN_METHOD = "nn"  # calibration shows nearest-neighbour upscales as the example of score 1, HR as score 5
CALIBRATION_SCORES = {NN_METHOD: 1, HR_METHOD: 5}

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- outputs


def outputs_missing(dataset, method):
    """True when ``method`` has no stored output for some stored test image of ``dataset``."""
    n_images = TestImage.objects.filter(dataset=dataset).count()
    n_done = Output.objects.filter(method__name=method, image__dataset=dataset).values("image").distinct().count()
    return n_images == 0 or n_done < n_images


def any_outputs_missing(datasets, methods):
    return any(outputs_missing(d, m) for d in datasets for m in methods)


def make_outputs(datasets, methods, *, data_dir=None, executor=None):
    """Run the benchmark (or record HR originals) for the (dataset, method) pairs that lack outputs.

    ``executor`` runs the benchmark's jobs (``services.benchmark.run_and_record``); the preparing task gives one
    that runs them in its own process.
    """
    from . import benchmark  # imported here so that the rater views never load the benchmark service

    to_run = [m for m in methods if m != HR_METHOD and any(outputs_missing(d, m) for d in datasets)]
    if to_run:
        benchmark.run_and_record(datasets, to_run, data_dir=data_dir, progress=False, executor=executor)
    if HR_METHOD in methods:
        for dataset in datasets:
            if outputs_missing(dataset, HR_METHOD):
                benchmark.record_hr_outputs(dataset, data_dir=data_dir)


def latest_outputs(datasets, methods):
    """The newest output per (method, test image), e.g. after a method's weights changed."""
    newest = {}
    rows = Output.objects.filter(method__name__in=methods, image__dataset__in=datasets)
    rows = rows.select_related("method", "image")
    for output in rows.order_by("created", "pk"):
        newest[(output.method.name, output.image_id)] = output
    for dataset in datasets:
        for method in methods:
            if not any(o.method.name == method and o.image.dataset == dataset for o in newest.values()):
                raise StudyError(
                    f"no outputs of method {method!r} on dataset {dataset!r}: run "
                    f"`python manage.py run_benchmark --datasets {dataset} --methods {method}` or check the names"
                )
    return sorted(newest.values(), key=lambda o: (o.image.dataset, o.image.name, o.method.name))


# --------------------------------------------------------------------------- stimuli


def choose_calibration(outputs, n, rng):
    """``n`` test images shown as NN (score 1) and HR (score 5): a list of (output, score)."""
    by_image = defaultdict(dict)
    for output in outputs:
        by_image[output.image_id][output.method.name] = output
    usable = sorted(image for image, methods in by_image.items() if set(CALIBRATION_SCORES) <= set(methods))
    if n > len(usable):
        raise StudyError(f"--calibration-images {n} asks for more images than the {len(usable)} available")
    chosen = rng.sample(usable, n)
    return [(by_image[image][method], score) for image in chosen for method, score in CALIBRATION_SCORES.items()]


def needed_methods(methods, calibration_images, gold_trials=0):
    """The methods whose outputs a study needs: the shown ones, and NN and HR for calibration and gold trials."""
    anchor_methods = list(CALIBRATION_SCORES) if calibration_images or gold_trials else []
    return list(dict.fromkeys(methods + anchor_methods))


def choose_gold(outputs, gold_trials, excluded_images):
    """The gold stimuli (hidden trials of known answer): the NN (expected 1) and HR (expected 5) outputs of every
    test image not shown for calibration, as (output, expected score); each session draws ``gold_trials`` of them."""
    if not gold_trials:
        return []
    by_image = defaultdict(dict)
    for output in outputs:
        if output.image_id not in excluded_images:
            by_image[output.image_id][output.method.name] = output
    usable = sorted(image for image, methods in by_image.items() if set(CALIBRATION_SCORES) <= set(methods))
    gold = [(by_image[image][method], score) for image in usable for method, score in CALIBRATION_SCORES.items()]
    if gold_trials > len(gold):
        raise StudyError(
            f"gold trials ({gold_trials}) asks for more than the {len(gold)} gold stimuli (NN and HR of each test "
            "image not used for calibration)"
        )
    return gold


def plan_stimuli(datasets, methods, *, images_per_session, calibration_images, repeated_trials, seed, gold_trials=0):
    """The study's stimuli from the stored outputs: (shown outputs, [(calibration output, score)], [(gold output,
    expected score)]); raises ``StudyError`` when they cannot fill the sessions asked for."""
    outputs = latest_outputs(datasets, needed_methods(methods, calibration_images, gold_trials))
    calibration = choose_calibration(outputs, calibration_images, random.Random(seed))
    # Calibration content is never a test trial: the images shown as anchors are left out of the rated stimuli.
    calibration_images_used = {output.image_id for output, _ in calibration}
    shown = [o for o in outputs if o.method.name in methods and o.image_id not in calibration_images_used]
    if calibration and not shown:
        n_images = len({o.image_id for o in outputs})
        raise StudyError(
            f"calibration images ({calibration_images}) leave no test image: the datasets have {n_images} images "
            f"and an image shown for calibration is never rated as a test trial; use at most {n_images - 1} "
            "calibration images or add a dataset"
        )
    if images_per_session > len(shown):
        left_out = " (calibration images are left out of the test trials)" if calibration else ""
        raise StudyError(
            f"images per session ({images_per_session}) exceeds the study's {len(shown)} stimuli{left_out}"
        )
    if repeated_trials > (images_per_session or len(shown)):
        raise StudyError(f"repeated trials ({repeated_trials}) exceeds the trials in a session")
    return shown, calibration, choose_gold(outputs, gold_trials, calibration_images_used)


def study_plan(study):
    """``plan_stimuli`` for a study row (its options and config)."""
    return plan_stimuli(
        study.config["datasets"],
        study.config["methods"],
        images_per_session=study.images_per_session,
        calibration_images=study.calibration_images,
        repeated_trials=study.repeated_trials,
        seed=study.config["seed"],
        gold_trials=study.gold_trials,
    )


def add_stimuli(study, shown, calibration, gold=()):
    Stimulus.objects.bulk_create([Stimulus(study=study, output=o) for o in shown])
    Stimulus.objects.bulk_create(
        [Stimulus(study=study, output=o, is_calibration=True, calibration_score=s) for o, s in calibration]
    )
    Stimulus.objects.bulk_create([Stimulus(study=study, output=o, is_gold=True, calibration_score=s) for o, s in gold])


# --------------------------------------------------------------------------- creating a study


def name_taken(name):
    """Whether a study of that name exists; a failed one does not count (creating it again replaces it)."""
    return Study.objects.filter(name=name).exclude(status=Study.Status.FAILED).exists()


def create_study(name, datasets, methods, *, owner=None, data_dir=None, run_missing=True, **options):
    """A study whose stimuli are the stored outputs of ``methods`` on ``datasets``; ``options`` are those of
    ``study_options.STUDY_OPTIONS`` (``include_hr``, ``images_per_session``, ...).

    Returns the open study; or, where outputs are missing and ``run_missing``, the study *preparing* while the
    task ``prepare_study`` makes them (see the module docstring). Raises ``StudyError`` for options it cannot take,
    storing nothing.
    """
    datasets, methods = list(dict.fromkeys(datasets)), list(dict.fromkeys(methods))
    if options.get("include_hr") and HR_METHOD not in methods:
        methods.append(HR_METHOD)
    if not datasets or not methods:
        raise StudyError("a study needs at least one dataset and one method")
    if name_taken(name):
        raise StudyError(f"a study named {name!r} already exists: choose another name")
    options = check_options({**options, "name": name, "datasets": datasets, "methods": methods})
    if options["protocol"] == Study.Protocol.PAIRWISE and len(methods) < 2:
        raise StudyError("a pairwise study compares at least two methods: name another (or add --include-hr)")
    seed = secrets.randbits(62) if options["seed"] is None else options["seed"]
    fields = {
        "name": name,
        "title": options["title"] or name,
        "public_title": options["public_title"] or PUBLIC_TITLE,
        "owner": owner,
        "images_per_session": options["images_per_session"],
        "ratings_per_stimulus": options["ratings_per_stimulus"],
        "calibration_images": options["calibration_images"],
        "repeated_trials": options["repeated_trials"],
        "instructions": options["instructions"],
        "lease_minutes": options["lease_minutes"],
        "min_view_ms": options["min_view_ms"],
        "grey_background": bool(options["grey_background"]),
        "consent_text": options["consent_text"],
        "gold_trials": options["gold_trials"],
        "gold_pass_percent": options["gold_pass_percent"],
        "exclude_phones": bool(options["exclude_phones"]),
        "window_fits_images": bool(options["window_fits_images"]),
        "closes_at": options["closes_at"],
        "language": options["language"] or "",
        "protocol": options["protocol"] or Study.Protocol.ACR,
        "pair_design": options["pair_design"] or Study.PairDesign.ACTIVE,
        "allow_tie": bool(options["allow_tie"]),
        "config": {"datasets": datasets, "methods": methods, "seed": seed, "completion_url": options["completion_url"]},
    }
    anchors = needed_methods(methods, options["calibration_images"], options["gold_trials"])
    if run_missing and any_outputs_missing(datasets, anchors):
        with transaction.atomic():
            Study.objects.filter(name=name, status=Study.Status.FAILED).delete()
            study = Study.objects.create(**fields, status=Study.Status.PREPARING)
        transaction.on_commit(lambda: queue_preparation(study, data_dir))
        study.refresh_from_db()  # without a broker the task has run already (unless a caller's transaction is open)
        return study
    shown, calibration, gold = plan_stimuli(
        datasets,
        methods,
        images_per_session=options["images_per_session"],
        calibration_images=options["calibration_images"],
        repeated_trials=options["repeated_trials"],
        seed=seed,
        gold_trials=options["gold_trials"],
    )
    if options["protocol"] == Study.Protocol.PAIRWISE and options["gold_trials"] > len(gold) // 2:
        raise StudyError(  # a trap pair takes an image's NN and HR gold stimuli
            f"gold trials ({options['gold_trials']}) asks for more than the {len(gold) // 2} trap pairs (HR against "
            "nearest neighbour of each test image not used for calibration)"
        )
    with transaction.atomic():
        Study.objects.filter(name=name, status=Study.Status.FAILED).delete()
        study = Study.objects.create(**fields)
        add_stimuli(study, shown, calibration, gold)
    return study


def queue_preparation(study, data_dir=None):
    """Send ``prepare_study`` for the study (run at once where Celery is eager); a broker that cannot take it marks
    the study failed, saying so."""
    from kombu.exceptions import OperationalError as BrokerOperationalError

    from .. import tasks

    try:
        tasks.prepare_study.delay(study.pk, data_dir=None if data_dir is None else str(data_dir))
    except (BrokerOperationalError, OSError) as exc:
        mark_failed(
            study,
            f"cannot queue the preparation on the Celery broker ({exc}): start the broker, then create the study again",
        )


# --------------------------------------------------------------------------- the preparing task's work


def prepare_study(study_id, *, data_dir=None, executor=None):
    """Make a preparing study's missing outputs, then its stimuli, and open it; on an error, mark it failed with the
    message. Returns the study's status (None for a study that no longer exists).

    Safe to run twice (a redelivered task): outputs are stored content-addressed, and only a study still preparing
    gets stimuli, under its row lock.
    """
    study = Study.objects.filter(pk=study_id).first()
    if study is None or study.status != Study.Status.PREPARING:
        return study and study.status
    try:
        methods = needed_methods(study.config["methods"], study.calibration_images, study.gold_trials)
        make_outputs(study.config["datasets"], methods, data_dir=data_dir, executor=executor)
        with transaction.atomic():
            study = lock_study(study)
            if study.status == Study.Status.PREPARING:
                add_stimuli(study, *study_plan(study))
                study.status = Study.Status.OPEN
                study.save(update_fields=["status"])
    except SRMOSError as error:
        mark_failed(study, str(error))
    except Exception as error:
        mark_failed(study, f"{type(error).__name__}: {error}")
        raise
    return study.status


def mark_failed(study, message):
    logger.warning("study %s could not be prepared: %s", study.name, message)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.FAILED, preparation_error=message)
    study.status, study.preparation_error = Study.Status.FAILED, message

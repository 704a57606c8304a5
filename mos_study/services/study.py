"""MOS studies: creation from benchmark outputs, balanced assignment, session building, rating submission.

Views and commands call these functions; they hold the study logic so that a view stays a few lines.
Every error a rater or researcher can cause is a ``StudyError`` (an ``SRMOSError``) whose ``status`` is the HTTP
code a view answers with.
"""
import math
import random
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from sr_models.errors import SRMOSError

from ..models import HR_METHOD, Output, Rater, Rating, RatingSession, Stimulus, Study, TestImage, Trial

NN_METHOD = "nn"  # calibration shows nearest-neighbour upscales as the example of score 1, HR as score 5
CALIBRATION_SCORES = {NN_METHOD: 1, HR_METHOD: 5}
SCORE_LABELS = {1: "bad", 2: "poor", 3: "fair", 4: "good", 5: "excellent"}
MAX_RESPONSE_MS = 10 * 60 * 1000  # longer answers are clamped: the rater was away, not looking for 3 hours
SESSION_TIMEOUT = timedelta(hours=2)  # unfinished sessions older than this stop holding their unrated trials
ACTIVE_WINDOW = timedelta(minutes=15)  # a rater counts as active with a rating (or a start) this recent
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "pid")  # URL parameters that carry a panel's participant id


class StudyError(SRMOSError):
    """A request the study cannot accept; ``status`` is the HTTP answer."""

    status = 400


class InvalidRating(StudyError):
    status = 400


class TrialNotFound(StudyError):
    status = 404


class RatingConflict(StudyError):
    status = 409


class StudyNotOpen(StudyError):
    status = 409


# --------------------------------------------------------------------------- creating a study


def outputs_missing(dataset, method):
    """True when ``method`` has no stored output for some stored test image of ``dataset``."""
    n_images = TestImage.objects.filter(dataset=dataset).count()
    n_done = Output.objects.filter(method__name=method, image__dataset=dataset).values("image").distinct().count()
    return n_images == 0 or n_done < n_images


def ensure_outputs(datasets, methods, *, data_dir=None, run_missing=True):
    """Run the benchmark (or record HR originals) for the (dataset, method) pairs that lack outputs."""
    if not run_missing:
        return
    from . import benchmark  # imported here so that the rater views never load the benchmark and torch

    to_run = [m for m in methods if m != HR_METHOD and any(outputs_missing(d, m) for d in datasets)]
    if to_run:
        benchmark.run_and_record(datasets, to_run, data_dir=data_dir, progress=False)
    if HR_METHOD in methods:
        for dataset in datasets:
            if outputs_missing(dataset, HR_METHOD):
                benchmark.record_hr_outputs(dataset, data_dir=data_dir)


def latest_outputs(datasets, methods):
    """The newest output per (method, test image), e.g. after a method's weights changed."""
    newest = {}
    rows = Output.objects.filter(method__name__in=methods, image__dataset__in=datasets).select_related("method", "image")
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


def create_study(
    name,
    datasets,
    methods,
    *,
    include_hr=False,
    images_per_session=0,
    ratings_per_stimulus=26,
    calibration_images=0,
    repeated_trials=0,
    title="",
    instructions="",
    owner=None,
    data_dir=None,
    seed=None,
    completion_url="",
    run_missing=True,
):
    """Build an open study whose stimuli are the stored outputs of ``methods`` on ``datasets``."""
    datasets, methods = list(dict.fromkeys(datasets)), list(dict.fromkeys(methods))
    if include_hr and HR_METHOD not in methods:
        methods.append(HR_METHOD)
    if not datasets or not methods:
        raise StudyError("a study needs at least one dataset and one method")
    if Study.objects.filter(name=name).exists():
        raise StudyError(f"a study named {name!r} already exists: choose another name")
    for value, option in [
        (images_per_session, "images per session"),
        (calibration_images, "calibration images"),
        (repeated_trials, "repeated trials"),
    ]:
        if value < 0:
            raise StudyError(f"{option} must be 0 or more, not {value}")
    if ratings_per_stimulus < 1:
        raise StudyError(f"ratings per stimulus must be at least 1, not {ratings_per_stimulus}")

    calibration_methods = list(CALIBRATION_SCORES) if calibration_images else []
    needed = list(dict.fromkeys(methods + calibration_methods))
    ensure_outputs(datasets, needed, data_dir=data_dir, run_missing=run_missing)
    outputs = latest_outputs(datasets, needed)
    seed = secrets.randbits(62) if seed is None else seed
    calibration = choose_calibration(outputs, calibration_images, random.Random(seed))
    shown = [o for o in outputs if o.method.name in methods]
    if images_per_session > len(shown):
        raise StudyError(f"images per session ({images_per_session}) exceeds the study's {len(shown)} stimuli")
    if repeated_trials > (images_per_session or len(shown)):
        raise StudyError(f"repeated trials ({repeated_trials}) exceeds the trials in a session")

    with transaction.atomic():
        study = Study.objects.create(
            name=name,
            title=title or name,
            owner=owner,
            images_per_session=images_per_session,
            ratings_per_stimulus=ratings_per_stimulus,
            calibration_images=calibration_images,
            repeated_trials=repeated_trials,
            instructions=instructions,
            config={"datasets": datasets, "methods": methods, "seed": seed, "completion_url": completion_url},
        )
        Stimulus.objects.bulk_create([Stimulus(study=study, output=o) for o in shown])
        Stimulus.objects.bulk_create(
            [Stimulus(study=study, output=o, is_calibration=True, calibration_score=s) for o, s in calibration]
        )
    return study


# --------------------------------------------------------------------------- building a session


def lock(model, pk, field):
    """Hold one row until the transaction ends, and return it fresh: SELECT ... FOR UPDATE, or on SQLite (no row
    locks) a no-op write, which takes the database's write lock first thing, before a read could deadlock."""
    if connection.vendor == "sqlite":
        model.objects.filter(pk=pk).update(**{field: F(field)})
        return model.objects.get(pk=pk)
    return model.objects.select_for_update().get(pk=pk)


def lock_study(study):
    """Serialise session building per study so that concurrent raters stay balanced."""
    return lock(Study, study.pk, "status")


def assigned_counts(study, now=None):
    """Ratings each (non-calibration) stimulus has or is still expected to get: {stimulus pk: count}.

    A trial counts when rated, or when its session is finished or still fresh; trials of abandoned sessions
    free their place so that later raters fill it.
    """
    cutoff = (now or timezone.now()) - SESSION_TIMEOUT
    counts = dict.fromkeys(study.stimuli.filter(is_calibration=False).values_list("pk", flat=True), 0)
    live = Trial.objects.filter(session__study=study, kind=Trial.Kind.TRIAL).filter(
        Q(rating__isnull=False) | Q(session__finished__isnull=False) | Q(session__started__gte=cutoff)
    )
    for row in live.values("stimulus").annotate(n=Count("pk")):
        counts[row["stimulus"]] = row["n"]
    return counts


def choose_stimuli(stimuli, counts, k, rng):
    """The ``k`` stimuli with the fewest assigned ratings; ties broken at random, spread over test images."""
    shuffled = list(stimuli)
    rng.shuffle(shuffled)
    shuffled.sort(key=lambda s: counts[s.pk])  # stable sort: random order within each count
    seen = Counter()
    keys = {}
    for index, stimulus in enumerate(shuffled):
        tier = (counts[stimulus.pk], stimulus.output.image_id)
        keys[stimulus.pk] = (counts[stimulus.pk], seen[tier], index)  # an image's 2nd stimulus after all 1st ones
        seen[tier] += 1
    return sorted(shuffled, key=lambda s: keys[s.pk])[:k]


def arrangeable(counts, first_not=None):
    """Whether items with these per-image counts can be lined up with no image twice in a row."""
    n = sum(counts.values())
    biggest = max(counts.values(), default=0)
    if biggest > (n + 1) // 2:
        return False
    # With n odd, an image holding (n + 1) / 2 items must take the first place.
    return not (n % 2 == 1 and first_not is not None and counts.get(first_not, 0) == (n + 1) // 2)


def order_apart(items, image_of, rng, last=None):
    """A random order of ``items`` in which no image follows itself (nor ``last``), wherever one exists."""
    groups = defaultdict(list)
    for item in items:
        groups[image_of(item)].append(item)
    for group in groups.values():
        rng.shuffle(group)
    order = []
    while groups:
        counts = {image: len(group) for image, group in groups.items()}
        candidates = []
        for image in groups:
            if image == last:
                continue
            after = {**counts, image: counts[image] - 1}
            if arrangeable(after, first_not=image):
                candidates.append(image)
        if not candidates:
            # No arrangement exists (too many items of one image): spend the biggest group first, so that as few
            # neighbours as possible share an image.
            others = [image for image in groups if image != last] or list(groups)
            biggest = max(counts[image] for image in others)
            candidates = [image for image in others if counts[image] == biggest]
        image = rng.choices(candidates, weights=[counts[c] for c in candidates])[0]
        order.append(groups[image].pop())
        if not groups[image]:
            del groups[image]
        last = image
    return order


def image_of(pair):
    """The test image of a (stimulus, kind) pair."""
    return pair[0].output.image_id


def plan_session(study, calibration, stimuli, counts, rng):
    """The session's trials as (stimulus, kind): calibration first, then trials and repeats in random order."""
    first = order_apart([(s, Trial.Kind.CALIBRATION) for s in calibration], image_of, rng)
    k = study.images_per_session or len(stimuli)
    chosen = choose_stimuli(stimuli, counts, k, rng)
    repeats = rng.sample(chosen, min(study.repeated_trials, len(chosen)))
    rest = [(s, Trial.Kind.TRIAL) for s in chosen] + [(s, Trial.Kind.REPEAT) for s in repeats]
    last = image_of(first[-1]) if first else None
    return first + order_apart(rest, image_of, rng, last=last)


def check_open(study):
    if study.status != Study.Status.OPEN:
        raise StudyNotOpen("this study is not open for ratings at the moment")


def study_is_full(study, counts):
    return bool(counts) and min(counts.values()) >= study.ratings_per_stimulus


def clean_participant_id(value):
    value = (value or "").strip()
    if len(value) > 200:
        raise StudyError("the participant id is too long (200 characters at most)")
    return value


def find_rater(study, participant_id):
    """The rater who already started ``study`` under this panel participant id, or None."""
    participant_id = clean_participant_id(participant_id)
    if not participant_id:
        return None
    return Rater.objects.filter(study=study, participant_id=participant_id).first()


def start_session(study, *, participant_id="", user_agent="", seed=None, now=None):
    """A new consenting rater with a balanced, randomly ordered session; a known participant id resumes its own."""
    participant_id = clean_participant_id(participant_id)
    with transaction.atomic():
        study = lock_study(study)
        check_open(study)
        rater = find_rater(study, participant_id)
        if rater is not None:
            return current_session(rater)
        stimuli = list(study.stimuli.select_related("output").order_by("pk"))
        trial_stimuli = [s for s in stimuli if not s.is_calibration]
        counts = assigned_counts(study, now=now)
        if study_is_full(study, counts):
            raise StudyNotOpen("this study has collected all the ratings it needs: thank you for your interest")
        rater = Rater.objects.create(
            study=study, participant_id=participant_id, consented_at=timezone.now(), user_agent=user_agent[:500]
        )
        seed = secrets.randbits(62) if seed is None else seed
        session = RatingSession.objects.create(rater=rater, study=study, seed=seed)
        calibration = [s for s in stimuli if s.is_calibration]
        plan = plan_session(study, calibration, trial_stimuli, counts, random.Random(seed))
        Trial.objects.bulk_create(
            [Trial(session=session, position=i, stimulus=s, kind=kind) for i, (s, kind) in enumerate(plan)]
        )
    return session


def current_session(rater):
    """The rater's latest session (one per rater in the browser flow)."""
    return rater.sessions.order_by("-started", "-pk").first()


def session_of(rater_token):
    """The latest session of the rater with this link token, or None; one query, for the page's state reads."""
    return RatingSession.objects.filter(rater__token=rater_token).order_by("-started", "-pk").first()


# --------------------------------------------------------------------------- ratings


def clean_score(score):
    if isinstance(score, bool) or not isinstance(score, (int, float, str)):
        raise InvalidRating("score must be a whole number from 1 (bad) to 5 (excellent)")
    try:
        value = float(score)
    except ValueError:
        raise InvalidRating("score must be a whole number from 1 (bad) to 5 (excellent)") from None
    if not value.is_integer() or not 1 <= value <= 5:
        raise InvalidRating(f"score must be a whole number from 1 (bad) to 5 (excellent), not {score!r}")
    return int(value)


def clean_response_ms(value):
    """Milliseconds from image shown to answer as measured by the page: None, or clamped to [0, MAX]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidRating("response_ms must be a non-negative number of milliseconds")
    return min(int(round(value)), MAX_RESPONSE_MS)


@dataclass(frozen=True)
class RatingReceipt:
    """What one rating POST tells the page: the stored rating and the session's progress after it."""

    rating_id: int
    trial: str  # the trial's token
    score: int
    created: bool  # False: the same score again, answered with the stored rating
    done: int
    total: int
    finished: bool


# The rating path in a few statements (BEGIN, these three, COMMIT; one more for a session's last rating), written in
# SQL because the ORM's query building cost more CPU than the database's work. Table names follow the models.
TRIAL_TO_RATE = f"""
    SELECT t.id, t.session_id, s.finished IS NOT NULL, st.status, r.id, r.score
    FROM {Trial._meta.db_table} t
    JOIN {RatingSession._meta.db_table} s ON s.id = t.session_id
    JOIN {Rater._meta.db_table} p ON p.id = s.rater_id
    JOIN {Study._meta.db_table} st ON st.id = s.study_id
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id
    WHERE t.token = %s AND p.token = %s"""
# SQLite has no row locks: a no-op write on the session takes the database's write lock before anything is read.
SQLITE_LOCK_SESSION = f"""
    UPDATE {RatingSession._meta.db_table} SET seed = seed
    WHERE id = (SELECT session_id FROM {Trial._meta.db_table} WHERE token = %s)"""
INSERT_RATING = f"""
    INSERT INTO {Rating._meta.db_table} (trial_id, score, response_ms, created) VALUES (%s, %s, %s, %s)
    ON CONFLICT (trial_id) DO NOTHING RETURNING id"""
SESSION_PROGRESS = f"""
    SELECT count(*), count(r.id) FROM {Trial._meta.db_table} t
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id WHERE t.session_id = %s"""
FINISH_SESSION = f"UPDATE {RatingSession._meta.db_table} SET finished = %s WHERE id = %s AND finished IS NULL"


def rate_trial(rater_token, trial_token, score, response_ms=None):
    """Store one rating of the rater's trial in one transaction; returns a ``RatingReceipt``.

    Idempotent: the same score again returns the stored rating; a different one raises ``RatingConflict``. A
    session's ratings run one after another (its row is locked), so the last one sees all others and finishes it.
    """
    score = clean_score(score)
    response_ms = clean_response_ms(response_ms)
    trial_token = str(trial_token)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(SQLITE_LOCK_SESSION, [trial_token])
            cursor.execute(TRIAL_TO_RATE, [trial_token, str(rater_token)])
        else:
            cursor.execute(TRIAL_TO_RATE + " FOR UPDATE OF s", [trial_token, str(rater_token)])
        row = cursor.fetchone()
        if row is None:
            raise TrialNotFound("no such trial in your session")
        trial_id, session_id, finished, status, rating_id, stored_score = row
        created = rating_id is None
        if created:
            if status != Study.Status.OPEN:
                raise StudyNotOpen("this study is not open for ratings at the moment")
            stamp = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(INSERT_RATING, [trial_id, score, response_ms, stamp])
            inserted = cursor.fetchone()
            if inserted is None:  # rated by a request that held the lock while this one read (read committed)
                cursor.execute(f"SELECT id, score FROM {Rating._meta.db_table} WHERE trial_id = %s", [trial_id])
                (rating_id, stored_score), created = cursor.fetchone(), False
            else:
                rating_id, stored_score = inserted[0], score
        if stored_score != score:
            raise RatingConflict(f"this image was already rated {stored_score}; a rating cannot be changed")
        cursor.execute(SESSION_PROGRESS, [session_id])
        total, done = cursor.fetchone()
        if not finished and done == total:
            cursor.execute(FINISH_SESSION, [connection.ops.adapt_datetimefield_value(timezone.now()), session_id])
            finished = True
    return RatingReceipt(rating_id, trial_token, score, created, done, total, finished)


def submit_rating(rater, trial_token, score, response_ms=None):
    """Store one rating in one transaction; returns (rating, created). See ``rate_trial``."""
    receipt = rate_trial(rater.token, trial_token, score, response_ms)
    return Rating.objects.get(pk=receipt.rating_id), receipt.created


def mark_finished(session):
    """Stamp the session finished once every trial has its rating."""
    if not session.finished and not session.trials.filter(rating__isnull=True).exists():
        session.finished = timezone.now()
        session.save(update_fields=["finished"])


def session_state(session):
    """What the rating page needs, and nothing that names a method, dataset or image."""
    trials = session.trials.order_by("position").values_list(
        "token", "position", "kind", "stimulus__output__width", "stimulus__output__height",
        "stimulus__calibration_score", "rating__id",  # plain rows: no model objects for a page load
    )
    trials = list(trials)
    unrated = [t for t in trials if t[6] is None]
    return {
        "total": len(trials),
        "done": len(trials) - len(unrated),
        "finished": session.finished is not None,
        "trials": [
            {
                "token": token,
                "position": position,
                "width": width,
                "height": height,
                # Calibration trials say which score they show; "repeat" stays hidden from the rater.
                "calibration_score": calibration_score if kind == Trial.Kind.CALIBRATION else None,
            }
            for token, position, kind, width, height, calibration_score, _ in unrated
        ],
    }


# --------------------------------------------------------------------------- researchers


def visible_studies(user):
    """Studies a researcher may see: all for a superuser, else those they own or are listed on."""
    studies = Study.objects.all()
    if not user.is_superuser:
        studies = studies.filter(Q(owner=user) | Q(researchers=user)).distinct()
    return studies


def can_view(user, study):
    return user.is_authenticated and visible_studies(user).filter(pk=study.pk).exists()


def study_progress(study, now=None):
    """Dashboard figures: per-stimulus ratings against the target, sessions, active raters."""
    now = now or timezone.now()
    rated = Count("trials__rating", filter=Q(trials__kind=Trial.Kind.TRIAL))
    stimuli = (
        study.stimuli.filter(is_calibration=False)
        .select_related("output__method", "output__image")
        .annotate(ratings=rated)
        .order_by("output__image__dataset", "output__image__name", "output__method__name")
    )
    counts = assigned_counts(study, now=now)
    rows = [
        {
            "stimulus": s,
            "method": s.output.method.name,
            "image": str(s.output.image),
            "ratings": s.ratings,
            "assigned": counts.get(s.pk, 0),
            "percent": min(100, round(100 * s.ratings / study.ratings_per_stimulus)),
        }
        for s in stimuli
    ]
    sessions = study.sessions.annotate(last_rating=Max("trials__rating__created"))
    active = sessions.filter(finished__isnull=True).filter(
        Q(last_rating__gte=now - ACTIVE_WINDOW) | Q(started__gte=now - ACTIVE_WINDOW)
    )
    total = sum(r["ratings"] for r in rows)
    return {
        "rows": rows,
        "target": study.ratings_per_stimulus,
        "ratings": total,
        "ratings_needed": study.ratings_per_stimulus * len(rows),
        "complete_stimuli": sum(r["ratings"] >= study.ratings_per_stimulus for r in rows),
        "raters": study.raters.count(),
        "sessions_finished": sessions.filter(finished__isnull=False).count(),
        "active_raters": active.values("rater").distinct().count(),
    }


RATING_COLUMNS = ("dataset", "rater", "image", "method", "score", "kind", "expected_score", "session", "trial",
                  "repetition", "response_ms", "timestamp")  # the long table mos_study.analysis reads


RATING_CHUNK_SIZE = 2000  # ratings per database round trip when streaming
RATING_ROW_FIELDS = ("pk", "trial__stimulus__output__image__dataset", "trial__session__rater__participant_id",
                     "trial__session__rater_id", "trial__stimulus__output__image__name",
                     "trial__stimulus__output__method__name", "score", "trial__kind",
                     "trial__stimulus__calibration_score", "trial__session_id", "trial__position", "response_ms",
                     "created")


def rating_records(study, chunk_size=RATING_CHUNK_SIZE):
    """The rows of ``rating_rows`` plus each rating's ``rating_id``, read ``chunk_size`` ratings at a time as plain
    tuples (no model instances: 3-4x less CPU per row), so a large study streams in bounded memory."""
    ratings = (Rating.objects.filter(trial__session__study=study).order_by("trial__session", "trial__position")
               .values_list(*RATING_ROW_FIELDS))
    for (pk, dataset, participant_id, rater_id, image, method, score, kind, calibration_score, session, position,
         response_ms, created) in ratings.iterator(chunk_size=chunk_size):
        yield {
            "rating_id": pk,
            "dataset": dataset,
            "rater": participant_id or f"rater-{rater_id}",
            "image": image,
            "method": method,
            "score": score,
            "kind": kind,
            "expected_score": calibration_score or "",
            "session": session,
            "trial": position,
            "repetition": 1 if kind == Trial.Kind.REPEAT else 0,
            "response_ms": "" if response_ms is None else response_ms,
            "timestamp": created.isoformat(),
        }


def rating_rows(study):
    """One dict per stored rating, in the columns of ``mos_study.analysis.ratings`` (``RATING_COLUMNS``)."""
    for record in rating_records(study):
        del record["rating_id"]
        yield record


def ratings_frame(study):
    """The study's ratings as the canonical DataFrame of ``mos_study.analysis`` (calibration rows included)."""
    import pandas as pd

    from ..analysis import prepare_ratings

    frame = pd.DataFrame(list(rating_rows(study)), columns=RATING_COLUMNS).astype(str)
    return prepare_ratings(frame, source=f"study {study.name}")


def study_results(study, options=None):
    """MOS, confidence intervals, screening and significance of the study's ratings so far.

    Where screening rejects every rater (e.g. a pilot with few raters), the results keep them, and say so through
    ``results.options.keep_screened``.
    """
    from ..analysis import AnalysisOptions, RatingsError, build_results

    if not Rating.objects.filter(trial__session__study=study).exclude(trial__kind=Trial.Kind.CALIBRATION).exists():
        raise StudyError("no ratings yet: results appear once raters have rated images")
    ratings = ratings_frame(study)
    options = options or AnalysisOptions()
    try:
        return build_results(ratings, options)
    except RatingsError:
        if options.keep_screened:
            raise
        return build_results(ratings, replace(options, keep_screened=True))

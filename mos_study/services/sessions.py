"""A rater's session: balanced assignment of stimuli, the order of trials, starting and resuming a session, and
the lease by which an unfinished session holds its unrated trials.

``start_session`` locks the study row while it builds a session, so that concurrent raters stay balanced: each
session takes the stimuli with the fewest ratings assigned so far, in a random order (fixed by the session's seed)
in which no test image follows itself. ``session_state`` is what the rating page reads.

Leases: a new session holds its trials for ``START_LEASE`` (at most the study's ``lease_minutes``); each rating and
each heartbeat of the open page extends the lease to ``lease_minutes`` from then. Once a lease has run out the
session's unrated trials stop counting as under way (``assigned_counts``), so that later raters fill their places;
a rater who comes back still finishes the session (a stimulus may then get a rating more than its target).
``availability`` says, before the consent form, whether a new rater can start and, for a study full only because of
live leases, in how many minutes to try again.

Counters: each stimulus's ``assigned`` holds its test trials rated or held by a session (``holds_trials``), kept in
the transactions that change them. An ACR session start reads only what it can take (``start_candidates``): the
lowest counters from an index on (study, assigned), and of the tier of equal counts it fills from (often most of the
study) a uniform random sample, drawn by probing the index at random keys; a few hundred rows whatever the study's
size, chosen from as if the whole study had been read (fewest first, ties at random, spread over images).
A session start first ends the holds of sessions whose lease ran out (``release_expired``, under the study lock);
a rating or heartbeat of a rater who comes back takes them again (``take_back``). ``assigned_counts`` subtracts the
holds run out since, so it equals the count of trials ``held`` now, exactly (``trial_counts``, the reference).
"""

import math
import random
import secrets
from collections import Counter, defaultdict
from itertools import groupby
from datetime import timedelta
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import Output, Rater, Rating, RatingSession, Stimulus, Study, Trial, new_token
from .errors import StudyError, StudyFull, StudyNotOpen

SESSION_TIMEOUT = timedelta(hours=2)  # sessions from before leases (no lease_until) hold their trials this long
START_LEASE = timedelta(minutes=10)  # a consent that never rates (nor keeps its page open) holds trials this long
ABANDON_IDLE = timedelta(minutes=10)  # "release abandoned sessions": no rating nor heartbeat for this long
PARTICIPANT_PARAMS = ("PROLIFIC_PID", "pid")  # URL parameters that carry a panel's participant id
PANEL_PARAMS = {"panel_study_id": "STUDY_ID", "panel_session_id": "SESSION_ID"}  # Prolific's other URL parameters


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
    free their place so that later raters fill it. Read from the counters (one row per stimulus), less the trials
    of sessions whose lease ran out since the last session start: equal to ``trial_counts(study, held(now))``.
    """
    now = now or timezone.now()
    counts = dict(test_stimuli(study).values_list("pk", "assigned"))
    return subtract(counts, unrated_of_holding(study, expired_since=now))


def given_counts(study):
    """Trials of each test stimulus that are (or will surely be) rated: the counters less the unrated trials of
    unfinished sessions that hold theirs (live leases); equal to ``trial_counts(study, given())``."""
    counts = dict(test_stimuli(study).values_list("pk", "assigned"))
    return subtract(counts, unrated_of_holding(study))


def test_stimuli(study):
    return Stimulus.objects.filter(study=study, is_calibration=False, is_gold=False)


def subtract(counts, less):
    for pk, n in less:
        if pk in counts:
            counts[pk] -= n
    return counts


# The counters' statements, in SQL shared by SQLite and PostgreSQL (UPDATE ... FROM, RETURNING). Table names follow
# the models. A session "holds" its unrated test trials while unfinished with holds_trials set.
SESSIONS = RatingSession._meta.db_table
UNRATED_TEST_TRIALS = f"""
    SELECT t.stimulus_id, count(*) AS n FROM {Trial._meta.db_table} t
    LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id
    WHERE t.kind = 'trial' AND r.id IS NULL AND t.session_id IN ({{sessions}}) GROUP BY t.stimulus_id"""
HOLDS = "study_id = %s AND holds_trials AND finished IS NULL"
HOLDING = f"SELECT id FROM {SESSIONS} WHERE {HOLDS}"
RUN_OUT = " AND (lease_until < %s OR (lease_until IS NULL AND started < %s))"  # the negation of a live lease
ADD_TO_ASSIGNED = f"""
    UPDATE {Stimulus._meta.db_table} SET assigned = assigned + {{sign}} d.n FROM ({UNRATED_TEST_TRIALS}) d
    WHERE {Stimulus._meta.db_table}.id = d.stimulus_id"""
ONE_MORE = f"UPDATE {Stimulus._meta.db_table} SET assigned = assigned + 1 WHERE id IN ({{stimuli}})"
RECOUNT = f"""
    UPDATE {Stimulus._meta.db_table} SET assigned = (
        SELECT count(*) FROM {Trial._meta.db_table} t JOIN {SESSIONS} s ON s.id = t.session_id
        LEFT JOIN {Rating._meta.db_table} r ON r.trial_id = t.id
        WHERE t.stimulus_id = {Stimulus._meta.db_table}.id AND t.kind = 'trial'
          AND (r.id IS NOT NULL OR s.finished IS NOT NULL OR s.holds_trials))
    WHERE study_id = %s"""


def placeholders(values):
    return ", ".join(["%s"] * len(values))


def value_rows(values):
    """A VALUES list of one-column rows (its column is ``column1`` in PostgreSQL and SQLite alike)."""
    return ", ".join(["(%s)"] * len(values))


def unrated_of_holding(study, expired_since=None):
    """(stimulus pk, n) of the unrated test trials of the study's sessions that hold theirs; with ``expired_since``
    only those whose lease had run out by then (few: a session start releases them)."""
    sql, params = HOLDING, [study.pk]
    if expired_since is not None:
        sql, params = sql + RUN_OUT, [*params, *run_out_params(expired_since)]
    with connection.cursor() as cursor:
        cursor.execute(UNRATED_TEST_TRIALS.format(sessions=sql), params)
        return cursor.fetchall()


def run_out_params(now):
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(now), adapt(now - SESSION_TIMEOUT)]


def release_expired(study, now):
    """Under the study lock: the sessions whose lease ran out by ``now`` stop holding their unrated trials, which
    leave their stimuli's counters. Returns how many sessions. Their rows are locked first, so that a rating of
    one of them (which locks its session) comes before or after, never between."""
    with connection.cursor() as cursor:
        # The conditions stay in the UPDATE's own WHERE: PostgreSQL checks them again on a row a rating changed
        # meanwhile (an extended lease is then skipped), which it would not do inside a subquery.
        cursor.execute(
            f"UPDATE {SESSIONS} SET holds_trials = %s WHERE {HOLDS}{RUN_OUT} RETURNING id",
            [False, study.pk, *run_out_params(now)],
        )
        ended = [row[0] for row in cursor.fetchall()]
        if ended:
            cursor.execute(ADD_TO_ASSIGNED.format(sign="-", sessions=placeholders(ended)), ended)
    return len(ended)


def take_back(session_id, study_id):
    """A session whose holds were released and whose rater came back (a rating or heartbeat extended its lease)
    holds its unrated trials again. Called with the session's row locked; takes the study lock (session, then
    study: the order of the rating path), so that counters change under the lock as at a session start."""
    lock(Study, study_id, "status")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SESSIONS} SET holds_trials = %s WHERE id = %s AND NOT holds_trials AND finished IS NULL "
            "RETURNING id",
            [True, session_id],
        )
        if cursor.fetchone() is not None:
            cursor.execute(ADD_TO_ASSIGNED.format(sign="+", sessions="%s"), [session_id])


TRIAL_COLUMNS = "session_id, position, stimulus_id, kind, token, left_is_a"
INSERT_TRIALS = f"INSERT INTO {Trial._meta.db_table} ({TRIAL_COLUMNS}) VALUES {{rows}}"
# PostgreSQL: the columns as six arrays, six parameters (the client spends about a millisecond on 600 placeholders).
INSERT_TRIALS_PG = f"""INSERT INTO {Trial._meta.db_table} ({TRIAL_COLUMNS})
    SELECT * FROM unnest(%s::bigint[], %s::integer[], %s::bigint[], %s::text[], %s::text[], %s::boolean[])"""


def insert_trials(session_pk, plan):
    """The session's ACR trials in one statement (the ORM's bulk_create of a hundred objects costs more than it)."""
    if not plan:
        return
    rows = [(session_pk, i, s.pk, kind, new_token(), True) for i, (s, kind) in enumerate(plan)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(INSERT_TRIALS_PG, [list(column) for column in zip(*rows, strict=True)])
        else:
            values = [value for row in rows for value in row]
            cursor.execute(INSERT_TRIALS.format(rows=", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))), values)


def count_assigned(stimulus_pks):
    """One more test trial assigned to each of these stimuli (a new session's)."""
    if stimulus_pks:
        with connection.cursor() as cursor:
            cursor.execute(ONE_MORE.format(stimuli=placeholders(stimulus_pks)), list(stimulus_pks))


def recount_assigned(study):
    """Count the study's counters again from its trials (after rows were deleted, e.g. test raters)."""
    with transaction.atomic():
        lock_study(study)
        with connection.cursor() as cursor:
            cursor.execute(RECOUNT, [study.pk])


def held(now):
    """Trials given or under way: rated, of a finished session, or of a session whose lease is live."""
    return (
        Q(rating__isnull=False)
        | Q(session__finished__isnull=False)
        | Q(session__lease_until__gte=now)
        | Q(session__lease_until__isnull=True, session__started__gte=now - SESSION_TIMEOUT)
    )


def given(now=None):
    """Trials that are (or will surely be) rated: leases left out."""
    return Q(rating__isnull=False) | Q(session__finished__isnull=False)


def trial_counts(study, condition):
    counts = dict.fromkeys(study.stimuli.filter(is_calibration=False, is_gold=False).values_list("pk", flat=True), 0)
    live = Trial.objects.filter(session__study=study, kind=Trial.Kind.TRIAL).filter(condition)
    for row in live.values("stimulus").annotate(n=Count("pk")):
        counts[row["stimulus"]] = row["n"]
    if study.protocol == Study.Protocol.PAIRWISE:  # a pair counts for both its stimuli; a choice holds it too
        live = Trial.objects.filter(session__study=study, kind=Trial.Kind.PAIR)
        live = live.filter(condition | Q(comparison__isnull=False))
        for side in ("stimulus", "stimulus_b"):
            for row in live.values(side).annotate(n=Count("pk")):
                if row[side] in counts:
                    counts[row[side]] += row["n"]
    return counts


def pair_counts(study, now):
    """Comparisons each test stimulus of a pairwise study has or is still expected to take part in (both sides of a
    test pair count; pairwise studies are balanced on these, not on the ACR counters)."""
    return trial_counts(study, held(now))


def live_sessions(study, now):
    """Unfinished sessions whose lease is live (the raters under way)."""
    return study.sessions.filter(finished__isnull=True).filter(
        Q(lease_until__gte=now) | Q(lease_until__isnull=True, started__gte=now - SESSION_TIMEOUT)
    )


class Candidate(NamedTuple):
    """What planning a session needs of a stimulus: one plain row each, not a model object (studies are large)."""

    pk: int
    image_id: int
    is_calibration: bool
    is_gold: bool
    calibration_score: int | None
    assigned: int


CANDIDATE_COLUMNS = "s.id, o.image_id, s.is_calibration, s.is_gold, s.calibration_score, s.assigned"
STIMULI = Stimulus._meta.db_table
WITH_IMAGES = f"SELECT {CANDIDATE_COLUMNS} FROM {STIMULI} s JOIN {Output._meta.db_table} o ON o.id = s.output_id"
CANDIDATES = f"{WITH_IMAGES} WHERE s.study_id = %s ORDER BY s.id"
# A start reads the test stimuli through the partial index on (study, assigned, id) of the test stimuli, the
# calibration and gold stimuli ("anchors") through their own (models.Stimulus.Meta.indexes).
TEST_ROWS = "study_id = %s AND NOT is_calibration AND NOT is_gold"
LOWEST = f"SELECT id, assigned FROM {STIMULI} WHERE {TEST_ROWS} ORDER BY assigned, id LIMIT %s"
TIER_END = f"SELECT max(id) FROM {STIMULI} WHERE {TEST_ROWS} AND assigned = %s"
# Which of some keys are test stimuli of the study at a count: one primary-key lookup each, as a subquery per key
# (planners would rather scan the whole tier for ``id IN (...)``).
IN_TIER = f"""SELECT v.column1 FROM (VALUES {{rows}}) v WHERE (SELECT s.assigned FROM {STIMULI} s
    WHERE s.id = v.column1 AND s.study_id = %s AND NOT s.is_calibration AND NOT s.is_gold) = %s"""
TIER = f"SELECT id FROM {STIMULI} WHERE {TEST_ROWS} AND assigned = %s ORDER BY id"
ANCHORS = f"{WITH_IMAGES} WHERE s.study_id = %s AND (s.is_calibration OR s.is_gold)"
ANCHORS_AND_UP_TO = f"""{ANCHORS} UNION ALL {WITH_IMAGES}
    WHERE s.study_id = %s AND NOT s.is_calibration AND NOT s.is_gold AND s.assigned <= %s"""
# The calibration and gold stimuli, and a few test stimuli given as (key, count) rows: their images one primary-key
# lookup each (a join would scan the study's outputs).
ANCHORS_AND_COUNTED = f"""{ANCHORS} UNION ALL SELECT v.column1, (SELECT o.image_id FROM {STIMULI} s
    JOIN {Output._meta.db_table} o ON o.id = s.output_id WHERE s.id = v.column1), FALSE, FALSE, NULL, v.column2
    FROM (VALUES {{rows}}) v"""
LOOK_AHEAD = 4  # a start reads the lowest LOOK_AHEAD * k counters: the whole tier it takes from, unless large
PROBE_COST = 3  # a random probe of the index costs about as much as reading this many of its rows in a row


def sample_size(need):
    """How many of a tier's stimuli to draw so that they likely show ``need`` images (else 4x as many are drawn)."""
    return need + need // 4 + 8


def candidates(study):
    """The study's stimuli as ``Candidate`` rows, in primary-key order (a seed's plan depends on it); plain SQL, as
    a study may hold tens of thousands (the ORM's rows cost several times the database's work)."""
    return fetch_candidates(CANDIDATES, [study.pk])


def fetch_candidates(sql, params):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(map(Candidate._make, cursor.fetchall()))


def start_candidates(study, k, rng):
    """The candidates a session of ``k`` test trials is planned from, in primary-key order, in a few rows however
    large the study: the calibration and gold stimuli; the test stimuli below the k-th lowest count (fewer than k,
    all taken); of the tier at that count (often most of the study), a uniform random sample with at least as many
    images as the session takes from it, so that ``choose_stimuli`` spreads its choice over images as over the
    whole tier (the whole tier where it is small, or where no such sample turns up). ``k=None``: every stimulus.

    Reads the lowest counters from the index (a few times k rows), a large tier by random probes of its key range
    (``probe_tier``) or, where it is sparse in that range, by its keys; then the images of the stimuli drawn."""
    if not k:
        return candidates(study)
    with connection.cursor() as cursor:
        cursor.execute(LOWEST, [study.pk, LOOK_AHEAD * k])
        lowest = cursor.fetchall()  # (pk, count), fewest first
    if len(lowest) < k:  # a session takes every test stimulus
        return candidates(study)
    level = lowest[k - 1][1]
    below = [(pk, n) for pk, n in lowest if n < level]
    need = k - len(below)
    tier = TierReader(study, level, [pk for pk, n in lowest if n == level])
    if len(lowest) < LOOK_AHEAD * k or lowest[-1][1] > level:  # the tier ends among the counters read
        tier.whole = True
    size = sample_size(need)
    for _attempt in range(3):
        drawn, complete = tier.sample(size, rng)
        rows = candidates_counted(study, below + [(pk, level) for pk in drawn])
        drawn = set(drawn)
        if complete or len({s.image_id for s in rows if s.pk in drawn}) >= need:
            return rows
        size *= 4  # too few images in the sample: a larger one
    return sorted(fetch_candidates(ANCHORS_AND_UP_TO, [study.pk, study.pk, level]))


class TierReader:
    """Uniform random samples of the test stimuli at count ``level``, of which ``seen`` are the lowest keys (all of
    them where ``whole``)."""

    def __init__(self, study, level, seen):
        self.study, self.level, self.seen, self.whole = study, level, seen, False
        self.span = self.density = None

    def sample(self, size, rng):
        """(``size`` keys drawn at random, whether they are the whole tier)."""
        if not self.whole and self.span is None:
            self.measure(size)
        if self.whole:
            return (self.seen, True) if size >= len(self.seen) else (rng.sample(self.seen, size), False)
        return probe_tier(self.study, self.level, self.seen[0], self.span, self.density, size, rng), False

    def measure(self, size):
        """The tier's key range, and the share of it in the tier as far as seen; where the tier is so sparse in its
        range that probing costs more than reading its keys, read them."""
        with connection.cursor() as cursor:
            cursor.execute(TIER_END, [self.study.pk, self.level])
            self.span = cursor.fetchone()[0] - self.seen[0] + 1
            self.density = len(self.seen) / (self.seen[-1] - self.seen[0] + 1)
            if self.density * self.span < PROBE_COST * size / self.density:  # tier size < cost of the probes
                cursor.execute(TIER, [self.study.pk, self.level])
                self.seen, self.whole = [row[0] for row in cursor.fetchall()], True


def probe_tier(study, level, low, span, density, size, rng):
    """``size`` test stimuli drawn uniformly at random from those at count ``level``, whose keys lie in
    ``low .. low + span - 1`` (``density`` of them in the tier): keys drawn at random from that range, kept where
    they are in the tier, in the order drawn. Fewer where half the range was tried without finding them."""
    tried, drawn = set(), []
    with connection.cursor() as cursor:
        while len(drawn) < size and len(tried) < span // 2:
            batch = []
            for _ in range(min(span // 2 - len(tried), math.ceil(1.25 * (size - len(drawn)) / density) + 8)):
                key = low + rng.randrange(span)
                if key not in tried:
                    tried.add(key)
                    batch.append(key)
            if batch:
                cursor.execute(IN_TIER.format(rows=value_rows(batch)), [*batch, study.pk, level])
                hits = {row[0] for row in cursor.fetchall()}
                drawn += [key for key in batch if key in hits]
    return drawn[:size]


def candidates_counted(study, counted):
    """``Candidate`` rows of the study's calibration and gold stimuli and of these (test stimulus key, count)
    pairs, in key order: one statement."""
    if not counted:
        return fetch_candidates(ANCHORS, [study.pk])
    params = [study.pk, *(value for pair in counted for value in pair)]
    return sorted(fetch_candidates(ANCHORS_AND_COUNTED.format(rows=", ".join(["(%s, %s)"] * len(counted))), params))


def choose_stimuli(stimuli, counts, k, rng):
    """The ``k`` stimuli with the fewest assigned ratings; ties broken at random, spread over test images.

    Tiers of one count, fewest first: a tier that fits is taken whole; of the one that does not, ``spread_sample``.
    """
    if k <= 0:
        return []
    chosen = []
    count_of = counts.__getitem__
    for _count, tier in groupby(sorted(stimuli, key=lambda s: count_of(s.pk)), key=lambda s: count_of(s.pk)):
        tier = list(tier)
        need = k - len(chosen)
        chosen += tier if len(tier) <= need else spread_sample(tier, need, rng)
        if len(chosen) >= k:
            break
    return chosen


def spread_sample(tier, n, rng):
    """``n`` of one count's stimuli at random, spread over images: every image of the tier gives one (images drawn
    at random) before any gives a second, and so on. Costs one pass over the tier and O(n) draws."""
    groups = defaultdict(list)
    for stimulus in tier:
        groups[stimulus.image_id].append(stimulus)
    taken = []
    while len(taken) < n and groups:
        for image in rng.sample(list(groups), min(n - len(taken), len(groups))):
            group = groups[image]
            taken.append(group.pop(rng.randrange(len(group))))
            if not group:
                del groups[image]
    return taken


def arrangeable(counts, first_not=None):
    """Whether items with these per-image counts can be lined up with no image twice in a row."""
    n = sum(counts.values())
    biggest = max(counts.values(), default=0)
    if biggest > (n + 1) // 2:
        return False
    # With n odd, an image holding (n + 1) / 2 items must take the first place.
    return not (n % 2 == 1 and first_not is not None and counts.get(first_not, 0) == (n + 1) // 2)


def arrangeable_after_taking(k, n, top, holders, second):
    """``arrangeable`` of counts that sum to ``n`` (the largest ``top``, held by ``holders`` images, the next
    ``second``) once one item is taken from an image holding ``k``, with that image not first: in O(1)."""
    rest = n - 1
    others = top if (k < top or holders > 1) else second
    biggest = max(k - 1, others)
    if biggest > rest // 2 + rest % 2:  # (rest + 1) // 2
        return False
    return not (rest % 2 == 1 and k - 1 == (rest + 1) // 2)


def order_apart(items, image_of, rng, last=None):
    """A random order of ``items`` in which no image follows itself (nor ``last``), wherever one exists.

    Each step draws the next image among those that leave an arrangement, weighted by their items left; whether an
    image does depends only on its count, so it is worked out once per distinct count (``sizes``: how many images
    hold each count), not per image."""
    groups = defaultdict(list)
    for item in items:
        groups[image_of(item)].append(item)
    for group in groups.values():
        rng.shuffle(group)
    sizes = Counter(len(group) for group in groups.values())
    order = []
    n = len(items)
    while groups:
        top = max(sizes)
        holders = sizes[top]
        second = max((size for size in sizes if size < top), default=0) if holders == 1 else top
        allowed = {size: arrangeable_after_taking(size, n, top, holders, second) for size in sizes}
        candidates = [image for image, group in groups.items() if image != last and allowed[len(group)]]
        if not candidates:
            # No arrangement exists (too many items of one image): spend the biggest group first, so that as few
            # neighbours as possible share an image.
            others = [image for image in groups if image != last] or list(groups)
            biggest = max(len(groups[image]) for image in others)
            candidates = [image for image in others if len(groups[image]) == biggest]
        image = rng.choices(candidates, weights=[len(groups[c]) for c in candidates])[0]
        group = groups[image]
        sizes[len(group)] -= 1
        if not sizes[len(group)]:
            del sizes[len(group)]
        order.append(group.pop())
        n -= 1
        if group:
            sizes[len(group)] += 1
        else:
            del groups[image]
        last = image
    return order


def image_of(pair):
    """The test image of a (stimulus, kind) pair."""
    return pair[0].image_id


def choose_gold(gold, n, rng):
    """``n`` gold stimuli at random, as many expected low (NN) as high (HR) where the pool allows."""
    if not n:
        return []
    low = [s for s in gold if s.calibration_score == 1]
    high = [s for s in gold if s.calibration_score != 1]
    rng.shuffle(low)
    rng.shuffle(high)
    mixed = [s for pair in zip(low, high) for s in pair] + low[len(high) :] + high[len(low) :]
    return mixed[:n]


def split_stimuli(stimuli):
    """(calibration, test, gold) stimuli of a study."""
    calibration = [s for s in stimuli if s.is_calibration]
    gold = [s for s in stimuli if s.is_gold and not s.is_calibration]
    test = [s for s in stimuli if not (s.is_calibration or s.is_gold)]
    return calibration, test, gold


def session_size(study):
    """The test trials of an ACR session (None: one per test stimulus)."""
    return study.images_per_session or None


def plan_session(study, calibration, stimuli, counts, rng, gold=()):
    """The session's trials as (stimulus, kind): calibration first, then trials, repeats and hidden gold trials in
    random order."""
    first = order_apart([(s, Trial.Kind.CALIBRATION) for s in calibration], image_of, rng)
    k = study.images_per_session or len(stimuli)
    chosen = choose_stimuli(stimuli, counts, k, rng)
    repeats = rng.sample(chosen, min(study.repeated_trials, len(chosen)))
    rest = [(s, Trial.Kind.TRIAL) for s in chosen] + [(s, Trial.Kind.REPEAT) for s in repeats]
    rest += [(s, Trial.Kind.GOLD) for s in choose_gold(gold, study.gold_trials, rng)]
    last = image_of(first[-1]) if first else None
    return first + order_apart(rest, image_of, rng, last=last)


def closed_by_schedule(study, now=None):
    """Whether the study's scheduled close time (``closes_at``) has come: it then takes no new raters."""
    return study.closes_at is not None and (now or timezone.now()) >= study.closes_at


def check_open(study, now=None):
    """Raise ``StudyNotOpen`` unless a new rater may start: preparing, paused, closed or past ``closes_at``
    (raters in a session still finish: ``rating.takes_ratings``)."""
    if study.status == Study.Status.PREPARING:
        raise StudyNotOpen(_("This study is being prepared: its images are still being made. Please come back later."))
    if study.status == Study.Status.PAUSED:
        raise StudyNotOpen(
            _("This study is paused and takes no new participants at the moment. Please try again later.")
        )
    if study.status == Study.Status.CLOSED or closed_by_schedule(study, now):
        raise StudyNotOpen(_("This study is closed: it takes no new participants. Thank you for your interest."))
    if study.status != Study.Status.OPEN:
        raise StudyNotOpen(_("This study is not open for ratings at the moment."))


def surely_not_full(study):
    """Whether a test stimulus's counter is below the target: then so is its count of held trials (never above the
    counter), and the study is not full. One aggregate in the database instead of a row per stimulus."""
    lowest = test_stimuli(study).aggregate(lowest=Min("assigned"))["lowest"]
    return lowest is not None and lowest < study.ratings_per_stimulus


def study_is_full(study, counts):
    return bool(counts) and min(counts.values()) >= study.ratings_per_stimulus


def check_capacity(study, counts, now):
    """Raise ``StudyFull`` where every stimulus has its ratings given or under way; where live leases make it full,
    the error says when the first of them runs out (``retry_after`` seconds)."""
    if not study_is_full(study, counts):
        return
    pairwise = study.protocol == Study.Protocol.PAIRWISE
    if study_is_full(study, trial_counts(study, given()) if pairwise else given_counts(study)):
        raise StudyFull(_("This study has collected all the ratings it needs. Thank you for your interest."))
    first = live_sessions(study, now).aggregate(first=Min("lease_until"))["first"]
    seconds = max(60, (first - now).total_seconds()) if first else START_LEASE.total_seconds()
    minutes = math.ceil(seconds / 60)
    message = ngettext(
        "This study is full at the moment: other participants are rating its images. "
        "Please try again in %(minutes)d minute.",
        "This study is full at the moment: other participants are rating its images. "
        "Please try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    raise StudyFull(message, retry_after=int(minutes * 60))


def availability(study, now=None):
    """None where a new rater can start ``study`` now, else the ``StudyNotOpen`` that says why (shown before the
    consent form): preparing, paused, closed, full, or full for N more minutes."""
    now = now or timezone.now()
    try:
        check_open(study, now)
        if study.protocol != Study.Protocol.PAIRWISE and surely_not_full(study):
            return None
        pairwise = study.protocol == Study.Protocol.PAIRWISE
        check_capacity(study, pair_counts(study, now) if pairwise else assigned_counts(study, now=now), now)
    except StudyNotOpen as error:
        return error
    return None


def clean_participant_id(value):
    value = (value or "").strip()
    if len(value) > 200:
        raise StudyError(_("the participant id is too long (200 characters at most)"))
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise StudyError(_("the participant id has a NUL byte"))
    return value


def find_rater(study, participant_id):
    """The rater who already started ``study`` under this panel participant id, or None."""
    participant_id = clean_participant_id(participant_id)
    if not participant_id:
        return None
    return Rater.objects.filter(study=study, participant_id=participant_id).first()


def start_session(study, *, participant_id="", user_agent="", seed=None, now=None, panel=None):
    """A new consenting rater with a balanced, randomly ordered session; a known participant id resumes its own.

    ``panel``: the panel's other ids, ``{"panel_study_id": ..., "panel_session_id": ...}`` (Prolific's STUDY_ID and
    SESSION_ID), recorded on the rater.
    """
    participant_id = clean_participant_id(participant_id)
    panel = {key: clean_participant_id((panel or {}).get(key)) for key in PANEL_PARAMS}
    with transaction.atomic():
        study = lock_study(study)
        rater = find_rater(study, participant_id)
        if rater is not None and current_session(rater) is not None:
            return current_session(rater)  # a known participant resumes, even in a paused or closed study
        check_open(study, now)
        stamp = now or timezone.now()
        release_expired(study, stamp)  # the counters now hold exactly the trials held at ``stamp``
        pairwise = study.protocol == Study.Protocol.PAIRWISE
        seed = secrets.randbits(62) if seed is None else seed
        rng = random.Random(seed)
        # An ACR session reads only the stimuli it can take (their lowest count is the study's, for check_capacity).
        chosen_from = candidates(study) if pairwise else start_candidates(study, session_size(study), rng)
        calibration, trial_stimuli, gold = split_stimuli(chosen_from)
        counts = {s.pk: s.assigned for s in trial_stimuli}
        if pairwise:  # both sides of a pair count: services.pairwise_sessions
            counts = pair_counts(study, stamp)
        check_capacity(study, counts, stamp)
        rater = Rater.objects.create(
            study=study,
            participant_id=participant_id,
            consented_at=timezone.now(),
            user_agent=user_agent[:500],
            **panel,
        )
        lease = min(START_LEASE, timedelta(minutes=study.lease_minutes))
        session = RatingSession.objects.create(
            rater=rater, study=study, seed=seed, lease_until=stamp + lease, last_seen=stamp
        )
        if pairwise:
            from .pairwise_sessions import create_pair_trials

            create_pair_trials(study, session, calibration, trial_stimuli, counts, rng, gold)
            return session
        plan = plan_session(study, calibration, trial_stimuli, counts, rng, gold)
        insert_trials(session.pk, plan)
        count_assigned([s.pk for s, kind in plan if kind == Trial.Kind.TRIAL])
    return session


def preview_trials(study, seed=None):
    """A session's trials as ``start_session`` would plan them now, stored nowhere (a researcher's preview): plain
    dicts with a position token, the stimulus token (its image URL), the size and the calibration label."""
    calibration, trial_stimuli, gold = split_stimuli(candidates(study))
    rng = random.Random(secrets.randbits(62) if seed is None else seed)
    plan = plan_session(study, calibration, trial_stimuli, assigned_counts(study), rng, gold)
    shown = Stimulus.objects.filter(pk__in={s.pk for s, _ in plan})
    looks = {pk: rest for pk, *rest in shown.values_list("pk", "token", "output__width", "output__height")}
    return [
        {
            "token": f"p{position}",
            "stimulus": looks[stimulus.pk][0],
            "position": position,
            "width": looks[stimulus.pk][1],
            "height": looks[stimulus.pk][2],
            "calibration_score": stimulus.calibration_score if kind == Trial.Kind.CALIBRATION else None,
        }
        for position, (stimulus, kind) in enumerate(plan)
    ]


def current_session(rater):
    """The rater's latest session (one per rater in the browser flow)."""
    return rater.sessions.order_by("-started", "-pk").first()


def session_of(rater_token):
    """The latest session of the rater with this link token, or None; one query, for the page's state reads."""
    sessions = RatingSession.objects.select_related("study").filter(rater__token=rater_token)
    return sessions.order_by("-started", "-pk").first()


VIEWING_KEYS = {  # what the page may report of its viewing conditions: name -> kind
    "screen_width": float,
    "screen_height": float,
    "window_width": float,
    "window_height": float,
    "device_pixel_ratio": float,
    "zoom_estimate": float,
    "user_agent": str,
    "image_failures": float,
}


def clean_viewing(data):
    """The known keys of a page's viewing report, numbers finite and text short; anything else is dropped."""
    cleaned = {}
    if not isinstance(data, dict):
        return cleaned
    for key, kind in VIEWING_KEYS.items():
        value = data.get(key)
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            cleaned[key] = round(float(value), 3)
        elif kind is str and isinstance(value, str):
            cleaned[key] = value[:500]
    return cleaned


def heartbeat(rater_token, viewing=None, now=None):
    """The open page says its rater is active: extend the lease of the unfinished session to ``lease_minutes``
    from now and record the viewing conditions reported. Returns the session, or None for an unknown link."""
    now = now or timezone.now()
    session = session_of(rater_token)
    if session is None:
        return None
    update = {"last_seen": now}
    if session.finished is None:
        update["lease_until"] = now + timedelta(minutes=session.study.lease_minutes)
    cleaned = clean_viewing(viewing)
    if cleaned:
        update["viewing"] = {**session.viewing, **cleaned}
    with transaction.atomic():
        RatingSession.objects.filter(pk=session.pk).update(**update)  # locks the session's row
        if "lease_until" in update and not RatingSession.objects.filter(pk=session.pk, holds_trials=True).exists():
            take_back(session.pk, session.study_id)  # the rater came back after the lease ran out
    for key, value in update.items():
        setattr(session, key, value)
    return session


def release_abandoned(study, idle=ABANDON_IDLE, now=None):
    """End the leases of the study's unfinished sessions idle for ``idle`` (no rating nor heartbeat), so that their
    unrated trials go to new raters now; returns how many were released. A rater who comes back still finishes."""
    now = now or timezone.now()
    idle_since = now - idle
    abandoned = live_sessions(study, now).filter(
        Q(last_seen__lt=idle_since) | Q(last_seen__isnull=True, started__lt=idle_since)
    )
    ended = now - timedelta(seconds=1)  # a lease is live up to and including lease_until
    with transaction.atomic():
        lock_study(study)
        released = RatingSession.objects.filter(pk__in=list(abandoned.values_list("pk", flat=True)))
        count = released.update(lease_until=ended)
        release_expired(study, now)
    return count


def session_state(session):
    """What the rating page needs, and nothing that names a method, dataset or image."""
    trials = session.trials.order_by("position").values_list(
        "token",
        "position",
        "kind",
        "stimulus__output__width",
        "stimulus__output__height",
        "stimulus__calibration_score",
        "rating__id",  # plain rows: no model objects for a page load
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

"""Session starts at crowd scale: a study of 1 million trials in a scratch PostgreSQL database, starts timed on
gunicorn beside the same run's references.

    python -m perf.session_start [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--trials 1000000]
        [--stimuli 10000] [--images-per-session 100] [--starts 200] [--small-trials 20000] [--json]

Builds the study directly in the database (COPY: stimuli, raters, sessions, trials and ratings; 80 % of the sessions
finished, 15 % under way with half their trials rated, 5 % whose lease ran out and that the first start releases),
beside a small study of --small-trials trials and as many stimuli. Then starts a gunicorn on the scratch database
(``SRMOS_SERVER_TIMING=1``) and times --starts session starts per study, one after another as raters arrive: the
consent POST on the study link (the view reads availability, then ``start_session``), from the client and inside
Django (``Server-Timing``). Printed beside: the same run's PostgreSQL round trip of a primary-key SELECT and of a
committed one-row INSERT (the WAL flush every start waits for, twice), the server's answer to a page with no query
(``/login/``), and the statement the old ``start_session`` ran on every start (counting the study's held trials,
``sessions.trial_counts``) on both studies. The scratch database is dropped at the end. Needs PostgreSQL; Django
runs only in the subprocesses (``manage.py migrate``, gunicorn).
"""

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg

from perf.load_rating import Client, percentile
from perf.load_rating_async import server_timing

REPO = Path(__file__).resolve().parents[1]
GOAL_MS = 20.0
OLD_COUNT = """
    SELECT t.stimulus_id, count(t.id) FROM mos_study_trial t
    JOIN mos_study_ratingsession s ON s.id = t.session_id
    LEFT JOIN mos_study_rating r ON r.trial_id = t.id
    WHERE s.study_id = %(study)s AND t.kind = 'trial'
      AND (r.id IS NOT NULL OR s.finished IS NOT NULL OR s.lease_until >= %(now)s
           OR (s.lease_until IS NULL AND s.started >= %(now)s - interval '2 hours'))
    GROUP BY t.stimulus_id"""  # services.sessions.trial_counts(study, held(now)) as the old start ran it


def scratch_url(admin_url, name):
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def scratch_database(admin_url):
    """A new, empty database (dropped afterwards): its URL."""
    name = f"srmos_perf_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield scratch_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(database_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SRMOS_", "GUNICORN_"))}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY=secrets.token_hex(32),
        SRMOS_SERVER_TIMING="1",
        SRMOS_RATE_LIMITS=json.dumps({"session": {"ip": "off", "token": "off"}, "consent": {"ip": "off"}}),
        OMP_NUM_THREADS="1",
    )
    return env


def migrate(database_url):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=REPO, env=app_env(database_url), check=True
    )


class Loader:
    """Rows into the app's tables by COPY; columns this script does not name get a neutral value where the table
    needs one (NOT NULL without a default: false, 0, '', {}), so that fields added later do not break it."""

    NEUTRAL = {"boolean": False, "integer": 0, "bigint": 0, "smallint": 0, "double precision": 0.0, "jsonb": "{}"}

    def __init__(self, connection):
        self.connection = connection
        self.now = datetime.now(UTC)

    def required(self, table):
        rows = self.connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
            "AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'",
            [table],
        ).fetchall()
        return dict(rows)

    def neutral(self, kind):
        if kind.startswith("timestamp"):
            return self.now
        return self.NEUTRAL.get(kind, "")

    def copy(self, table, columns, rows):
        extra = {c: self.neutral(kind) for c, kind in self.required(table).items() if c not in columns}
        names = [*columns, *extra]
        tail = tuple(extra.values())
        with self.connection.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, *tail))

    def insert(self, table, values):
        """One row with RETURNING id (the few rows above the trials)."""
        extra = {c: self.neutral(kind) for c, kind in self.required(table).items() if c not in values}
        values = {**values, **extra}
        sql = f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))}) RETURNING id"
        return self.connection.execute(sql, list(values.values())).fetchone()[0]

    def ids(self, table, where, params):
        return [row[0] for row in self.connection.execute(f"SELECT id FROM {table} WHERE {where} ORDER BY id", params)]


def build_study(loader, name, n_stimuli, n_trials, per_session, rng):
    """A study of ``n_stimuli`` stimuli (4 methods per image) and ``n_trials`` trials: its id and token."""
    now = loader.now
    study_token = secrets.token_urlsafe(16)
    study = loader.insert(
        "mos_study_study",
        {
            "name": name,
            "token": study_token,
            "status": "open",
            "images_per_session": per_session,
            "ratings_per_stimulus": 100_000,
            "public_title": "Image quality study",
            "lease_minutes": 45,
            "min_view_ms": 0,
            "on_close": "finish",
            "created": now,
        },
    )
    methods = [
        loader.insert("mos_study_method", {"name": f"{name}-m{i}", "kind": "builtin", "created": now}) for i in range(4)
    ]
    images = n_stimuli // len(methods)
    loader.copy(
        "mos_study_testimage",
        ["dataset", "name", "hr_sha256", "width", "height", "channels"],
        ((name, f"img{i:06d}", "0" * 64, 64, 64, 3) for i in range(images)),
    )
    image_ids = loader.ids("mos_study_testimage", "dataset = %s", [name])
    loader.copy(
        "mos_study_output",
        ["method_id", "image_id", "sha256", "file", "weights_sha256", "width", "height", "created"],
        ((m, i, secrets.token_hex(32), "outputs/x.png", "", 64, 64, now) for i in image_ids for m in methods),
    )
    outputs = loader.ids("mos_study_output", "method_id = ANY(%s)", [methods])
    sessions = n_trials // per_session
    per_stimulus = sessions * per_session // len(outputs)
    loader.copy(
        "mos_study_stimulus",
        ["study_id", "output_id", "token", "is_calibration", "is_gold", "assigned"],
        ((study, o, secrets.token_urlsafe(16), False, False, per_stimulus) for o in outputs),
    )
    stimuli = loader.ids("mos_study_stimulus", "study_id = %s", [study])
    loader.copy(
        "mos_study_rater",
        ["study_id", "token", "participant_id", "consented_at", "user_agent", "created"],
        ((study, secrets.token_urlsafe(16), "", now, "perf", now) for _ in range(sessions)),
    )
    raters = loader.ids("mos_study_rater", "study_id = %s", [study])
    states = [session_state(i, sessions, now) for i in range(sessions)]
    loader.copy(
        "mos_study_ratingsession",
        [
            *("rater_id", "study_id", "seed", "completion_code", "screen_out_code", "started", "finished"),
            *("lease_until", "holds_trials"),
        ],
        (
            (r, study, i, secrets.token_hex(5), secrets.token_hex(5), now - timedelta(hours=1), finished, lease, True)
            for i, (r, (finished, lease, _)) in enumerate(zip(raters, states, strict=True))
        ),
    )
    session_ids = loader.ids("mos_study_ratingsession", "study_id = %s", [study])
    order = list(range(len(stimuli)))
    rng.shuffle(order)
    loader.copy(
        "mos_study_trial",
        ["session_id", "position", "stimulus_id", "kind", "token"],
        (
            (s, p, stimuli[order[(i * per_session + p) % len(stimuli)]], "trial", secrets.token_urlsafe(16))
            for i, s in enumerate(session_ids)
            for p in range(per_session)
        ),
    )
    rated = [s for s, (_, _, share) in zip(session_ids, states, strict=True) if share]
    shares = {s: share for s, (_, _, share) in zip(session_ids, states, strict=True) if share}
    rows = loader.connection.execute(
        "SELECT id, session_id, position FROM mos_study_trial WHERE session_id = ANY(%s)", [rated]
    )
    loader.copy(
        "mos_study_rating",
        ["trial_id", "score", "response_ms", "created"],
        ((t, rng.randint(1, 5), 1500, now) for t, s, p in rows if p < shares[s] * per_session),
    )
    loader.connection.execute("ANALYZE")
    return study, study_token


def session_state(i, sessions, now):
    """(finished, lease_until, share of trials rated) of the i-th session: 80 % finished, 15 % under way (half
    rated), 5 % whose lease ran out (a quarter rated; they still hold their trials until a start releases them)."""
    if i < 0.80 * sessions:
        return now - timedelta(minutes=5), now - timedelta(minutes=5), 1.0
    if i < 0.95 * sessions:
        return None, now + timedelta(minutes=40), 0.5
    return None, now - timedelta(minutes=1), 0.25


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(database_url, workers, threads):
    port = free_port()
    env = app_env(database_url)
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), GUNICORN_THREADS=str(threads))
    env["GUNICORN_ACCESSLOG"] = ""
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "docker/gunicorn.conf.py", "config.wsgi"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # every worker up, not just the first
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def time_starts(port, study_token, n, prefix):
    """Client and server timings of ``n`` consent POSTs, one after another (each a new browser)."""
    timings = []
    for i in range(n):
        client = Client("127.0.0.1", port, 30)
        path = f"/s/{study_token}/?{urlencode({'pid': f'{prefix}-{i}'})}"
        status, _, html = client.request("GET", path)
        if status != 200:
            raise RuntimeError(f"{path}: {status}")
        body = urlencode(
            {"consent": "on", "participant_id": f"{prefix}-{i}", "csrfmiddlewaretoken": client.form_token(html)}
        )
        started = time.perf_counter()
        status, headers, _ = client.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        wall = 1000 * (time.perf_counter() - started)
        client.close()
        if status != 302:
            raise RuntimeError(f"consent POST {path}: {status}, expected a redirect to the rating page")
        timings.append({"client": wall, **server_timing(headers)})
    return timings


def time_page(port, n):
    client = Client("127.0.0.1", port, 30)
    walls = []
    for _ in range(n):
        started = time.perf_counter()
        status, _, _ = client.request("GET", "/login/")
        walls.append(1000 * (time.perf_counter() - started))
    client.close()
    return summary_of(walls)


def time_sql(database_url, sql, params, n):
    with psycopg.connect(database_url, autocommit=True) as connection:
        walls = []
        for _ in range(n):
            started = time.perf_counter()
            connection.execute(sql, params).fetchall()
            walls.append(1000 * (time.perf_counter() - started))
    return summary_of(walls)


def time_commit(database_url, n):
    """A one-row INSERT committed, ``n`` times: the database's durable-write floor (the WAL flush) in this run."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE perf_commit (id serial PRIMARY KEY, at timestamptz)")
        walls = []
        for _ in range(n):
            started = time.perf_counter()
            connection.execute("INSERT INTO perf_commit (at) VALUES (now())")
            walls.append(1000 * (time.perf_counter() - started))
    return summary_of(walls)


def summary_of(values):
    return {"median": round(statistics.median(values), 2), "p99": round(percentile(values, 99), 2), "n": len(values)}


def starts_summary(timings):
    out = {part: summary_of([t[part] for t in timings if part in t]) for part in ("client", "app", "db", "lock")}
    out["statements"] = statistics.median(t.get("statements", 0) for t in timings)
    return out


def run(args):
    rng = random.Random(0)
    results = {"trials": args.trials, "small_trials": args.small_trials, "stimuli": args.stimuli}
    with scratch_database(args.postgres) as url:
        migrate(url)
        built = time.monotonic()
        with psycopg.connect(url, autocommit=True) as connection:
            loader = Loader(connection)
            big, big_token = build_study(loader, "big", args.stimuli, args.trials, args.images_per_session, rng)
            small, small_token = build_study(
                loader, "small", args.stimuli, args.small_trials, args.images_per_session, rng
            )
        results["build_seconds"] = round(time.monotonic() - built, 1)
        with gunicorn(url, args.workers, args.threads) as port:
            first = time_starts(port, big_token, 1, "first")[0]  # releases the 5 % of run-out sessions
            results["first_start_ms"] = round(first["client"], 1)
            time_starts(port, small_token, 5, "warm")
            results["big"] = starts_summary(time_starts(port, big_token, args.starts, "big"))
            results["small"] = starts_summary(time_starts(port, small_token, args.starts, "small"))
            results["page_no_query"] = time_page(port, args.starts)
        now = datetime.now(UTC)
        results["pk_select"] = time_sql(url, "SELECT id FROM mos_study_study WHERE id = %s", [big], args.starts)
        results["commit"] = time_commit(url, args.starts)
        results["old_count_big"] = time_sql(url, OLD_COUNT, {"study": big, "now": now}, 5)
        results["old_count_small"] = time_sql(url, OLD_COUNT, {"study": small, "now": now}, 20)
    return results


def print_results(r):
    big, small = r["big"], r["small"]
    print(
        f"study: {r['trials']:,} trials over {r['stimuli']:,} stimuli (built in {r['build_seconds']} s); small "
        f"study: {r['small_trials']:,} trials, as many stimuli; first start (releases run-out sessions) "
        f"{r['first_start_ms']} ms"
    )
    for label, s in ((f"{r['trials']:,} trials", big), (f"{r['small_trials']:,} trials", small)):
        print(
            f"session start at {label}: median {s['client']['median']} ms, p99 {s['client']['p99']} ms "
            f"(consent POST, client); in Django {s['app']['median']} / {s['app']['p99']} ms, of it SQL "
            f"{s['db']['median']} ms ({s['statements']:.0f} statements), row lock {s['lock']['median']} ms"
        )
    print(
        f"same run: primary-key SELECT round trip {r['pk_select']['median']} ms; a one-row INSERT committed "
        f"{r['commit']['median']} ms (p99 {r['commit']['p99']}; a start commits twice: its session, then the "
        f"rater's cookie session); a page with no query "
        f"{r['page_no_query']['median']} ms; the old start's count of held trials alone: "
        f"{r['old_count_big']['median']} ms at {r['trials']:,} trials, {r['old_count_small']['median']} ms at "
        f"{r['small_trials']:,}"
    )
    print(
        f"-> start at {r['trials']:,} / at {r['small_trials']:,} trials: "
        f"{big['client']['median'] / small['client']['median']:.2f}x (independent of the study's size: 1.0); "
        f"start / old count at {r['trials']:,}: {big['client']['median'] / r['old_count_big']['median']:.3f}; "
        f"start / primary-key round trip: {big['client']['median'] / r['pk_select']['median']:.0f}x; "
        f"goal: under {GOAL_MS:.0f} ms at {r['trials']:,} trials: "
        f"{'met' if big['client']['median'] < GOAL_MS else 'NOT met'} (median), "
        f"{'met' if big['client']['p99'] < GOAL_MS else 'not met'} (p99)"
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SRMOS_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server's admin URL (a scratch database is made and dropped there)",
    )
    parser.add_argument("--trials", type=int, default=1_000_000)
    parser.add_argument("--small-trials", type=int, default=20_000)
    parser.add_argument("--stimuli", type=int, default=10_000, help="stimuli per study (4 methods per image)")
    parser.add_argument("--images-per-session", type=int, default=100)
    parser.add_argument("--starts", type=int, default=200, help="session starts timed per study")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.starts <= 10_000 or args.trials > 20_000_000 or args.stimuli < 8:
        parser.error("--starts 1-10000, --trials at most 20 million, --stimuli at least 8")
    return args


def main(argv=None):
    args = parse_args(argv)
    results = run(args)
    print(json.dumps(results) if args.json else "", end="\n" if args.json else "")
    if not args.json:
        print_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

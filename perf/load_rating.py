"""Load test of the rating path: N simulated raters complete sessions against a running srmos server.

    python -m perf.load_rating --study-token TOKEN --raters 100 [--base-url http://127.0.0.1:8000]
        [--username U --password P --study-id PK] [--time-limit 120] [--login-flood 8] [--json]

Each rater opens the study link with its own participant id, consents, reads its session state, then all raters
(started together) rate every trial, one rating per --interval-ms each (0: as fast as the server answers),
retrying a failed POST as the rating page does.
Prints ratings/s, median and p99 latency of the rating request, the CPU per rating of the server and this client over
the rating phase (not PostgreSQL's: summing its processes on a shared machine counted other users' backends, and
backends that ended during the run made the figure negative), and the ratings stored against those acknowledged:
counted by the server per session (``/r/<token>/state/``, read once every rater has finished), and with a researcher
login also from the ratings export, where lost and duplicated ratings are matched one by one. Bounded in raters,
ratings and time; loopback only.
With ``--login-flood N`` it runs twice, each time with new raters: without, then with N threads sending wrong
passwords to ``/login/`` as fast as the server answers (anonymous, one address, as in issue 14 #4; the raters start
once the login throttle refuses the flood), and reports both and the ratio of the throughputs (the export is
compared in the first run only: the flood gets the address throttled, researchers' logins included).
With ``--asyncio`` the raters are coroutines of one event loop, each with its own keep-alive connection (up to
5,000 raters: e.g. 2,000 at one rating every 4 s, 500 ratings/s offered); it then also reports where the time goes,
from the ``Server-Timing`` header of a server started with ``SRMOS_SERVER_TIMING=1`` (Django, SQL, the row lock), the
CPU of this study's PostgreSQL backends with ``--database-url``, and first the same server's flat-out rate on a
trivial endpoint (the same run's limit).
Exit status 1 when a rating was lost, doubled, or never acknowledged.
"""

import argparse
import asyncio
import csv
import http.client
import io
import itertools
import json
import math
import os
import random
import re
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_RATERS = 1000
MAX_ASYNC_RATERS = 5000
# Like the rating page's script, a rater does not move on until the server acknowledged: a server restart or a lost
# database connection costs retries (until the time limit), never a rating.
RETRY_STATUSES = (429, 500, 502, 503, 504, "connection error")
MAX_RETRIES = 1000
MAX_BACKOFF_S = 1.0
FLOOD_WARMUP_S = 120  # --login-flood: the longest wait for the login throttle to engage before the raters start
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Client:
    """One browser: a keep-alive connection, its cookies and CSRF token."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.connection = None
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):  # a keep-alive connection the server closed is reopened once
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if response.headers.get("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = None
        return response.status, response.headers, data

    def request_patiently(self, method, path, body=None, headers=None, deadline=None):
        """``request``, retried on a refused connection or a 5xx until ``deadline`` (a server restarting)."""
        for attempt in itertools.count():
            try:
                answer = self.request(method, path, body=body, headers=headers)
                if answer[0] < 500:
                    return answer
            except (OSError, http.client.HTTPException):
                answer = None
            if deadline is None or time.monotonic() > deadline:
                if answer is None:
                    raise RuntimeError(f"{method} {path}: no answer from the server")
                return answer
            time.sleep(min(0.05 * 2**attempt, MAX_BACKOFF_S))

    def form_token(self, html):
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if not match:
            raise RuntimeError("no CSRF token in the page: is this an srmos study link?")
        return match[1].decode()

    def close(self):
        if self.connection is not None:
            self.connection.close()


@dataclass
class RaterResult:
    participant: str
    rater_token: str = ""
    acknowledged: dict = field(default_factory=dict)  # trial token -> score the server acknowledged
    positions: dict = field(default_factory=dict)  # trial token -> position in the session
    latencies: list = field(default_factory=list)  # seconds, every rating POST that got an answer
    statuses: dict = field(default_factory=dict)
    retries: int = 0
    unacknowledged: int = 0
    stored_by_state: int = 0
    error: str = ""
    first_post: float = 0.0
    last_answer: float = 0.0


def start_session(client, study_path, participant, deadline=None):
    """Consent through the study link: returns the rater token (from the redirect to /r/<token>/).

    Safe to repeat: the participant id resumes the session already started (as a panel's link does).
    """
    path = f"{study_path}?{urlencode({'pid': participant})}"
    status, headers, html = client.request_patiently("GET", path, deadline=deadline)
    if status == 200:
        body = urlencode(
            {"consent": "on", "participant_id": participant, "csrfmiddlewaretoken": client.form_token(html)}
        )
        status, headers, _ = client.request_patiently(
            "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, deadline=deadline
        )
    match = re.search(r"/r/([^/]+)/", headers.get("Location", ""))
    if status not in (301, 302, 303) or not match:
        raise RuntimeError(f"{path}: {status}, expected a redirect to the rating page")
    return match[1]


def session_state(client, rater_token, deadline=None):
    status, _, data = client.request_patiently("GET", f"/r/{rater_token}/state/", deadline=deadline)
    if status != 200:
        raise RuntimeError(f"state of rater {rater_token[:6]}...: {status}")
    return json.loads(data)


def rate_all(client, result, trials, deadline, max_ratings, interval, rng):
    """POST a score for each trial until acknowledged (200/201), retrying like the page does.

    One rating every ``interval`` seconds at most (a fixed schedule from a random phase), so N raters offer
    N / interval ratings/s whatever the latency; interval 0 sends the next rating as soon as one is answered.
    """
    headers = {"Content-Type": "application/json", "X-CSRFToken": client.cookies.get("csrftoken", "")}
    path = f"/r/{result.rater_token}/rate/"
    next_send = time.monotonic() + rng.uniform(0, interval)
    for trial in trials[:max_ratings]:
        pause = next_send - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        next_send = max(next_send + interval, time.monotonic() - interval)  # never a burst to catch up
        if time.monotonic() > deadline:
            break
        score = trial.get("calibration_score") or rng.randint(1, 5)
        body = json.dumps({"trial": trial["token"], "score": score, "response_ms": rng.randint(400, 4000)})
        for attempt in itertools.count():
            started = time.perf_counter()
            result.first_post = result.first_post or started
            try:
                status, headers_in, _ = client.request("POST", path, body=body, headers=headers)
            except (OSError, http.client.HTTPException):
                status, headers_in = "connection error", {}
            else:
                result.latencies.append(time.perf_counter() - started)
            result.last_answer = time.perf_counter()
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status in (200, 201):
                result.acknowledged[trial["token"]] = score
                break
            result.retries += 1
            if status not in RETRY_STATUSES or attempt >= MAX_RETRIES or time.monotonic() > deadline:
                break  # a 4xx other than 429 will not change on retry
            wait = float(headers_in.get("Retry-After", 0) or 0) if status == 429 else 0.05 * 2**attempt
            time.sleep(min(wait, MAX_BACKOFF_S))
        if trial["token"] not in result.acknowledged:
            result.unacknowledged += 1


def run_rater(base, study_path, participant, barriers, deadline, max_ratings, interval, seed, results, timeout):
    """One rater: consent and read the session, wait for all, rate every trial, wait for all, count what is stored."""
    start_barrier, rated_barrier = barriers
    result = RaterResult(participant)
    results.append(result)
    client = Client(base.hostname, base.port or 80, timeout)
    try:
        result.rater_token = start_session(client, study_path, participant, deadline)
        trials = session_state(client, result.rater_token, deadline)["trials"]
        result.positions = {t["token"]: t["position"] for t in trials}
    except Exception as error:  # noqa: BLE001 -- reported per rater, the others go on
        result.error = f"session start: {error}"
    finally:
        start_barrier.wait()  # every rater starts rating at the same moment
    try:
        if not result.error:
            rate_all(client, result, trials, deadline, max_ratings, interval, random.Random(seed))
    except Exception as error:  # noqa: BLE001
        result.error = f"rating: {error}"
    finally:
        # The check below is the test's bookkeeping, not rating: done while others still rate, 100 raters who
        # finish together would burst it into the last ratings' latencies.
        try:
            rated_barrier.wait(timeout=max(1.0, deadline + timeout - time.monotonic()))
        except threading.BrokenBarrierError:
            pass
    try:
        if not result.error:
            result.stored_by_state = session_state(client, result.rater_token, deadline + timeout)["done"]
    except Exception as error:  # noqa: BLE001
        result.error = f"reading the stored ratings: {error}"
    finally:
        client.close()


def export_rows(base, username, password, study_id, timeout):
    """The study's ratings export (CSV rows as dicts), read with a researcher login."""
    client = Client(base.hostname, base.port or 80, timeout)
    deadline = time.monotonic() + timeout
    status, _, html = client.request_patiently("GET", "/login/", deadline=deadline)
    body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": client.form_token(html)})
    status, _, _ = client.request_patiently(
        "POST", "/login/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, deadline=deadline
    )
    if status not in (301, 302, 303):
        raise RuntimeError(f"login as {username!r} failed ({status})")
    status, _, data = client.request_patiently("GET", f"/dashboard/{study_id}/ratings.csv", deadline=deadline)
    client.close()
    if status != 200:
        raise RuntimeError(f"ratings export of study {study_id}: {status}")
    return list(csv.DictReader(io.StringIO(data.decode())))


def compare_with_export(results, rows):
    """(stored, lost, duplicated) for this run's raters, matched by (participant id, trial position)."""
    ours = {r.participant: r for r in results}
    stored = [(row["rater"], int(row["trial"])) for row in rows if row["rater"] in ours]
    acknowledged = {(r.participant, r.positions[t]) for r in results for t in r.acknowledged}
    duplicated = len(stored) - len(set(stored))
    lost = len(acknowledged - set(stored))
    return len(stored), lost, duplicated


def percentile(values, q):
    """Nearest-rank percentile: the smallest value with at least q % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summarise(results, elapsed, export=None):
    latencies = [x for r in results for x in r.latencies]
    acknowledged = sum(len(r.acknowledged) for r in results)
    starts = [r.first_post for r in results if r.first_post]
    ends = [r.last_answer for r in results if r.last_answer]
    span = (max(ends) - min(starts)) if starts else 0.0
    statuses = {}
    for r in results:
        for status, n in r.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    summary = {
        "raters": len(results),
        "raters_failed": sum(bool(r.error) for r in results),
        "errors": sorted({r.error for r in results if r.error})[:5],
        "ratings_acknowledged": acknowledged,
        "ratings_unacknowledged": sum(r.unacknowledged for r in results),
        "retries": sum(r.retries for r in results),
        "statuses": statuses,
        "rating_seconds": round(span, 3),
        "ratings_per_s": round(acknowledged / span, 1) if span else 0.0,
        "latency_median_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(1000 * percentile(latencies, 99), 1) if latencies else None,
        "latency_max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "stored_by_state": sum(r.stored_by_state for r in results),
        "wall_seconds": round(elapsed, 2),
    }
    if export is not None:
        summary["stored_by_export"], summary["lost"], summary["duplicated"] = export
    else:
        summary["lost"] = max(0, acknowledged - summary["stored_by_state"])
        summary["duplicated"] = max(0, summary["stored_by_state"] - acknowledged)
    return summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="a loopback server (default %(default)s)")
    parser.add_argument("--study-token", required=True, help="the token in the study link /s/<token>/")
    parser.add_argument("--raters", type=int, default=100, help="concurrent simulated raters (default %(default)s)")
    parser.add_argument("--ratings-per-rater", type=int, default=1000, help="at most this many ratings each")
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=300.0,
        help="each rater rates at most once per this many ms (default %(default)s: 100 raters offer "
        "333 ratings/s); 0: as fast as the server answers",
    )
    parser.add_argument("--time-limit", type=float, default=120.0, help="stop rating after this many seconds")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for one response")
    parser.add_argument("--username", help="researcher login: compare with the ratings export")
    parser.add_argument("--password")
    parser.add_argument("--study-id", type=int, help="the study's number in the dashboard (with --username)")
    parser.add_argument("--server-pid", type=int, help="gunicorn's master pid: report its CPU per rating (Linux)")
    parser.add_argument("--run-id", default=None, help="participant id prefix (default: random)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--login-flood",
        type=int,
        default=0,
        metavar="THREADS",
        help="run twice, without and with this many threads flooding /login/ with wrong passwords",
    )
    parser.add_argument(
        "--login-flood-rate",
        type=float,
        default=0.0,
        metavar="PER_S",
        help="the flood's attempts per second, all threads together (default 0: each thread as fast as the server "
        "answers, which on one machine also measures the attackers' own CPU)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--asyncio", action="store_true", help="raters as coroutines (thousands), with Server-Timing")
    parser.add_argument("--database-url", help="with --asyncio: count the CPU of this database's backends (Linux)")
    parser.add_argument("--starting", type=int, default=8, help="with --asyncio: raters consenting at once")
    args = parser.parse_args(argv)
    base = urlsplit(args.base_url)
    if base.scheme != "http" or base.hostname not in LOOPBACK:
        parser.error(f"--base-url {args.base_url}: this load test only runs against http://127.0.0.1 (loopback)")
    most = MAX_ASYNC_RATERS if args.asyncio else MAX_RATERS
    if not 1 <= args.raters <= most:
        parser.error(f"--raters must be 1 to {most}{'' if args.asyncio else ' (up to 5000 with --asyncio)'}")
    if not 0 <= args.interval_ms <= 60_000:
        parser.error("--interval-ms must be between 0 and 60000")
    if not 0 < args.time_limit <= 3600:
        parser.error("--time-limit must be between 0 and 3600 seconds")
    if args.username and (args.password is None or args.study_id is None):
        parser.error("--username needs --password and --study-id")
    if not 0 <= args.login_flood <= 64:
        parser.error("--login-flood must be 0 to 64 threads")
    if not 0 <= args.login_flood_rate <= 10_000:
        parser.error("--login-flood-rate must be 0 to 10000 attempts per second")
    return args, base


def process_cpu_seconds(pid, reaped_children=False):
    """utime + stime of one process from /proc, in seconds (0 if it is gone); with ``reaped_children`` also the
    CPU of its children that exited (e.g. gunicorn workers recycled during the run)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def processes():
    """{pid: (name, parent pid)} of every process we can see."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
                found[int(entry.name)] = (name, int(rest.split()[1]))
            except (OSError, IndexError, ValueError):
                continue
    return found


def cpu_snapshot(server_pid=None):
    """CPU seconds used so far by the machine, the server (a pid and its children) and this process.

    Where the rating path's CPU goes, and how busy other work kept the machine (it may be shared), on Linux.
    """
    snapshot = {"time": time.monotonic(), "self": sum(os.times()[:2])}
    try:
        jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return snapshot
    snapshot["machine_busy"] = (sum(jiffies[:8]) - jiffies[3] - jiffies[4]) / CLOCK_TICKS
    table = processes()
    if server_pid:
        workers = {pid for pid, (_, parent) in table.items() if parent == server_pid}
        snapshot["server"] = process_cpu_seconds(server_pid, reaped_children=True) + sum(
            process_cpu_seconds(pid) for pid in workers
        )
    return snapshot


def cpu_figures(before, after, ratings):
    """CPU ms per acknowledged rating, per part, and the machine's busy share over the rating phase."""
    if "machine_busy" not in before or not ratings:
        return {}
    wall = after["time"] - before["time"]
    figures = {
        "cores": os.cpu_count(),
        "machine_busy_pct": round(100 * (after["machine_busy"] - before["machine_busy"]) / (wall * os.cpu_count()), 1),
    }
    for part in ("server", "self"):
        if part in before:
            figures[f"cpu_ms_per_rating_{part}"] = round(1000 * (after[part] - before[part]) / ratings, 2)
    if "cpu_ms_per_rating_server" in figures:
        # The web server's own ceiling on this machine if nothing else ran (the database not counted).
        per_rating = figures["cpu_ms_per_rating_server"]
        figures["ceiling_ratings_per_s"] = round(1000 * os.cpu_count() / per_rating, 1) if per_rating else None
    return figures


def run(args, base, run_id=None, compare_export=True):
    run_id = run_id or args.run_id or f"load-{uuid.uuid4().hex[:8]}"
    study_path = f"/s/{args.study_token}/"
    results = []
    snapshots = []
    # CPU is counted from the moment all raters start rating to the moment the last one finished.
    barriers = tuple(
        threading.Barrier(args.raters, action=lambda: snapshots.append(cpu_snapshot(args.server_pid))) for _ in (1, 2)
    )
    started = time.monotonic()
    deadline = started + args.time_limit
    threads = [
        threading.Thread(
            target=run_rater,
            args=(
                base,
                study_path,
                f"{run_id}-{i:04d}",
                barriers,
                deadline,
                args.ratings_per_rater,
                args.interval_ms / 1000,
                args.seed * 100_003 + i,
                results,
                args.timeout,
            ),
            daemon=True,
        )
        for i in range(args.raters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, deadline + args.timeout * 2 - time.monotonic()))
    elapsed = time.monotonic() - started
    if len(snapshots) < 2:  # a rater hung past the time limit: count until now
        snapshots.append(cpu_snapshot(args.server_pid))
    export = None
    if args.username and compare_export:
        rows = export_rows(base, args.username, args.password, args.study_id, args.timeout)
        export = compare_with_export(results, rows)
    summary = summarise(list(results), elapsed, export)
    summary["interval_ms"] = args.interval_ms
    if len(snapshots) == 2:
        summary.update(cpu_figures(*snapshots, summary["ratings_acknowledged"]))
    return summary


def flood_logins(base, stop, counts, lock, timeout, interval=0.0):
    """One attacker: wrong passwords POSTed to /login/ (one CSRF token, kept) until ``stop``, one per ``interval``
    seconds at most; counts the statuses."""
    client = Client(base.hostname, base.port or 80, timeout)
    try:
        _, _, html = client.request("GET", "/login/")
        body = urlencode(
            {
                "username": f"flood-{uuid.uuid4().hex[:6]}",
                "password": uuid.uuid4().hex,
                "csrfmiddlewaretoken": client.form_token(html),
            }
        )
    except (OSError, http.client.HTTPException, RuntimeError) as error:
        with lock:
            counts[f"error: {error}"] = counts.get(f"error: {error}", 0) + 1
        return
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    next_at = time.monotonic()
    while not stop.is_set():
        next_at += interval
        stop.wait(max(0.0, next_at - time.monotonic()))
        try:
            status = client.request("POST", "/login/", body=body, headers=headers)[0]
        except (OSError, http.client.HTTPException):
            status = "connection error"
            time.sleep(0.05)
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1
    client.close()


def run_with_login_flood(args, base):
    """The rating run without, then with, ``args.login_flood`` threads flooding /login/; both summaries."""
    prefix = args.run_id or f"load-{uuid.uuid4().hex[:8]}"
    quiet = run(args, base, run_id=f"{prefix}-quiet")
    stop, lock, counts = threading.Event(), threading.Lock(), {}
    interval = args.login_flood / args.login_flood_rate if args.login_flood_rate > 0 else 0.0
    flooders = [
        threading.Thread(target=flood_logins, args=(base, stop, counts, lock, args.timeout, interval), daemon=True)
        for _ in range(args.login_flood)
    ]
    started = time.monotonic()
    for thread in flooders:
        thread.start()
    # The throttle lets the first failures per address through (each a full password check): the raters start
    # once it refuses (429) or after FLOOD_WARMUP_S, so that the run measures the flood the throttle holds off.
    while "429" not in counts and time.monotonic() - started < FLOOD_WARMUP_S:
        time.sleep(0.1)
    warmup = time.monotonic() - started
    attempts_in_warmup = sum(counts.values())
    try:
        flooded = run(args, base, run_id=f"{prefix}-flood", compare_export=False)
    finally:
        stop.set()
        for thread in flooders:
            thread.join(timeout=args.timeout)
    seconds = time.monotonic() - started
    attempts = sum(n for status, n in counts.items() if not status.startswith("error"))
    flooded["login_flood"] = {
        "threads": args.login_flood,
        "offered_per_s": args.login_flood_rate or "as fast as answered",
        "attempts": attempts,
        "attempts_per_s": round(attempts / seconds, 1) if seconds else 0.0,
        "statuses": counts,
        "warmup_seconds": round(warmup, 1),
        "attempts_in_warmup": attempts_in_warmup,
    }
    ratio = flooded["ratings_per_s"] / quiet["ratings_per_s"] if quiet["ratings_per_s"] else 0.0
    return {"without_flood": quiet, "with_flood": flooded, "throughput_ratio": round(ratio, 3)}


def summary_ok(s):
    ok = s["lost"] == 0 and s["duplicated"] == 0 and s["ratings_unacknowledged"] == 0
    return ok and s["stored_by_state"] == s["ratings_acknowledged"] and not s["raters_failed"]


def print_summary(s):
    print(f"offered: {s['raters']} raters, one rating each per {s['interval_ms']} ms")
    print(f"raters: {s['raters']} ({s['raters_failed']} failed{': ' + '; '.join(s['errors']) if s['errors'] else ''})")
    print(
        f"ratings acknowledged: {s['ratings_acknowledged']} in {s['rating_seconds']} s "
        f"-> {s['ratings_per_s']} ratings/s (retries {s['retries']}, never acknowledged "
        f"{s['ratings_unacknowledged']}; statuses {s['statuses']})"
    )
    print(
        f"rating request latency: median {s['latency_median_ms']} ms, p99 {s['latency_p99_ms']} ms, "
        f"max {s['latency_max_ms']} ms"
    )
    if "machine_busy_pct" in s:
        line = f"CPU while rating: machine {s['machine_busy_pct']} % busy of {s['cores']} cores"
        if "cpu_ms_per_rating_server" in s:
            line += (
                f"; per rating: server {s['cpu_ms_per_rating_server']} ms, "
                f"this load generator {s['cpu_ms_per_rating_self']} ms"
                f" -> the machine's ceiling for the web server alone: {s['ceiling_ratings_per_s']} ratings/s"
            )
        print(line)
    stored = f"{s['stored_by_state']} (per session state)"
    if "stored_by_export" in s:
        stored += f", {s['stored_by_export']} (ratings export)"
    print(
        f"ratings stored: {stored} against {s['ratings_acknowledged']} acknowledged: "
        f"lost {s['lost']}, duplicated {s['duplicated']}"
    )


def print_breakdown(s):
    """The --asyncio run's extra lines: the same run's limit, where a rating's time goes, PostgreSQL's CPU."""
    limit = s.get("trivial_endpoint")
    if limit:
        print(
            f"same run, same server: {limit['path']} flat out from {limit['connections']} connections: "
            f"{limit['per_s']} requests/s (median {limit['median_ms']} ms)"
        )
    timing = s.get("server_timing")
    if timing:
        print(
            f"where a rating's time goes (mean per rating, Server-Timing): in Django {timing['app_mean_ms']} ms "
            f"(p99 {timing['app_p99_ms']}), of it SQL {timing['db_mean_ms']} ms in {timing['statements']} statements, "
            f"the session's row lock {timing['lock_mean_ms']} ms (p99 {timing['lock_p99_ms']}); outside Django "
            f"(socket, gunicorn's queue, this client) {timing['outside_mean_ms']} ms"
        )
    if "cpu_ms_per_rating_postgres" in s:
        print(
            f"PostgreSQL CPU per rating: {s['cpu_ms_per_rating_postgres']} ms ({s['postgres_backends']} backends of "
            f"this database); server + PostgreSQL {s['cpu_ms_per_rating_total']} ms -> "
            f"{s['ceiling_total_ratings_per_s']} ratings/s if nothing else ran on the {s['cores']} cores"
        )


def main(argv=None):
    args, base = parse_args(argv)
    if args.asyncio:
        from perf.load_rating_async import run_async

        summary = asyncio.run(run_async(args, base))
        print(json.dumps(summary) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_summary(summary)
            print_breakdown(summary)
        return 0 if summary_ok(summary) else 1
    if args.login_flood:
        both = run_with_login_flood(args, base)
        phases = [both["without_flood"], both["with_flood"]]
        if args.json:
            print(json.dumps(both))
        else:
            print("== without a login flood")
            print_summary(phases[0])
            flood = phases[1]["login_flood"]
            print(
                f"== with a login flood: {flood['threads']} threads (offered: {flood['offered_per_s']}), "
                f"{flood['attempts']} wrong-password POSTs "
                f"({flood['attempts_per_s']}/s; statuses {flood['statuses']}); raters started "
                f"{flood['warmup_seconds']} s after the flood, once the throttle refused "
                f"(after {flood['attempts_in_warmup']} attempts)"
            )
            print_summary(phases[1])
            print(
                f"throughput with the flood: {100 * both['throughput_ratio']:.1f} % of without; p99 "
                f"{phases[0]['latency_p99_ms']} -> {phases[1]['latency_p99_ms']} ms"
            )
    else:
        phases = [run(args, base)]
        if args.json:
            print(json.dumps(phases[0]))
        else:
            print_summary(phases[0])
    return 0 if all(summary_ok(s) for s in phases) else 1


if __name__ == "__main__":
    sys.exit(main())

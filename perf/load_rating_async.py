"""``python -m perf.load_rating --asyncio``: thousands of raters as coroutines of one event loop (a thread each
would cost more CPU than the server's work), each with its own keep-alive HTTP/1.1 connection.

The flow and the figures are those of ``perf.load_rating`` (consent, session state, one rating per interval from a
random phase, retried until acknowledged, then the stored count per session); added: the same server's flat-out
rate on a trivial endpoint first (the same run's limit), the ``Server-Timing`` breakdown of every acknowledged
rating (``mos_study/server_timing.py``), and the CPU of the study database's PostgreSQL backends (their pids from
``pg_stat_activity``, CPU from /proc) besides gunicorn's and this client's.
"""

import asyncio
import json
import random
import re
import statistics
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from perf.load_rating import (
    CLOCK_TICKS,
    MAX_BACKOFF_S,
    MAX_RETRIES,
    RETRY_STATUSES,
    RaterResult,
    compare_with_export,
    cpu_figures,
    cpu_snapshot,
    export_rows,
    percentile,
    summarise,
)

TRIVIAL_PATH = "/login/"  # a page through every middleware, with no query
TRIVIAL_SECONDS = 5.0


class AsyncClient:
    """One browser on one keep-alive connection: cookies and the CSRF cookie kept."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.reader = self.writer = None
        self.cookies = {}

    async def request(self, method, path, body=b"", headers=None):
        """(status, headers with lower-case names, body); a connection the server closed is reopened once."""
        if isinstance(body, str):
            body = body.encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        message = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(message)
                return await asyncio.wait_for(self.read_response(), self.timeout)
            except (OSError, asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                self.close()
                if attempt == 2:
                    raise

    async def read_response(self):
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers, cookies = {}, []
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            headers[name] = value
        data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        for header in cookies:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def server_timing(headers):
    """{"app": ms, "db": ms, "lock": ms, "statements": n} from a Server-Timing header (empty without one)."""
    found = {}
    for metric in (headers.get("server-timing") or "").split(","):
        parts = [p.strip() for p in metric.split(";")]
        values = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if "dur" in values:
            found[parts[0]] = float(values["dur"])
        if parts[0] == "db" and "desc" in values:
            found["statements"] = int(values["desc"].strip('"'))
    return found


async def start(client, study_path, participant):
    """Consent through the study link: the rater token (from the redirect to /r/<token>/)."""
    path = f"{study_path}?{urlencode({'pid': participant})}"
    status, headers, html = await client.request("GET", path)
    if status == 200:
        match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        if not match:
            raise RuntimeError("no CSRF token in the page: is this an srmos study link?")
        body = urlencode({"consent": "on", "participant_id": participant, "csrfmiddlewaretoken": match[1].decode()})
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = await client.request("POST", path, body, form)
    match = re.search(r"/r/([^/]+)/", headers.get("location", ""))
    if status not in (301, 302, 303) or not match:
        raise RuntimeError(f"{path}: {status}, expected a redirect to the rating page")
    return match[1]


async def state(client, rater_token):
    status, _, data = await client.request("GET", f"/r/{rater_token}/state/")
    if status != 200:
        raise RuntimeError(f"state of rater {rater_token[:6]}...: {status}")
    return json.loads(data)


async def rate_all(client, result, trials, deadline, args, rng, timings):
    """As ``load_rating.rate_all``: one rating per interval at most, each retried until acknowledged."""
    headers = {"Content-Type": "application/json", "X-CSRFToken": client.cookies.get("csrftoken", "")}
    path = f"/r/{result.rater_token}/rate/"
    interval = args.interval_ms / 1000
    next_send = time.monotonic() + rng.uniform(0, interval)
    for trial in trials[: args.ratings_per_rater]:
        await asyncio.sleep(max(0.0, next_send - time.monotonic()))
        next_send = max(next_send + interval, time.monotonic() - interval)  # never a burst to catch up
        if time.monotonic() > deadline:
            break
        score = trial.get("calibration_score") or rng.randint(1, 5)
        body = json.dumps({"trial": trial["token"], "score": score, "response_ms": rng.randint(400, 4000)})
        for attempt in range(MAX_RETRIES + 1):
            started = time.perf_counter()
            result.first_post = result.first_post or started
            try:
                status, answer, _ = await client.request("POST", path, body, headers)
            except (OSError, asyncio.IncompleteReadError, ConnectionError, TimeoutError):
                status, answer = "connection error", {}
            else:
                latency = time.perf_counter() - started
                result.latencies.append(latency)
                if status in (200, 201):
                    timings.append((latency, server_timing(answer)))
            result.last_answer = time.perf_counter()
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status in (200, 201):
                result.acknowledged[trial["token"]] = score
                break
            result.retries += 1
            if status not in RETRY_STATUSES or time.monotonic() > deadline:
                break
            wait = float(answer.get("retry-after", 0) or 0) if status == 429 else 0.05 * 2**attempt
            await asyncio.sleep(min(wait, MAX_BACKOFF_S))
        if trial["token"] not in result.acknowledged:
            result.unacknowledged += 1


async def trivial_rate(base, connections, seconds):
    """The server flat out on ``TRIVIAL_PATH`` from ``connections`` keep-alive connections: requests/s, median."""
    stop = time.monotonic() + seconds
    latencies = []

    async def one():
        client = AsyncClient(base.hostname, base.port or 80, 30)
        while time.monotonic() < stop:
            started = time.perf_counter()
            await client.request("GET", TRIVIAL_PATH)
            latencies.append(time.perf_counter() - started)
        client.close()

    began = time.monotonic()
    await asyncio.gather(*(one() for _ in range(connections)))
    return {
        "path": TRIVIAL_PATH,
        "connections": connections,
        "per_s": round(len(latencies) / (time.monotonic() - began), 1),
        "median_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
    }


def backend_cpu(database_url):
    """{pid: CPU seconds} of the PostgreSQL backends connected to ``database_url``'s database (Linux /proc)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # another machine, or gone
        seconds[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return seconds


def backend_figures(before, after, ratings):
    """CPU ms per rating of the backends alive at the end (those new since counted from zero)."""
    if not after or not ratings:
        return {}
    spent = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return {"cpu_ms_per_rating_postgres": round(1000 * spent / ratings, 2), "postgres_backends": len(after)}


def timing_figures(timings):
    """Means and p99s of the acknowledged ratings' Server-Timing parts."""
    timed = [(latency, t) for latency, t in timings if "app" in t]
    if not timed:
        return {}

    def column(name):
        return [t.get(name, 0.0) for _, t in timed]

    app, db, lock = column("app"), column("db"), column("lock")
    outside = [1000 * latency - t["app"] for latency, t in timed]
    return {
        "server_timing": {
            "ratings": len(timed),
            "app_mean_ms": round(statistics.fmean(app), 2),
            "app_p99_ms": round(percentile(app, 99), 2),
            "db_mean_ms": round(statistics.fmean(db), 2),
            "db_p99_ms": round(percentile(db, 99), 2),
            "lock_mean_ms": round(statistics.fmean(lock), 2),
            "lock_p99_ms": round(percentile(lock, 99), 2),
            "statements": statistics.median(t.get("statements", 0) for _, t in timed),
            "outside_mean_ms": round(statistics.fmean(outside), 2),
            "outside_p99_ms": round(percentile(outside, 99), 2),
        }
    }


async def run_async(args, base):
    """The rating run with ``args.raters`` coroutines; the summary of ``load_rating.summarise`` and more."""
    run_id = args.run_id or f"load-{uuid.uuid4().hex[:8]}"
    study_path = f"/s/{args.study_token}/"
    limit = await trivial_rate(base, min(32, args.raters), TRIVIAL_SECONDS)
    results = [RaterResult(f"{run_id}-{i:05d}") for i in range(args.raters)]
    clients = [AsyncClient(base.hostname, base.port or 80, args.timeout) for _ in results]
    starting = asyncio.Semaphore(args.starting)
    trials = {}

    async def begin(client, result):
        async with starting:
            try:
                result.rater_token = await start(client, study_path, result.participant)
                trials[result.participant] = (await state(client, result.rater_token))["trials"]
                result.positions = {t["token"]: t["position"] for t in trials[result.participant]}
            except Exception as error:  # noqa: BLE001 -- reported per rater, the others go on
                result.error = f"session start: {error}"

    began = time.monotonic()
    await asyncio.gather(*(begin(c, r) for c, r in zip(clients, results, strict=True)))
    setup_seconds = time.monotonic() - began
    timings = []
    before = cpu_snapshot(args.server_pid)
    backends_before = backend_cpu(args.database_url) if args.database_url else {}
    deadline = time.monotonic() + args.time_limit

    async def rate(client, result, seed):
        if not result.error:
            try:
                await rate_all(client, result, trials[result.participant], deadline, args, random.Random(seed), timings)
            except Exception as error:  # noqa: BLE001
                result.error = f"rating: {error}"

    rating_started = time.monotonic()
    await asyncio.gather(
        *(rate(c, r, args.seed * 100_003 + i) for i, (c, r) in enumerate(zip(clients, results, strict=True)))
    )
    after = cpu_snapshot(args.server_pid)
    backends_after = backend_cpu(args.database_url) if args.database_url else {}
    elapsed = time.monotonic() - rating_started

    async def count_stored(client, result):
        async with starting:
            try:
                if not result.error:
                    result.stored_by_state = (await state(client, result.rater_token))["done"]
            except Exception as error:  # noqa: BLE001
                result.error = f"reading the stored ratings: {error}"
            finally:
                client.close()

    await asyncio.gather(*(count_stored(c, r) for c, r in zip(clients, results, strict=True)))
    export = None
    if args.username:
        rows = await asyncio.to_thread(export_rows, base, args.username, args.password, args.study_id, args.timeout)
        export = compare_with_export(results, rows)
    summary = summarise(results, elapsed, export)
    summary["interval_ms"] = args.interval_ms
    summary["offered_per_s"] = round(args.raters / (args.interval_ms / 1000), 1) if args.interval_ms else None
    summary["setup_seconds"] = round(setup_seconds, 1)
    summary["trivial_endpoint"] = limit
    summary.update(cpu_figures(before, after, summary["ratings_acknowledged"]))
    summary.update(timing_figures(timings))
    summary.update(backend_figures(backends_before, backends_after, summary["ratings_acknowledged"]))
    if "cpu_ms_per_rating_postgres" in summary and "cpu_ms_per_rating_server" in summary:
        total = summary["cpu_ms_per_rating_server"] + summary["cpu_ms_per_rating_postgres"]
        summary["cpu_ms_per_rating_total"] = round(total, 2)
        summary["ceiling_total_ratings_per_s"] = round(1000 * summary["cores"] / total, 1) if total else None
    return summary

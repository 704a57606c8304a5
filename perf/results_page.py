"""How fast the dashboard's results page answers once its result is stored (issue 17: under 200 ms), measured over
HTTP against a running srmos server with a researcher's login.

    python -m perf.results_page --study-id PK --username U --password P [--base-url http://127.0.0.1:8000]
        [--requests 30]

Prints the median, 95th percentile and worst time of the results page and of its live poll (204 while nothing
changed), beside the same run's reference: the login page of the same server (a rendered page without a study),
and the time the stored result took to compute (the page's freshness line), which is what the page cost before the
result was computed by a job. Seed a crowd-sized study with ``tests/support/seed_crowd_study.py`` (docs/analysis.md).
"""

import argparse
import html
import re
import statistics
import time
from urllib.parse import urlencode, urlsplit

from perf.load_rating import Client

GOAL_S = 0.2
FRESHNESS = re.compile(rb'<p id="results-freshness" data-state="([^"]*)"[^>]*>([^<]*)</p>')
VERSION = re.compile(rb'id="results-body"[^>]*data-version="([^"]*)"')
COMPUTED_IN = re.compile(r"\(in ([0-9.]+) s\)")


def timed_gets(client, path, count):
    """(seconds of each GET, the last answer)."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        answer = client.request("GET", path)
        seconds.append(time.perf_counter() - start)
        if answer[0] >= 400:
            raise SystemExit(f"GET {path}: HTTP {answer[0]}")
    return seconds, answer


def summary(seconds):
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered) * 1e3:6.1f} ms, p95 {p95 * 1e3:6.1f} ms, worst {ordered[-1] * 1e3:6.1f} ms"
    )


def log_in(client, username, password):
    _, _, page = client.request("GET", "/login/")
    body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": client.form_token(page)})
    status, _, _ = client.request(
        "POST", "/login/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    if status not in (301, 302, 303):
        raise SystemExit(f"login as {username!r} failed (HTTP {status})")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m perf.results_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--study-id", type=int, required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)
    base = urlsplit(args.base_url)
    client = Client(base.hostname, base.port or 80, timeout=120)
    reference, _ = timed_gets(client, "/login/", args.requests)
    log_in(client, args.username, args.password)
    page_path = f"/dashboard/{args.study_id}/results/"
    first, (_, _, page) = timed_gets(client, page_path, 1)
    seconds, (_, _, page) = timed_gets(client, page_path, args.requests)
    found, version = FRESHNESS.search(page), VERSION.search(page)
    if found is None or version is None:
        raise SystemExit("the page shows no stored result yet (no freshness line): wait for the job, then rerun")
    state, line = (html.unescape(part.decode()) for part in found.groups())
    poll_path = f"{page_path}live/?" + urlencode({"version": version[1].decode(), "state": state})
    polls, (status, _, _) = timed_gets(client, poll_path, args.requests)
    client.close()
    print(f"results page, {len(page) / 2**10:.0f} KiB: {line}")
    print(f"first request                       {first[0] * 1e3:6.1f} ms")
    print(f"results page ({args.requests} requests)        {summary(seconds)}")
    print(f"live poll, nothing new (HTTP {status})   {summary(polls)}")
    print(f"same-run reference: login page      {summary(reference)}")
    computed = COMPUTED_IN.search(line)
    if computed:
        print(f"the job computed this result in {computed[1]} s: what the page cost when it computed in the request")
    verdict = "meets" if statistics.median(seconds) < GOAL_S else "MISSES"
    print(f"{verdict} the goal: the page in under {GOAL_S * 1e3:.0f} ms (median)")


if __name__ == "__main__":
    main()

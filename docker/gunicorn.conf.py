"""gunicorn settings for the srmos web app (``gunicorn -c docker/gunicorn.conf.py config.wsgi``).

Every value comes from the environment so one file serves the container and a bare-metal install.
gthread workers: a rating request is about 1.5 ms of Python (GIL-bound) and a few ms waiting on PostgreSQL's commit,
so one process per core (plus one, to cover a worker restarting) with 4 threads each keeps the cores busy; more
processes than cores only add switching (docs/deployment.md, "Load test").
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Enough pending connections for a burst of raters arriving at once.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM (docker stop, a deploy) requests in flight get this long to finish: nothing acknowledged is lost.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak can never take the site down; rarely, since a restart costs about a
# second of CPU and its keep-alive connections (at 300 ratings/s, 5000 meant a restart every ~30 s).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "5000"))
# Heartbeat files in memory, not on the container's overlay filesystem (a known cause of worker timeouts).
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm" if os.path.isdir("/dev/shm") else None)
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The proxy in front terminates HTTPS and says so in X-Forwarded-Proto (settings.SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """Before a new worker takes requests, load what its first rating would: the URLconf with every view it imports,
    and the cache client (the Redis library alone takes ~0.1 s to import). Otherwise the first raters after each
    worker (re)start wait ~0.2 s or more."""
    from django.core.cache import caches
    from django.urls import resolve, reverse

    resolve(reverse("mos_study:submit_rating", args=["warm-up"]))
    try:
        caches["default"].get("srmos:warm-up")
    except Exception:  # noqa: BLE001 -- a cache outage is the rate limiter's to report (it fails open), not boot's
        worker.log.warning("cache unavailable while warming up the worker")

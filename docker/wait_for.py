"""Wait until PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL) accept connections, or give up.

Compose's health checks order the start on one machine; a worker on another machine has no such help.
"""

import os
import socket
import sys
import time
from urllib.parse import urlsplit

DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "pgsql": 5432, "redis": 6379, "rediss": 6379}


def endpoints():
    for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
        url = urlsplit(os.environ.get(name, ""))
        if url.hostname and url.scheme in DEFAULT_PORTS:
            yield name, url.hostname, url.port or DEFAULT_PORTS[url.scheme]


def wait(host, port, deadline):
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


def main():
    deadline = time.monotonic() + float(os.environ.get("SRMOS_WAIT_SECONDS", "60"))
    for name, host, port in endpoints():
        if not wait(host, port, deadline):
            sys.exit(f"{name}: nothing answers on {host}:{port}; is the service up and the URL right?")
        print(f"{name}: {host}:{port} answers", flush=True)


if __name__ == "__main__":
    main()

"""Where a request's time goes, for load tests: a ``Server-Timing`` response header (off unless
``SRMOS_SERVER_TIMING=1``; ``perf.load_rating`` and ``perf.session_start`` read it).

    Server-Timing: app;dur=4.10, db;dur=2.51;desc="6", lock;dur=0.32;desc="1"

``app``: milliseconds in Django from the outermost middleware in to the response out (views, middleware, templates,
SQL); ``db``: in SQL statements (round trips included) and how many; ``lock``: in the statements that take row locks
(``SELECT ... FOR UPDATE``: the wait for the lock is most of it under contention), part of ``db``. The rest of the
request's latency is outside Django: the socket, gunicorn's queue, the client.
"""

import time

from django.db import connection


class StatementTimer:
    """A ``connection.execute_wrapper``: sums the time of each SQL statement, and of those that lock rows."""

    def __init__(self):
        self.db = self.lock = 0.0
        self.statements = self.locking = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - started
            self.db += spent
            self.statements += 1
            if "FOR UPDATE" in sql:
                self.locking += 1
                self.lock += spent

    def header(self, app_seconds):
        return (
            f'app;dur={1000 * app_seconds:.2f}, db;dur={1000 * self.db:.2f};desc="{self.statements}", '
            f'lock;dur={1000 * self.lock:.2f};desc="{self.locking}"'
        )


class ServerTimingMiddleware:
    """Outermost middleware (settings add it first when SRMOS_SERVER_TIMING=1)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timer = StatementTimer()
        started = time.perf_counter()
        with connection.execute_wrapper(timer):
            response = self.get_response(request)
        response["Server-Timing"] = timer.header(time.perf_counter() - started)
        return response

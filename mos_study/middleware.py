"""Middleware of srmos: security headers on every response, hostile bytes refused early, a database outage answered.

- ``SecurityHeadersMiddleware``: ``Content-Security-Policy`` and ``Permissions-Policy`` on every response
  (``settings.SRMOS_CSP``, ``settings.SRMOS_PERMISSIONS_POLICY``); a view that set its own keeps it.
- ``LoginFloodMiddleware``: login POSTs that the login throttle already refused in this process are refused again
  at once (429), before sessions, CSRF and the cache, so a flood costs the raters beside it little.
- ``RefuseNulBytesMiddleware``: a NUL byte in the path, the query string, a form field or the User-Agent gets 400
  JSON before any view or query runs (PostgreSQL refuses NUL in text, which used to surface as a 500).
- ``DatabaseOutageMiddleware``: a view that finds the database unreachable (``OperationalError``,
  ``InterfaceError``) answers 503 with ``Retry-After`` (JSON in the app's error shape for scripts and the rating page,
  a short HTML page for browsers) instead of a 500 with a traceback; the log says once that the database is
  unreachable, then once a minute how many requests it refused, and once that it is back.
"""

import functools
import logging
import threading
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse

from .http import json_error
from .security import known_login_refusal

logger = logging.getLogger("mos_study.security")

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DEFAULT_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), publickey-credentials-get=(), usb=(), xr-spatial-tracking=(), "
    "browsing-topics=()"
)


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        csp = getattr(settings, "SRMOS_CSP", None)
        permissions = getattr(settings, "SRMOS_PERMISSIONS_POLICY", None)
        self.csp = DEFAULT_CSP if csp is None else csp
        self.permissions = DEFAULT_PERMISSIONS_POLICY if permissions is None else permissions

    def __call__(self, request):
        response = self.get_response(request)
        if self.csp and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.csp
        if self.permissions and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = self.permissions
        return response


def has_nul(request):
    """Where a NUL byte is in the request's path, query, form fields or User-Agent, or None."""
    if "\x00" in request.path:
        return "path"
    if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
        return "query"
    if "\x00" in request.META.get("HTTP_USER_AGENT", ""):
        return "User-Agent"
    # Multipart bodies (uploads) are left to their views: reading them here would load every file into memory.
    # Their text fields that reach the database are checked there (sessions.clean_participant_id).
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.POST.lists()):
            return "form"
    return None


@functools.cache
def login_paths():
    from django.urls import reverse

    return frozenset({reverse("mos_study:login"), reverse("admin:login")})


class LoginFloodMiddleware:
    """A login POST from an address or for an account this process already refused (mos_study.security
    ``throttle_login``) is answered 429 here, before sessions, CSRF and the cache: a flood of refused attempts then
    costs the raters beside it as little as a request can."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and request.path_info in login_paths():
            refused = known_login_refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)


class RefuseNulBytesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        where = has_nul(request)
        if where is not None:
            logger.warning("refused %s %r: NUL byte in the %s", request.method, request.path[:200], where)
            response = json_error(f"the request has a NUL byte in its {where}", 400, "bad_request")
            response._has_been_logged = True  # the one line above, not Django's "Bad Request" as well
            return response
        return self.get_response(request)


class OutageLog:
    """Says once that the database is unreachable, then at most once a minute how many requests were refused,
    and once that it answers again."""

    REPEAT_SECONDS = 60

    def __init__(self):
        self.lock = threading.Lock()
        self.down_since = None
        self.last_said = 0.0
        self.refused = 0

    def failed(self, request, error):
        now = time.monotonic()
        with self.lock:
            self.refused += 1
            if self.down_since is None:
                self.down_since, self.last_said = now, now
                say = f"database unreachable ({type(error).__name__}: {str(error).strip().splitlines()[0][:200]}): "
                say += "answering 503 with Retry-After until it is back"
            elif now - self.last_said >= self.REPEAT_SECONDS:
                self.last_said = now
                say = f"database still unreachable: {self.refused} requests refused so far"
            else:
                return
        logger.error("%s (first at %s %s)", say, request.method, request.path[:200])

    def answered(self):
        if self.down_since is None:  # the common case: one attribute read, no lock
            return
        with self.lock:
            if self.down_since is None:
                return
            seconds, refused = time.monotonic() - self.down_since, self.refused
            self.down_since, self.refused = None, 0
        logger.warning("database reachable again after %.0f s; %d requests were refused with 503", seconds, refused)


outage_log = OutageLog()


def wants_json(request):
    accept = request.headers.get("Accept", "")
    return (
        "application/json" in accept
        or request.content_type == "application/json"
        or request.path.endswith(("/state/", "/rate/"))
    )


UNAVAILABLE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Server busy</title>
<meta http-equiv="refresh" content="{seconds}"></head>
<body><h1>Server busy</h1><p>The server cannot reach its database at the moment. Nothing you did is lost: this
page tries again in {seconds} seconds.</p></body></html>
"""


class DatabaseOutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.retry_after = int(getattr(settings, "SRMOS_DB_RETRY_AFTER", 5))

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 500:
            outage_log.answered()
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        outage_log.failed(request, exception)
        seconds = self.retry_after
        if wants_json(request):
            response = json_error(
                f"The server is busy (its database is unreachable). Try again in {seconds} s; nothing is lost.",
                503,
                "database_unavailable",
                retry_after=seconds,
            )
        else:
            response = HttpResponse(UNAVAILABLE_PAGE.format(seconds=seconds), status=503)
        response["Retry-After"] = str(seconds)
        response["Cache-Control"] = "no-store"
        response._has_been_logged = True  # said once above, not one traceback per request
        return response

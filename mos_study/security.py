"""Rate limits for the public endpoints (rating, session creation, uploads).

``@rate_limit("rating", token_kwarg="rater_token")`` counts a view's requests per client IP and per URL token in
Django's cache (Redis in production, so every gunicorn worker shares the counters) over fixed windows, with the
rates of ``settings.SRMOS_RATE_LIMITS[scope]`` (e.g. ``{"ip": "1200/m", "token": "120/m"}``). Over the limit the
view is not called: the client gets 429 JSON in the app's error shape (``mos_study.http.json_error``), code
``rate_limited``, saying when to retry in ``message`` and ``retry_after`` (seconds), and a ``Retry-After`` header.
"""

import hashlib
import logging
import math
import time
import weakref
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

from .http import json_error

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PERIOD_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
KEY_WORDS = {"ip": "from this address", "token": "for this link or account"}


def parse_rate(rate):
    """``"120/m"`` -> ``(120, 60)``; ``"off"`` or ``None`` -> ``None`` (no limit)."""
    if rate is None or str(rate).strip().lower() in {"off", "none", ""}:
        return None
    try:
        count, period = str(rate).split("/")
        count, seconds = int(count), PERIODS[period.strip().lower()]
    except (ValueError, KeyError):
        raise ImproperlyConfigured(f"rate {rate!r}: write it as N/s, N/m, N/h or N/d (or 'off')") from None
    if count < 1:
        raise ImproperlyConfigured(f"rate {rate!r}: the count must be at least 1 (or write 'off')")
    return count, seconds


def client_ip(request):
    """The client's address: the socket's, or the one the last trusted proxy saw (SRMOS_PROXY_COUNT)."""
    proxies = getattr(settings, "SRMOS_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        # Each trusted proxy appends the address it saw; entries further left are the client's to forge.
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


# Django builds a new redis.Redis for every call (~0.1 ms: it fills ~170 response callbacks); one per cache client
# (per thread, as Django's caches are) is enough, its connection pool being the cache client's.
_redis_writers = weakref.WeakKeyDictionary()


def redis_writer(backend):
    """The redis.Redis that writes for this RedisCache backend, built once."""
    writer = _redis_writers.get(backend._cache)
    if writer is None:
        writer = _redis_writers[backend._cache] = backend._cache.get_client(write=True)
    return writer


def increment(counters):
    """Add one to each ``(key, timeout)`` counter and return the new counts; atomic, so concurrent requests never
    slip through."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # One round trip for all of a request's counters (INCR + EXPIRE each, pipelined) instead of Django's add,
        # exists and incr per counter. Writes all go to the first Redis server, whatever the key.
        pipeline = redis_writer(backend).pipeline()
        for key, timeout in counters:
            key = backend.make_and_validate_key(key)
            pipeline.incr(key)
            pipeline.expire(key, timeout)
        return pipeline.execute()[::2]
    counts = []
    for key, timeout in counters:
        backend.add(key, 0, timeout=timeout)
        counts.append(backend.incr(key))
    return counts


def hits(scope, identities, rates, now=None):
    """Count one request against each ``{kind: identity}`` under ``{kind: rate}``.

    Returns None when every limit allows it, else ``(kind, seconds until its window ends (>= 1))``.
    """
    now = time.time() if now is None else now
    counted = []  # (kind, count, seconds, window, cache key)
    for kind, identity in identities.items():
        limit = parse_rate(rates.get(kind))
        if limit is None or not identity:
            continue
        count, seconds = limit
        window = int(now // seconds)
        digest = hashlib.sha256(str(identity).encode()).hexdigest()[:32]  # tokens never appear in the cache
        counted.append((kind, count, seconds, window, f"srmos:rl:{scope}:{kind}:{digest}:{window}"))
    if not counted:
        return None
    try:
        used = increment([(key, seconds + 1) for _, _, seconds, _, key in counted])
    except Exception:  # noqa: BLE001 -- a cache outage must not stop raters: fail open, loudly
        logger.exception("rate limit %s: cache unavailable, request allowed", scope)
        return None
    for (kind, count, seconds, window, _), n in zip(counted, used):
        if n > count:
            if n == count + 1:
                logger.warning("rate limit %s/%s reached (%s per %ss)", scope, kind, count, seconds)
            return kind, max(1, math.ceil((window + 1) * seconds - now))
    return None


def too_many(scope, kind, rate, retry_after):
    count, seconds = parse_rate(rate)
    message = (
        f"Too many requests: at most {count} per {PERIOD_WORDS.get(seconds, f'{seconds} s')} "
        f"{KEY_WORDS[kind]}. Try again in {retry_after} s."
    )
    response = json_error(message, 429, "rate_limited", retry_after=retry_after)
    response["Retry-After"] = str(retry_after)
    return response


def rate_limit(scope, *, token_kwarg=None, token_of=None, methods=("POST",)):
    """Limit a view per client IP and per token, see the module docstring.

    The token is the view's ``token_kwarg`` URL argument, or ``token_of(request)`` (e.g. the logged-in user's id).
    Only requests whose method is in ``methods`` count, so reading a page never uses up the budget for answering.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method in methods:
                limits = settings.SRMOS_RATE_LIMITS.get(scope, {})
                token = token_of(request) if token_of else kwargs.get(token_kwarg) if token_kwarg else None
                refused = hits(scope, {"ip": client_ip(request), "token": token}, limits)
                if refused:
                    kind, retry_after = refused
                    return too_many(scope, kind, limits[kind], retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --------------------------------------------------------------------------- login throttling

LOGIN_REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many failed logins</title></head>
<body><h1>Too many failed logins</h1><p>Too many wrong passwords {where}: try again in {seconds} s.</p></body></html>
"""


def login_identities(request):
    username = str(request.POST.get("username", "")).strip().lower()[:150]
    return {"ip": client_ip(request), "token": username}


def login_counters(request, limits, now):
    """``(kind, count, seconds, window, cache key)`` of each failed-login counter that applies to this request."""
    counters = []
    for kind, identity in login_identities(request).items():
        limit = parse_rate(limits.get(kind))
        if limit is None or not identity:
            continue
        count, seconds = limit
        window = int(now // seconds)
        digest = hashlib.sha256(str(identity).encode()).hexdigest()[:32]
        counters.append((kind, count, seconds, window, f"srmos:rl:login:{kind}:{digest}:{window}"))
    return counters


# Counters known (in this process) to be over their limit, with the end of their window: a flood's further attempts
# are refused by LoginFloodMiddleware before sessions, CSRF and the cache are touched. Exact, because a window's count
# only grows: a counter over its limit stays over it until its window ends.
_refused_until = {}
REFUSED_MEMO_SIZE = 10_000


def remember_refusal(key, until):
    if len(_refused_until) >= REFUSED_MEMO_SIZE:
        now = time.time()
        for stale in [k for k, end in _refused_until.items() if end <= now]:
            del _refused_until[stale]
        if len(_refused_until) >= REFUSED_MEMO_SIZE:  # a flood from very many addresses: start again
            _refused_until.clear()
    _refused_until[key] = until


def forget_login_refusals():
    """Drop what this process knows of refused logins (the counters themselves are in the cache)."""
    _refused_until.clear()


def login_refused(kind, retry_after):
    where = "for this account" if kind == "token" else "from this address"
    response = HttpResponse(LOGIN_REFUSED_PAGE.format(where=where, seconds=retry_after), status=429)
    response["Retry-After"] = str(retry_after)
    return response


def known_login_refusal(request):
    """The 429 page when this process already knows that one of the request's login counters is over its limit,
    else None. Costs a dict lookup per counter: no session, no CSRF check, no cache round trip."""
    if not _refused_until:
        return None
    now = time.time()
    for kind, count, _, _, key in login_counters(request, settings.SRMOS_RATE_LIMITS.get("login", {}), now):
        until = _refused_until.get(f"{key}:{count}", 0)
        if until > now:
            return login_refused(kind, max(1, math.ceil(until - now)))
    return None


def throttle_login(view):
    """Wrap a login view: after ``SRMOS_RATE_LIMITS["login"]`` failed attempts per account (``token``) or per
    address (``ip``) in a window, a login POST is answered 429 without the password being checked (no CPU spent on
    hashing), until the window ends. Only failures count: a login that succeeds is never held back by its own
    attempts. A cache outage lets logins through (logged), as the other limits do."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        now = time.time()
        counters = login_counters(request, settings.SRMOS_RATE_LIMITS.get("login", {}), now)
        try:
            used = caches["default"].get_many([key for *_, key in counters]) if counters else {}
        except Exception:  # noqa: BLE001 -- fail open, loudly, like the other limits
            logger.exception("login throttle: cache unavailable, attempt allowed")
            return view(request, *args, **kwargs)
        for kind, count, seconds, window, key in counters:
            if int(used.get(key) or 0) >= count:
                remember_refusal(f"{key}:{count}", (window + 1) * seconds)
                return login_refused(kind, max(1, math.ceil((window + 1) * seconds - now)))
        response = view(request, *args, **kwargs)
        failed = response.status_code == 200 and not request.user.is_authenticated  # the form again, with its error
        if failed and counters:
            try:
                counts = increment([(key, seconds + 1) for _, _, seconds, _, key in counters])
            except Exception:  # noqa: BLE001
                logger.exception("login throttle: cache unavailable, failure not counted")
            else:
                for (kind, count, seconds, window, key), n in zip(counters, counts):
                    if n >= count:
                        remember_refusal(f"{key}:{count}", (window + 1) * seconds)
                    if n == count:
                        logger.warning("login throttle: %s failed logins %s per %ss", count, KEY_WORDS[kind], seconds)
        return response

    return wrapped


# --------------------------------------------------------------------------- consent (new raters) per address

CONSENT_REFUSED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Too many new sessions</title></head>
<body><h1>Too many new sessions from this address</h1><p>At most {count} new raters per {period} may start from one
network address. Try again in {seconds} s. (Running a lab session behind one address? The study's operator can raise
this limit.)</p></body></html>
"""


def consent_limited(request):
    """None, or the 429 page when this address has started ``SRMOS_RATE_LIMITS["consent"]["ip"]`` new raters in the
    current window (sessions that never rate would otherwise reserve a study's images). Counted per consent given."""
    limits = settings.SRMOS_RATE_LIMITS.get("consent", {})
    refused = hits("consent", {"ip": client_ip(request)}, limits)
    if not refused:
        return None
    kind, retry_after = refused
    count, seconds = parse_rate(limits[kind])
    page = CONSENT_REFUSED_PAGE.format(
        count=count, period=PERIOD_WORDS.get(seconds, f"{seconds} s"), seconds=retry_after
    )
    response = HttpResponse(page, status=429)
    response["Retry-After"] = str(retry_after)
    return response

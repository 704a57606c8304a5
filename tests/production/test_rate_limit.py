"""mos_study.security.rate_limit: per-IP and per-token windows, 429 JSON with Retry-After, shared counters."""

import json
import socket
import threading
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import JsonResponse
from django.test import RequestFactory, override_settings

from mos_study import security
from mos_study.security import client_ip, parse_rate, rate_limit

LIMITS = {"rating": {"ip": "5/m", "token": "3/m"}, "session": {"ip": "off"}}


@rate_limit("rating", token_kwarg="rater_token")
def rate_view(request, rater_token):
    return JsonResponse({"ok": True})


@pytest.fixture(autouse=True)
def limits(settings, fresh_cache):
    settings.SRMOS_RATE_LIMITS = LIMITS
    settings.SRMOS_PROXY_COUNT = 0


@pytest.fixture
def frozen_time(monkeypatch):
    """Time fixed 20 s into a minute window; ``advance(s)`` moves it."""
    clock = {"now": 1_800_000_000 - 1_800_000_000 % 60 + 20.0}
    monkeypatch.setattr(security.time, "time", lambda: clock["now"])

    def advance(seconds):
        clock["now"] += seconds

    return advance


def post(token, ip="10.0.0.1", **meta):
    request = RequestFactory().post(f"/r/{token}/rate/", REMOTE_ADDR=ip, **meta)
    return rate_view(request, rater_token=token)


@pytest.mark.parametrize(
    "rate, parsed",
    [("120/m", (120, 60)), ("5/s", (5, 1)), ("30/h", (30, 3600)), ("1/d", (1, 86400)), ("off", None), (None, None)],
)
def test_parse_rate(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["120", "120/minute", "x/m", "0/m", "-1/s"])
def test_parse_rate_refuses_nonsense_clearly(rate):
    with pytest.raises(ImproperlyConfigured, match="N/s, N/m|at least 1"):
        parse_rate(rate)


def test_per_token_limit_gives_429_json_with_retry_after(frozen_time):
    assert [post("tokenA").status_code for _ in range(3)] == [200, 200, 200]
    response = post("tokenA")
    assert response.status_code == 429
    body = json.loads(response.content)
    # 20 s into the window: 40 s until the next one.
    assert response["Retry-After"] == "40" and body["retry_after"] == 40 and body["error"] == "rate_limited"
    assert body["message"] == "Too many requests: at most 3 per minute for this link or account. Try again in 40 s."
    # Another rater behind the same address is not punished for the first one's clicks.
    assert post("tokenB").status_code == 200


def test_per_ip_limit_spans_tokens(frozen_time):
    statuses = [post(f"token{i}").status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]
    assert "from this address" in json.loads(post("token9").content)["message"]
    assert post("token9", ip="10.0.0.2").status_code == 200


def test_window_ends_and_requests_pass_again(frozen_time):
    for _ in range(3):
        post("tokenA")
    assert post("tokenA").status_code == 429
    frozen_time(39)
    assert post("tokenA")["Retry-After"] == "1"
    frozen_time(1)
    assert post("tokenA").status_code == 200


def test_reading_pages_does_not_count():
    factory = RequestFactory()
    for _ in range(10):
        assert rate_view(factory.get("/r/t/rate/", REMOTE_ADDR="10.0.0.1"), rater_token="t").status_code == 200
    assert post("t").status_code == 200


def test_off_disables_a_limit(settings):
    settings.SRMOS_RATE_LIMITS = {"rating": {"ip": "off", "token": "off"}}
    assert all(post("t").status_code == 200 for _ in range(50))


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(settings, frozen_time):
    # A client cannot dodge the per-IP limit by inventing X-Forwarded-For addresses.
    statuses = [post(f"t{i}", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code for i in range(6)]
    assert statuses[-1] == 429
    settings.SRMOS_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "203.0.113.7"  # what our proxy saw; the forged left entry is ignored
    settings.SRMOS_PROXY_COUNT = 2
    assert client_ip(request) == "6.6.6.6"


def test_cache_outage_fails_open(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(security, "increment", broken)
    assert all(post("t").status_code == 200 for _ in range(10))


@pytest.mark.redis
def test_redis_counters_are_exact_under_concurrent_requests(require_redis):
    """Eight threads, 40 requests on one token, limit 3: exactly 3 pass, as across gunicorn workers on Redis."""
    redis_cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": require_redis}}
    token = f"shared-{uuid.uuid4().hex}"  # unique keys: the Redis database is shared, so never flush it
    statuses = []
    lock = threading.Lock()

    def worker(index):
        for _ in range(5):
            status = post(token, ip=f"10.{index}.{uuid.uuid4().int % 250}.1").status_code
            with lock:
                statuses.append(status)

    with override_settings(CACHES=redis_cache):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses.count(200) == 3 and statuses.count(429) == 37
    with override_settings(CACHES=redis_cache):
        # The counter expires with its window, and Django's own cache API reads the same key.
        from django.core.cache import caches

        backend = caches["default"]
        keys = backend._cache.get_client(write=False).keys(backend.make_key("srmos:rl:rating:token:*"))
        assert keys and all(0 < backend._cache.get_client(write=False).ttl(k) <= 61 for k in keys)
        window_key = keys[0].decode().split(":", 2)[2]
        assert backend.get(window_key) in range(1, 41)


def test_token_of_limits_per_account(frozen_time):
    @rate_limit("rating", token_of=lambda request: request.user_id)
    def view(request):
        return JsonResponse({"ok": True})

    def call(user_id, ip):
        request = RequestFactory().post("/upload/", REMOTE_ADDR=ip)
        request.user_id = user_id
        return view(request).status_code

    # The same account from three addresses: its own limit (3/m) holds.
    assert [call(7, f"10.9.0.{i}") for i in range(4)] == [200, 200, 200, 429]
    assert call(8, "10.9.0.9") == 200


def test_unreachable_redis_fails_open(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    dead = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    }
    with override_settings(CACHES=dead):
        assert post("t").status_code == 200
    assert "cache unavailable, request allowed" in caplog.text

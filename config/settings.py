"""Django settings for srmos, read from the environment (see README "Configuration").

Defaults give the embedded quick start: SQLite in ``var/``, tasks run in-process, DEBUG off.
``SRMOS_PRODUCTION=1`` switches on the production checks: a secret key must come from the environment.
"""

import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sr_models import paths

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env_bool("SRMOS_PRODUCTION")
DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SRMOS_PRODUCTION is set: DJANGO_SECRET_KEY must come from the environment.")
    # Development only: a per-checkout random key kept outside version control.
    _key_file = BASE_DIR / "var" / "secret_key"
    if not _key_file.exists():
        import secrets

        _key_file.parent.mkdir(parents=True, exist_ok=True)
        _key_file.write_text(secrets.token_urlsafe(50))
    SECRET_KEY = _key_file.read_text().strip()
elif PRODUCTION and SECRET_KEY.startswith("change-me"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is still the placeholder from docker/.env.example: set a random one.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# The rating page's script gets a JSON 403 it can show ("reload the page"), browsers the usual page.
CSRF_FAILURE_VIEW = "mos_study.views.errors.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mos_study",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mos_study.middleware.SecurityHeadersMiddleware",  # Content-Security-Policy, Permissions-Policy
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mos_study.middleware.RefuseNulBytesMiddleware",  # 400 before any query (PostgreSQL refuses NUL in text)
    "mos_study.middleware.LoginFloodMiddleware",  # a login flood already refused: 429 before sessions and CSRF
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "mos_study.middleware.DatabaseOutageMiddleware",  # innermost: a view's lost database is a 503, logged once
]
if env_bool("SRMOS_SERVER_TIMING"):  # load tests: where each request's time goes (mos_study/server_timing.py)
    MIDDLEWARE.insert(0, "mos_study.server_timing.ServerTimingMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'srmos.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        # A persistent connection the server dropped (restart, pg_terminate_backend) is replaced, not used.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("SRMOS_STATIC_ROOT", BASE_DIR / "staticfiles"))
# Outside production WhiteNoise serves the app's static files straight from their folders, so the quick start's
# `runserver` (DEBUG off) needs no collectstatic; production serves the collected, hashed copies.
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("SRMOS_MEDIA_ROOT", BASE_DIR / "var" / "media"))
LOGIN_URL = "mos_study:login"

# srmos data locations (see docs/ARCHITECTURE.md).
SRMOS_DATA_DIR = paths.data_dir()  # $SRMOS_DATA_DIR, else data/datasets: the command lines' default too
SRMOS_WEIGHTS_DIR = paths.weights_dir()  # $SRMOS_WEIGHTS_DIR, else var/weights: the command lines' default too
SRMOS_OUTPUT_DIR = Path(os.environ.get("SRMOS_OUTPUT_DIR", BASE_DIR / "var" / "benchmark"))

# Cache (rate-limit counters): per process by default; CACHE_URL=redis://... shares it between gunicorn workers.
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL and not CACHE_URL.startswith("locmem://"):
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r}: use redis://host:port/db (or leave it unset).")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "srmos"}}

# Rate limits of mos_study.security.rate_limit, per scope and key ("N/s", "N/m", "N/h"; "off" disables one).
# SRMOS_RATE_LIMITS (JSON) overrides single entries, e.g. '{"rating": {"ip": "off"}}' for a load test.
SRMOS_RATE_LIMITS = {
    "rating": {"ip": "1200/m", "token": "120/m"},
    "session": {"ip": "30/m", "token": "600/m"},
    "upload": {"ip": "30/h", "token": "30/h"},
    # Consent (a new rater): per address, so one visitor cannot reserve a study's images with empty sessions. A lab
    # whose raters share one NAT address raises it: SRMOS_RATE_LIMITS='{"consent": {"ip": "500/h"}}'.
    "consent": {"ip": "20/h"},
    # Failed logins (/login/ and /admin/login/), per account and per address; over the limit the password is not
    # even checked (each check costs ~0.3 s of CPU with PBKDF2).
    "login": {"ip": "30/h", "token": "10/h"},
}
try:
    _overrides = json.loads(os.environ.get("SRMOS_RATE_LIMITS", "") or "{}")
    for _scope, _limits in _overrides.items():
        SRMOS_RATE_LIMITS.setdefault(_scope, {}).update(_limits)
except (ValueError, AttributeError) as _error:
    raise ImproperlyConfigured(f'SRMOS_RATE_LIMITS must be JSON like {{"rating": {{"ip": "off"}}}}: {_error}')
# How many reverse proxies in front append to X-Forwarded-For (0: use the socket's address, never the header).
SRMOS_PROXY_COUNT = int(os.environ.get("SRMOS_PROXY_COUNT", "0"))

# Request and upload size limits (bodies above DATA_UPLOAD_MAX_MEMORY_SIZE are refused with 400).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("SRMOS_MAX_BODY_BYTES", 2_621_440))
SRMOS_MAX_UPLOAD_BYTES = int(os.environ.get("SRMOS_MAX_UPLOAD_BYTES", 20 * 1024 * 1024))
DATA_UPLOAD_MAX_NUMBER_FILES = int(os.environ.get("SRMOS_MAX_UPLOAD_FILES", "200"))

# Security headers on every response (mos_study.middleware; unset: its DEFAULT_CSP and DEFAULT_PERMISSIONS_POLICY,
# empty: no header). Scripts only from our own static files (no inline script anywhere); inline styles stay allowed
# (the admin and the progress bars use style attributes).
SRMOS_CSP = os.environ.get("SRMOS_CSP")
SRMOS_PERMISSIONS_POLICY = os.environ.get("SRMOS_PERMISSIONS_POLICY")
# Seconds a rater's page waits before retrying while the database is unreachable (503 Retry-After).
SRMOS_DB_RETRY_AFTER = int(os.environ.get("SRMOS_DB_RETRY_AFTER", "5"))

# Celery: without a broker, tasks run in-process (the embedded quick start).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL or None)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # Eager tasks still take a producer from kombu: an in-memory transport, so none looks for a broker on localhost
    # (which printed "No hostname was supplied" in the quick start).
    CELERY_BROKER_URL = "memory://localhost/"  # a hostname: kombu warns when a URL has none
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task taken by a worker that then died (SIGKILL, power loss) goes back to the queue once it has been unacknowledged
# this many seconds; live workers look for such tasks every unacked_restore_interval seconds (kombu's default sweep
# is only every 10 x 10 s). Keep the timeout above the longest job (one method on one image: seconds on a GPU, under
# a minute on a CPU for DIV2K): a job running longer is delivered twice (harmless, jobs are idempotent, but wasted).
# 90 + 5 s: a killed worker's jobs run again within about 100 s (docs/deployment.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("SRMOS_TASK_VISIBILITY_TIMEOUT", "90")),
    "unacked_restore_interval": 5,
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": 30,  # a worker killed while sweeping holds the sweep's lock this long (kombu: 300 s)
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A result backend (Redis) lost while run_benchmark waits ends the run at once in one line (mos_study.tasks), instead
# of 20 reconnection attempts with a log line each.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"max_retries": 1, "interval_start": 0.5}}
# A running benchmark run whose command sent no heartbeat for this long (it stamps one every 30 s) was killed: it is
# shown as failed, and workers skip its jobs (mos_study.services.benchmark).
SRMOS_RUN_STALE_AFTER_S = int(os.environ.get("SRMOS_RUN_STALE_AFTER_S", "300"))
# Benchmark jobs of one method sent to a worker as one task (upscaled as one batch; mos_study.tasks): e.g. 8 for GPU
# workers; 1 on CPUs, where batching gains nothing (perf.benchmark_throughput). A task must end within the
# visibility timeout above.
SRMOS_JOBS_PER_TASK = int(os.environ.get("SRMOS_JOBS_PER_TASK", "1"))
# The dashboard's results job (mos_study.services.results_cache): it runs this long after the first new rating (one
# job per burst), and a job queued this long ago without finishing was lost with its worker and is queued again.
SRMOS_RESULTS_DEBOUNCE_S = float(os.environ.get("SRMOS_RESULTS_DEBOUNCE_S", "10"))
SRMOS_RESULTS_JOB_LOST_S = float(os.environ.get("SRMOS_RESULTS_JOB_LOST_S", "900"))

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SRMOS_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SRMOS_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SRMOS_LOG_LEVEL", "WARNING")},
    # Refused hosts, bad CSRF tokens and rate limits are worth seeing in production logs.
    "loggers": {"django.security": {"level": "WARNING"}, "mos_study.security": {"level": "WARNING"}},
}

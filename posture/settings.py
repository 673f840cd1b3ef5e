"""Django settings: everything comes from environment variables (listed in .env.example).

With no environment at all the project runs on an *embedded default*: SQLite and a
filesystem Celery broker under ``var/``, with development keys generated once and kept in
``var/dev-keys.json``. ``POSTURE_ENV=production`` refuses to start without real keys.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


# --- typed env helpers: a bad value raises ImproperlyConfigured naming the variable -------
def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


_RATE = re.compile(r"(\d+)/(s|sec|second|m|min|minute|h|hour|d|day)")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate ("60/min", "10/s", "5000/hour"), or None for "off"."""
    raw = os.environ.get(name, "").strip() or default
    if raw.lower() == "off":
        return None
    match = _RATE.fullmatch(raw)
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a rate such as 60/min, 10/s, 5000/hour or off")
    return raw


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


POSTURE_ENV = env_str("POSTURE_ENV", "development")
if POSTURE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"POSTURE_ENV={POSTURE_ENV!r} must be development or production")
PRODUCTION = POSTURE_ENV == "production"

# Empty means the default: an env file copied from .env.example must not move it to the cwd.
VAR_DIR = Path(env_str("POSTURE_VAR_DIR") or BASE_DIR / "var")


def _development_keys() -> dict[str, str]:
    """Keys generated once per checkout and kept under var/, so restarts keep sessions and
    can still decrypt stored TLS material. Never used in production."""
    path = VAR_DIR / "dev-keys.json"
    if not path.exists():
        # The run command starts web, worker and beat at once on a fresh checkout: each writes
        # its candidate keys to a file of its own, then links it into place, which succeeds for
        # exactly one of them; all then read the winner's (never a half-written file).
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        keys = {"secret_key": secrets.token_urlsafe(50), "encryption_key": Fernet.generate_key().decode()}
        candidate = VAR_DIR / f".dev-keys.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(keys, fh)
            os.link(candidate, path)
        except FileExistsError:
            pass  # another process was first: its keys are the checkout's
        finally:
            candidate.unlink(missing_ok=True)
    return json.loads(path.read_text())


SECRET_KEY = env_str("POSTURE_SECRET_KEY")
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
ENCRYPTION_KEYS = env_list("POSTURE_ENCRYPTION_KEY")
if PRODUCTION:
    missing = [n for n, v in (("POSTURE_SECRET_KEY", SECRET_KEY), ("POSTURE_ENCRYPTION_KEY", ENCRYPTION_KEYS)) if not v]
    if missing:
        raise ImproperlyConfigured(f"POSTURE_ENV=production needs {', '.join(missing)} (see .env.example)")
elif not SECRET_KEY or not ENCRYPTION_KEYS:
    _keys = _development_keys()
    SECRET_KEY = SECRET_KEY or _keys["secret_key"]
    ENCRYPTION_KEYS = ENCRYPTION_KEYS or [_keys["encryption_key"]]
for _key in ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError:
        raise ImproperlyConfigured(
            "POSTURE_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes); "
            'make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
        ) from None

# DEBUG only when asked for: it shows every URL pattern and settings on error pages.
DEBUG = env_bool("POSTURE_DEBUG", default=False)
ALLOWED_HOSTS = env_list("POSTURE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("POSTURE_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",  # tokens: posture's own, hashed (posture/models/tokens.py), not rest_framework.authtoken
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",  # login throttling (django-axes): see "login throttling" below
    "csp",
    "posture",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "posture.urls"
WSGI_APPLICATION = "posture.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "posture.roles.context",  # posture_roles: which nav links to offer
            ],
        },
    },
]

# --- database: DATABASE_URL (PostgreSQL in production) or the embedded SQLite file -------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # PostgreSQL's JIT compiles any query its planner costs high, which the read side's
        # short indexed queries over big tables often are: 0.5-1 s of compiling for a 100 ms
        # page on the seeded year. Off unless DATABASE_URL's options say otherwise.
        opts = DATABASES["default"].setdefault("OPTIONS", {})
        if "jit" not in opts.get("options", ""):
            opts["options"] = (opts.get("options", "") + " -c jit=off").strip()
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "posture.sqlite3",
            # WAL + IMMEDIATE: web, worker and beat share one file without "database is locked".
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE", "timeout": 30},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# With DEBUG off (the default) static files are served by whitenoise; outside production it
# also finds them where they live, so `runserver` works before any collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = VAR_DIR / "media"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- login throttling (django-axes) ---------------------------------------------------------
# Failed logins on /login/ and /admin/login/ are counted per account and per client address
# in the database (AxesDatabaseHandler: shared by every web worker, unlike a per-process
# cache). After POSTURE_LOGIN_FAILURES failures within POSTURE_LOGIN_COOLOFF minutes, either
# counter refuses further logins, even with the right password, until the cool-off passes;
# each refused attempt restarts it. A successful login clears the counters it matches.
# `python manage.py axes_reset` (or axes_reset_username NAME) lifts a lockout at once.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out attempts before checking passwords
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("POSTURE_LOGIN_FAILURES", 5, minimum=1)
POSTURE_LOGIN_COOLOFF = env_int("POSTURE_LOGIN_COOLOFF", 15, minimum=1)  # minutes
AXES_COOLOFF_TIME = timedelta(minutes=POSTURE_LOGIN_COOLOFF)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either counter locks
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no "AXES: BEGIN ..." banner on every start (bin/run's errors are one line)
AXES_LOCKOUT_CALLABLE = "posture.views.login_locked_out"
# Client address: REMOTE_ADDR by default. Behind a reverse proxy REMOTE_ADDR is the proxy, so
# every client would share one counter: set POSTURE_CLIENT_IP_HEADER to the request.META key
# the proxy sets (e.g. HTTP_X_FORWARDED_FOR); the right-most entry, the one the nearest proxy
# appended, is used. Only set it when clients cannot reach gunicorn except through the proxy,
# or they choose their own address.
POSTURE_CLIENT_IP_HEADER = env_str("POSTURE_CLIENT_IP_HEADER").strip()
if POSTURE_CLIENT_IP_HEADER and not POSTURE_CLIENT_IP_HEADER.replace("_", "").isalnum():
    raise ImproperlyConfigured(
        f"POSTURE_CLIENT_IP_HEADER={POSTURE_CLIENT_IP_HEADER!r} must be a request.META key such as HTTP_X_FORWARDED_FOR"
    )
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    (POSTURE_CLIENT_IP_HEADER, "REMOTE_ADDR") if POSTURE_CLIENT_IP_HEADER else ("REMOTE_ADDR",)
)
AXES_IPWARE_PROXY_ORDER = "right-most"

# --- attestation files ---------------------------------------------------------------------
# Stored under MEDIA_ROOT, which no URL serves: readers fetch them through an authenticated
# view (/api/v1/attestations/{id}/file/). Uploads are limited in size and to an allow-list
# of types recognised by their first bytes (posture/uploads.py).
POSTURE_ATTESTATION_MAX_BYTES = env_int("POSTURE_ATTESTATION_MAX_BYTES", 10 * 1024 * 1024, minimum=1)
# Largest evidence package accepted for verification over the API (bytes).
POSTURE_VERIFY_MAX_BYTES = env_int("POSTURE_VERIFY_MAX_BYTES", 512 * 1024 * 1024, minimum=65536)

# --- HTTPS: posture speaks plain HTTP; TLS is terminated by a proxy in front of it ---------
# POSTURE_HTTPS=true: browsers reach posture over HTTPS, so session and CSRF cookies are sent
# over HTTPS only (on by default in production; compose.yml turns it off so a first run on
# http://localhost:8000 can log in). Over plain HTTP with it on, no login can succeed.
HTTPS = env_bool("POSTURE_HTTPS", default=PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# POSTURE_TRUST_X_FORWARDED_PROTO=true: the proxy sets X-Forwarded-Proto (and overwrites any a
# client sent), so posture can tell HTTPS requests apart and, with POSTURE_HTTPS, redirects
# plain HTTP to HTTPS itself. Never turn it on without such a proxy: clients could forge it.
if env_bool("POSTURE_TRUST_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = HTTPS

# --- Content-Security-Policy (django-csp): only our own scripts, styles, images and fonts ---
# No inline script or style runs: the pages, the admin and Swagger UI (its start-up script
# served as a file, SpectacularSwaggerSplitView) need none. data: images are Swagger UI's icons.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- API throttling (posture/api/throttling.py) ------------------------------------------
# Per account (token or session) and, for requests without valid credentials (none, or a
# wrong/expired/revoked token), per client address (POSTURE_CLIENT_IP_HEADER applies, as for
# logins). Refused requests get 429 with Retry-After. "off" disables one.
POSTURE_API_THROTTLE_USER = env_rate("POSTURE_API_THROTTLE_USER", "1200/min")
POSTURE_API_THROTTLE_ANON = env_rate("POSTURE_API_THROTTLE_ANON", "60/min")

# --- cache: shared by every process (throttle counts) --------------------------------------
# Redis when REDIS_URL is set; otherwise a table in the database (created by migration 0006,
# on SQLite and PostgreSQL alike). Never the per-process memory cache: with several gunicorn
# workers each would count on its own and a limit would be multiplied by the worker count.
REDIS_URL = env_str("REDIS_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": "posture"}
    if REDIS_URL else
    {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "posture_cache",
     "OPTIONS": {"MAX_ENTRIES": 10000}}
}

REST_FRAMEWORK = {
    # Personal API tokens (Authorization: Bearer pst_...), the browser's session (with CSRF),
    # and last a class that authenticates nobody but throttles requests without credentials
    # before permissions refuse them (DRF would only throttle after permissions).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "posture.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "posture.api.throttling.ThrottleAnonymous",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["posture.api.throttling.UserThrottle"],
    # Every error as {"error": {"status", "code", "message", "fields"?}} (posture/api/errors.py).
    "EXCEPTION_HANDLER": "posture.api.errors.exception_handler",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON refused past 64 levels of nesting (posture/api/parsers.py): deep bodies used to be a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "posture.api.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "posture.api.pagination.Pagination",
    # django-filter, refusing unknown query parameters and bad values with a 400 that lists the
    # accepted ones (posture/api/filters.py).
    "DEFAULT_FILTER_BACKENDS": ["posture.api.filters.StrictFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "posture.api.schema.AutoSchema",  # documents every error answer
}
SPECTACULAR_SETTINGS = {
    "TITLE": "posture API",
    "DESCRIPTION": "Docker fleet compliance posture: hosts, scans, verdicts, exceptions, attestations.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema describes every endpoint: only accounts that can log in may read it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # A token's state appears in two serializers (listing and the answer to creation); scan
    # states in the scan list and detail and in filters; flip kinds in scan diffs.
    "ENUM_NAME_OVERRIDES": {"TokenStateEnum": "posture.models.tokens.TokenState",
                            "ScanStateEnum": "posture.choices.ScanState",
                            "FlipKindEnum": "posture.queries.diffs.FLIP_KINDS"},
}

# --- Celery: Redis (or any broker URL) when configured, else an embedded filesystem broker --
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
EMBEDDED_BROKER = not CELERY_BROKER_URL
if EMBEDDED_BROKER:
    CELERY_BROKER_URL = "filesystem://localhost//"

# --- scanning ------------------------------------------------------------------------------
POSTURE_DOCKER_TIMEOUT = env_int("POSTURE_DOCKER_TIMEOUT", 30, minimum=1)  # seconds per Docker call
POSTURE_SCAN_TIMEOUT = env_int("POSTURE_SCAN_TIMEOUT", 900, minimum=10)  # seconds per whole scan
# A running scan whose worker has not heartbeaten for this long may be taken over.
POSTURE_SCAN_LEASE = env_int("POSTURE_SCAN_LEASE", max(60, 2 * POSTURE_DOCKER_TIMEOUT), minimum=2)
POSTURE_DEFAULT_INTERVAL = env_int("POSTURE_DEFAULT_INTERVAL", 1440, minimum=1)  # minutes between scans
POSTURE_BEAT_SECONDS = env_int("POSTURE_BEAT_SECONDS", 30, minimum=1)  # how often beat looks for due hosts
POSTURE_PROBE_IMAGE = env_str("POSTURE_PROBE_IMAGE", "busybox:latest")  # local image, never pulled
# Largest answer accepted from a Docker host for one API call (bytes); a scan that gets more fails.
POSTURE_MAX_RESPONSE_BYTES = env_int("POSTURE_MAX_RESPONSE_BYTES", 16 * 1024 * 1024, minimum=65536)
# Seconds a worker may spend rendering one report (PDF, CSV or package) before Celery's soft
# time limit stops it (the hard limit is 60 s later); independent of the scan timeout.
POSTURE_REPORT_TIMEOUT = env_int("POSTURE_REPORT_TIMEOUT", 1800, minimum=10)
# Rollups and listings computed by posture/queries are cached on a key of what they stand on
# (never stale); off computes every answer afresh (debugging, benchmarks of the computation).
POSTURE_READ_CACHE = env_bool("POSTURE_READ_CACHE", True)
# Broker visibility timeout (Redis): an unacknowledged scan message is redelivered after it.
POSTURE_BROKER_VISIBILITY_TIMEOUT = env_int(
    "POSTURE_BROKER_VISIBILITY_TIMEOUT", POSTURE_SCAN_TIMEOUT + 300, minimum=1
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("POSTURE_LOG_LEVEL", "INFO")},
    # "django" is listed so its own console handler (from Django's default logging) is dropped:
    # with it every "Bad Request" was printed twice, once by it and once by the root handler.
    "loggers": {"django": {"handlers": [], "level": "INFO"}, "django.db.backends": {"level": "INFO"},
                # WeasyPrint (the PDF report) logs every layout step at INFO
                "weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

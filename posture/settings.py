"""Django settings: everything comes from environment variables (listed in .env.example).

With no environment at all the project runs on an *embedded default*: SQLite and a
filesystem Celery broker under ``var/``, with development keys generated once and kept in
``var/dev-keys.json``. ``POSTURE_ENV=production`` refuses to start without real keys.
"""

from __future__ import annotations

import json
import os
import secrets
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


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


POSTURE_ENV = env_str("POSTURE_ENV", "development")
if POSTURE_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"POSTURE_ENV={POSTURE_ENV!r} must be development or production")
PRODUCTION = POSTURE_ENV == "production"

VAR_DIR = Path(env_str("POSTURE_VAR_DIR", str(BASE_DIR / "var")))


def _development_keys() -> dict[str, str]:
    """Keys generated once per checkout and kept under var/, so restarts keep sessions and
    can still decrypt stored TLS material. Never used in production."""
    path = VAR_DIR / "dev-keys.json"
    if path.exists():
        return json.loads(path.read_text())
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    keys = {"secret_key": secrets.token_urlsafe(50), "encryption_key": Fernet.generate_key().decode()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh)
    return keys


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

DEBUG = env_bool("POSTURE_DEBUG", default=not PRODUCTION)
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
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "posture",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
MEDIA_ROOT = VAR_DIR / "media"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

if PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("POSTURE_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "posture.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

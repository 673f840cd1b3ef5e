"""API throttling: per account (token or session) and per client address (no valid credentials).

Rates come from POSTURE_API_THROTTLE_USER / POSTURE_API_THROTTLE_ANON ("1200/min", "60/min",
or "off"), read when a request is checked, so a test's override_settings applies.

Counts live in the default cache (settings.CACHES): Redis when REDIS_URL is set, else the
database cache table (migration 0006), so every gunicorn worker shares one count; a
per-process memory cache would multiply every limit by the number of workers. If the cache is
down, requests are let through (logged): throttling protects the service, it must not stop it.

Why the anonymous limit is applied during authentication (``ThrottleAnonymous``, listed last in
DEFAULT_AUTHENTICATION_CLASSES, and on every refused token) rather than by DRF's throttle step:
DRF checks permissions before throttles, so a request without credentials is refused 401
before any throttle runs, and token guessing would never be slowed down.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError
from redis.exceptions import RedisError
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, Throttled
from rest_framework.throttling import SimpleRateThrottle

log = logging.getLogger(__name__)
_PERIOD_WORDS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def client_address(request) -> str:
    """The client's address as login throttling (django-axes) sees it: REMOTE_ADDR, or the
    right-most entry of POSTURE_CLIENT_IP_HEADER behind a proxy. Never a client-chosen
    X-Forwarded-For (DRF's default would take it, letting anyone pick a fresh bucket)."""
    header = settings.POSTURE_CLIENT_IP_HEADER
    if header:
        entries = [part.strip() for part in request.META.get(header, "").split(",") if part.strip()]
        if entries:
            return entries[-1]
    return request.META.get("REMOTE_ADDR") or "unknown"


class TooManyRequests(Throttled):
    """429 with our message as is (DRF's Throttled appends "Expected available in N seconds.")."""

    def __init__(self, wait: int, detail: str) -> None:
        APIException.__init__(self, detail, "throttled")
        self.wait = wait


class PostureThrottle(SimpleRateThrottle):
    """A sliding-window count in the shared cache; ``describe`` names who is limited."""

    setting = ""
    describe = ""

    def __init__(self) -> None:
        self.rate = getattr(settings, self.setting)
        self.num_requests, self.duration = self.parse_rate(self.rate)

    @property
    def cache(self):  # looked up per request: override_settings(CACHES=...) applies
        return caches["default"]

    def get_ident(self, request) -> str:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        """True, or raises Throttled with a message naming the limit (DRF's own refusal
        would say only "Request was throttled")."""
        try:
            allowed = super().allow_request(request, view)
        except (RedisError, DatabaseError, OSError) as exc:
            log.warning("API throttling skipped, the cache is unavailable: %s", exc)
            return True
        if not allowed:
            raise self.refusal()
        return True

    def wait(self) -> float:
        """Seconds until one more request fits in the window (at least 1)."""
        if len(self.history) < self.num_requests:
            return 1
        oldest_counted = self.history[self.num_requests - 1]
        return max(1, math.ceil(oldest_counted + self.duration - self.now))

    def refusal(self) -> TooManyRequests:
        wait = self.wait()
        period = _PERIOD_WORDS.get(self.duration, f"{self.duration} seconds")
        return TooManyRequests(wait, (
            f"too many requests {self.describe}: at most {self.num_requests} per {period}; "
            f"try again in {wait} second{'s' if wait != 1 else ''}"))


class UserThrottle(PostureThrottle):
    """Per account, whichever way it authenticated (a person's tokens share one budget)."""

    scope = "user"
    setting = "POSTURE_API_THROTTLE_USER"
    describe = "for this account"

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None  # anonymous requests are limited by ThrottleAnonymous
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AnonThrottle(PostureThrottle):
    """Per client address, for requests without valid credentials (including wrong tokens)."""

    scope = "anon"
    setting = "POSTURE_API_THROTTLE_ANON"
    describe = "without valid credentials from this address"

    def get_cache_key(self, request, view) -> str:
        # No request.user here: this runs while authentication is still deciding it.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_anonymous(request) -> None:
    """Count one request without valid credentials; Throttled (429) past the limit."""
    AnonThrottle().allow_request(request, None)


class ThrottleAnonymous(BaseAuthentication):
    """Last of the authentication classes: reached only when no credentials were given (or a
    session was not logged in). Authenticates nobody; counts the request against the client
    address's anonymous limit before permissions refuse it (see the module docstring)."""

    def authenticate(self, request):
        throttle_anonymous(request)
        return None


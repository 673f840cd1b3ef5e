"""API authentication by personal token: ``Authorization: Bearer pst_...`` (``Token pst_...`` is
accepted too, the scheme DRF's old plain tokens used).

A refused token is a 401 that says why ("token expired on 2026-12-01 00:00 UTC", "token
revoked on ...", "invalid token") and counts against the client address's anonymous limit,
so guessing is throttled. The token's owner is the request's user: roles apply exactly as on
the pages (posture/api/permissions.py). ``request.auth`` is the ApiToken.
"""

from __future__ import annotations

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from posture.api.throttling import throttle_anonymous
from posture.jobs import tokens
from posture.models import ApiToken

KEYWORDS = (b"bearer", b"token")
#: DRF's rest_framework.authtoken keys: 40 hex characters, stored in clear; no longer accepted.
_LEGACY_KEY = re.compile(r"[0-9a-f]{40}")
LEGACY_MESSAGE = ("this is an old plain API token, which posture no longer accepts (they were stored in clear): "
                  "create a personal API token on the /tokens/ page or with manage.py create_token")


class ApiTokenAuthentication(BaseAuthentication):
    """Personal API tokens (posture.models.ApiToken), checked by their hash."""

    def authenticate(self, request) -> tuple[object, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None  # no token: session authentication may still apply
        if len(header) != 2:
            self._refuse(request, "invalid Authorization header: expected 'Bearer <token>' (one token, no spaces)",
                         "token_invalid")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            self._refuse(request, "invalid token: not a posture API token (pst_...)", "token_invalid")
        if _LEGACY_KEY.fullmatch(raw):
            self._refuse(request, LEGACY_MESSAGE, "token_invalid")
        try:
            token = tokens.authenticate(raw)
        except tokens.TokenRefused as exc:
            self._refuse(request, str(exc), exc.code)
        return token.owner, token

    @staticmethod
    def _refuse(request, message: str, code: str):
        throttle_anonymous(request)  # 429 instead, once this address has failed too often
        raise AuthenticationFailed(message, code=code)

    def authenticate_header(self, request) -> str:
        """Makes a missing or refused credential a 401 (not 403), as RFC 6750 asks."""
        return 'Bearer realm="posture"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme for ApiTokenAuthentication."""

    target_class = "posture.api.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "pst_<prefix>_<secret>",
                "description": "A personal API token from /tokens/ or manage.py create_token."}


class ThrottleAnonymousScheme(OpenApiAuthenticationExtension):
    """ThrottleAnonymous authenticates nobody: no security scheme of its own."""

    target_class = "posture.api.throttling.ThrottleAnonymous"
    name: list[str] = []

    def get_security_requirement(self, auto_schema):
        return None

    def get_security_definition(self, auto_schema):
        return []

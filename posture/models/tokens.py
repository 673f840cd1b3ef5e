"""ApiToken: a personal API token, stored hashed.

A token reads ``pst_<prefix>_<secret>``: ``pst_`` lets secret scanners (GitHub push
protection, gitleaks, trufflehog) recognise a leaked one; the 8-character *prefix* is stored in
clear, unique, to find the row and to show which token is which; the 40-character *secret*
(base62 from ``secrets``: about 238 bits) is never stored, only the SHA-256 of the whole token.

Why SHA-256 and not a slow password hash (PBKDF2, Argon2): slow hashes protect *guessable*
secrets, people's passwords, from offline guessing. A 238-bit random secret cannot be
guessed, so one fast hash already makes a stolen table useless, whereas a slow hash would cost
~100 ms of CPU on every API request (and hand anyone a cheap way to load the server).

Tokens are revoked, never deleted: the row (who, when, by whom) is part of the access record,
next to the ``token.created``/``token.revoked`` audit events.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

PREFIX = "pst_"
PREFIX_LENGTH = 8
SECRET_LENGTH = 40
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
#: last_used_at is written at most this often per token: not one UPDATE per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def token_string(prefix: str, secret: str) -> str:
    return f"{PREFIX}{prefix}_{secret}"


def hash_token(token: str) -> str:
    """Hex SHA-256 of the whole token string (see the module docstring for why not slower)."""
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, else None (no database lookup for garbage)."""
    if not token.startswith(PREFIX):
        return None
    prefix, sep, secret = token[len(PREFIX):].partition("_")
    if (not sep or len(prefix) != PREFIX_LENGTH or len(secret) != SECRET_LENGTH
            or not set(prefix) <= set(_PREFIX_ALPHABET) or not set(secret) <= set(_SECRET_ALPHABET)):
        return None
    return prefix, secret


class TokenState(models.TextChoices):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ApiToken(models.Model):
    """A personal API token: acts as its owner, with the owner's roles (never more)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="what the token is for, e.g. 'nightly export'")
    key_prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False,
                                  help_text="shown to tell tokens apart and used to find the row; not secret")
    secret_hash = models.CharField(max_length=64, editable=False, help_text="SHA-256 of the token; the token itself is never stored")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: until revoked")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="updated at most once a minute")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="apitoken_owner_created")]

    def __str__(self) -> str:
        return f"{self.display_prefix} ({self.name})"

    @property
    def display_prefix(self) -> str:
        """What people see: ``pst_ab12cd34``, the start of the token they hold."""
        return f"{PREFIX}{self.key_prefix}"

    def state_at(self, now: datetime | None = None) -> TokenState:
        if self.revoked_at is not None:
            return TokenState.REVOKED
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return TokenState.EXPIRED
        return TokenState.ACTIVE

    @property
    def state(self) -> TokenState:
        return self.state_at()

"""Personal API tokens: create, revoke, authenticate. Shared by the API, the /tokens/ page and
``manage.py create_token``, so every path validates alike and leaves the same audit event.

The token is returned once, by ``create_token``; only its SHA-256 is stored
(posture/models/tokens.py says why a fast hash is right for random tokens)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from posture import roles
from posture.models import ApiToken
from posture.models.audit import record
from posture.models.tokens import (
    LAST_USED_PRECISION,
    hash_token,
    new_prefix,
    new_secret,
    split_token,
    token_string,
)

NAME_MAX = 100
EXPIRY_MAX_DAYS = 3650
_DUMMY_HASH = hash_token("pst_00000000_" + "0" * 40)


class TokenRefused(Exception):
    """Authentication refused; ``code`` is a stable slug, ``str()`` the message for people."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``token`` is the only copy of the secret there will ever be."""

    row: ApiToken
    token: str


def clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": ["give the token a name that says what it is for"]})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": [f"at most {NAME_MAX} characters (got {len(name)})"]})
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError({"name": ["no control characters (tabs, newlines) in a token name"]})
    return name


def expiry(expires_at: datetime | None = None, expires_in_days: int | None = None,
           now: datetime | None = None) -> datetime | None:
    """The expiry from either a moment or a number of days (not both); None: until revoked."""
    now = now or timezone.now()
    if expires_at is not None and expires_in_days is not None:
        raise ValidationError({"expires_at": ["give expires_at or expires_in_days, not both"]})
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= EXPIRY_MAX_DAYS:
            raise ValidationError({"expires_in_days": [f"between 1 and {EXPIRY_MAX_DAYS} days (got {expires_in_days})"]})
        return now + timedelta(days=expires_in_days)
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            expires_at = timezone.make_aware(expires_at)
        if expires_at <= now:
            raise ValidationError({"expires_at": [f"must be in the future (got {expires_at.isoformat()})"]})
        if expires_at > now + timedelta(days=EXPIRY_MAX_DAYS):
            raise ValidationError({"expires_at": [f"at most {EXPIRY_MAX_DAYS} days ahead; leave it empty for no expiry"]})
    return expires_at


def create_token(owner, name: str, *, expires_at: datetime | None = None, expires_in_days: int | None = None,
                 actor=None, actor_label: str = "") -> NewToken:
    """A new token for ``owner`` (who must hold a posture role: a token acts with its owner's
    roles, and one with none could do nothing). Audited as ``token.created``."""
    name = clean_name(name)
    expires = expiry(expires_at, expires_in_days)
    if not owner.is_active:
        raise ValidationError({"owner": [f"the account {owner.get_username()} is inactive"]})
    if not roles.can_read(owner):
        raise PermissionDenied(roles.NO_ROLE if actor in (None, owner) else
                               f"{owner.get_username()} has no posture role: add the account to the operator or auditor group first")
    for _attempt in range(5):  # a prefix collision (1 in ~10^12 per pair) just draws again
        prefix, secret = new_prefix(), new_secret()
        token = token_string(prefix, secret)
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(owner=owner, name=name, key_prefix=prefix, secret_hash=hash_token(token),
                                              expires_at=expires)
                record("token.created", f"token #{row.pk}", actor=actor, actor_label=actor_label,
                       owner=owner.get_username(), name=name, prefix=row.display_prefix,
                       expires_at=expires.isoformat() if expires else None)
        except IntegrityError:
            continue
        return NewToken(row=row, token=token)
    raise RuntimeError("could not draw an unused token prefix in 5 attempts")


def revoke_token(actor, token: ApiToken, *, actor_label: str = "") -> tuple[ApiToken, bool]:
    """Revoke ``token`` (its owner or an admin). Idempotent: (token, False) when it already was.
    The row stays: revoking is not deleting."""
    if actor is not None and token.owner_id != actor.pk and roles.ADMIN not in roles.roles_of(actor):
        raise PermissionDenied(roles.refusal(actor, "revoking another account's token", roles.DECIDE))
    with transaction.atomic():
        now = timezone.now()
        changed = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor if actor is not None and actor.pk else None)
        token.refresh_from_db()
        if changed:
            record("token.revoked", f"token #{token.pk}", actor=actor, actor_label=actor_label,
                   owner=token.owner.get_username(), name=token.name, prefix=token.display_prefix)
    return token, bool(changed)


def visible_tokens(user) -> QuerySet[ApiToken]:
    """The tokens ``user`` may see and revoke: their own; an admin's are everyone's."""
    qs = ApiToken.objects.select_related("owner", "revoked_by").order_by("-created_at", "-id")
    return qs if roles.ADMIN in roles.roles_of(user) else qs.filter(owner=user)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def authenticate(raw: str, now: datetime | None = None) -> ApiToken:
    """The active token ``raw`` names, or TokenRefused saying why.

    The state (revoked, expired) is told only to a caller who presented the right secret; a
    wrong secret gets the same answer whether or not the prefix exists, and the comparison is
    constant-time (hmac.compare_digest over digests)."""
    now = now or timezone.now()
    parts = split_token(raw)
    if parts is None:
        raise TokenRefused("invalid token: not a posture API token (pst_...)", "token_invalid")
    token = ApiToken.objects.select_related("owner").filter(key_prefix=parts[0]).first()
    presented = hash_token(raw)
    if not hmac.compare_digest(token.secret_hash if token else _DUMMY_HASH, presented) or token is None:
        raise TokenRefused("invalid token", "token_invalid")
    if token.revoked_at is not None:
        raise TokenRefused(f"token revoked on {_utc(token.revoked_at)}", "token_revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused(f"token expired on {_utc(token.expires_at)}", "token_expired")
    if not token.owner.is_active:
        raise TokenRefused("the account that owns this token is inactive", "user_inactive")
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_PRECISION:
        # Conditional: several workers serving one token at once write it once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_PRECISION)).update(last_used_at=now)
        token.last_used_at = now
    return token

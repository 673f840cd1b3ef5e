"""The exception workflow: an operator proposes, an admin approves (or rejects), anyone with
the right role revokes. Every change is an AuditEvent."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from posture import roles
from posture.models import Attestation, ControlException, ExceptionState
from posture.models.audit import record
from scanners import registry


def _check_exists(check_id: str) -> None:
    if registry.find(check_id) is None:
        raise ValidationError(f"unknown check {check_id!r}")


def propose(user, *, check_id: str, justification: str, expires_at: datetime, host=None,
            resource_pattern: str = "") -> ControlException:
    if not roles.can_operate(user):
        raise PermissionDenied("only operators and admins propose exceptions")
    _check_exists(check_id)
    if not justification.strip():
        raise ValidationError("a justification is required")
    if expires_at <= timezone.now():
        raise ValidationError("the expiry must be in the future")
    exc = ControlException.objects.create(
        check_id=check_id, host=host, resource_pattern=resource_pattern, justification=justification.strip(),
        expires_at=expires_at, proposed_by=user,
    )
    record("exception.proposed", f"exception #{exc.pk}", actor=user, check=check_id,
           host=host.name if host else None, pattern=resource_pattern, expires_at=expires_at.isoformat())
    return exc


@transaction.atomic
def decide(user, exc: ControlException, *, approve: bool) -> ControlException:
    if roles.role_of(user) != "admin":
        raise PermissionDenied("only admins approve or reject exceptions")
    exc = ControlException.objects.select_for_update().get(pk=exc.pk)
    if exc.state != ExceptionState.PROPOSED:
        raise ValidationError(f"exception #{exc.pk} is {exc.state}, not proposed")
    if approve and exc.expires_at <= timezone.now():
        raise ValidationError(f"exception #{exc.pk} has already expired")
    exc.state = ExceptionState.APPROVED if approve else ExceptionState.REJECTED
    exc.decided_by, exc.decided_at = user, timezone.now()
    exc.save(update_fields=["state", "decided_by", "decided_at"])
    record(f"exception.{exc.state}", f"exception #{exc.pk}", actor=user, check=exc.check_id)
    return exc


@transaction.atomic
def revoke(user, exc: ControlException) -> ControlException:
    if not roles.can_operate(user):
        raise PermissionDenied("only operators and admins revoke exceptions")
    exc = ControlException.objects.select_for_update().get(pk=exc.pk)
    if exc.state not in (ExceptionState.PROPOSED, ExceptionState.APPROVED):
        raise ValidationError(f"exception #{exc.pk} is {exc.state}")
    exc.state = ExceptionState.REVOKED
    exc.decided_by, exc.decided_at = user, timezone.now()
    exc.save(update_fields=["state", "decided_by", "decided_at"])
    record("exception.revoked", f"exception #{exc.pk}", actor=user, check=exc.check_id)
    return exc


def attest(user, *, check_id: str, statement: str, valid_until: datetime, host=None, file=None) -> Attestation:
    if not roles.can_operate(user):
        raise PermissionDenied("only operators and admins attest")
    spec = registry.find(check_id)
    if spec is None:
        raise ValidationError(f"unknown check {check_id!r}")
    if spec.kind.value != "manual":
        raise ValidationError(f"{check_id} is decided by evidence; attestations are for manual checks")
    if not statement.strip():
        raise ValidationError("a statement is required")
    now = timezone.now()
    if valid_until <= now:
        raise ValidationError("valid_until must be in the future")
    att = Attestation.objects.create(check_id=check_id, host=host, statement=statement.strip(), attested_by=user,
                                     attested_at=now, valid_until=valid_until, file=file or "")
    record("attestation.created", f"attestation #{att.pk}", actor=user, check=check_id,
           host=host.name if host else None, valid_until=valid_until.isoformat())
    return att

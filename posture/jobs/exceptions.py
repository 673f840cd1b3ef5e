"""The exception workflow: an operator proposes, an admin approves (or rejects), anyone with
the right role revokes. Every change is an AuditEvent.

Approval is a second pair of eyes: whoever proposed an exception never approves it, whatever
their role (superusers included), or an admin could accept a risk alone."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from posture import roles
from posture.models import Attestation, ControlException, ExceptionState
from posture.models.audit import record
from posture.uploads import validate_attestation_file
from scanners import registry


def _check_exists(check_id: str) -> None:
    if registry.find(check_id) is None:
        raise ValidationError(f"unknown check {check_id!r}")


def propose(user, *, check_id: str, justification: str, expires_at: datetime, host=None,
            resource_pattern: str = "") -> ControlException:
    if not roles.can_operate(user):
        raise PermissionDenied(roles.refusal(user, "proposing exceptions", roles.OPERATE))
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


SELF_APPROVAL = "you proposed this exception; another approver must approve it"


@transaction.atomic
def decide(user, exc: ControlException, *, approve: bool) -> ControlException:
    """Approve or reject a proposed exception. Rejecting one's own proposal is allowed (it
    withdraws a risk); approving it is not."""
    if not roles.has_any(user, roles.DECIDE):
        doing = "approving exceptions" if approve else "rejecting exceptions"
        raise PermissionDenied(roles.refusal(user, doing, roles.DECIDE))
    exc = ControlException.objects.select_for_update().get(pk=exc.pk)
    if approve and exc.proposed_by_id is not None and exc.proposed_by_id == user.pk:
        raise PermissionDenied(SELF_APPROVAL)
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
        raise PermissionDenied(roles.refusal(user, "revoking exceptions", roles.OPERATE))
    exc = ControlException.objects.select_for_update().get(pk=exc.pk)
    if exc.state not in (ExceptionState.PROPOSED, ExceptionState.APPROVED):
        raise ValidationError(f"exception #{exc.pk} is {exc.state}")
    # The approval (decided_*) stays: the exception was in force from then until now, and
    # "posture at T" for any T in between still applies it.
    exc.state = ExceptionState.REVOKED
    exc.revoked_by, exc.revoked_at = user, timezone.now()
    exc.save(update_fields=["state", "revoked_by", "revoked_at"])
    record("exception.revoked", f"exception #{exc.pk}", actor=user, check=exc.check_id)
    return exc


def attest(user, *, check_id: str, statement: str, valid_until: datetime, host=None, file=None) -> Attestation:
    if not roles.can_operate(user):
        raise PermissionDenied(roles.refusal(user, "recording attestations", roles.OPERATE))
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
    if file:
        validate_attestation_file(file)  # before anything is stored
    att = Attestation.objects.create(check_id=check_id, host=host, statement=statement.strip(), attested_by=user,
                                     attested_at=now, valid_until=valid_until, file=file or "")
    record("attestation.created", f"attestation #{att.pk}", actor=user, check=check_id,
           host=host.name if host else None, valid_until=valid_until.isoformat())
    return att

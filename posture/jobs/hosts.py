"""Writing hosts: one function per use case, shared by the API, `manage.py addhost` and the admin.

Why one place: the three paths used to validate differently (the admin took garbage PEMs,
TLS on unix:// and interval 0; the CLI crashed on long names after writing the row). Here
every rule is checked before anything is written, the same message comes back whichever
path asked, and each write leaves an audit event naming its actor.

Hosts are never deleted by an ordinary action: their scans are evidence. A host taken out of
service is *archived*: disabled (so never scheduled), hidden from default lists, read-only
until unarchived, its history and its name kept (audit events and old reports name it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from posture.models import DockerHost
from posture.models.audit import record
from posture.models.hosts import (
    INTERVAL_MAX_MINUTES,
    INTERVAL_MIN_MINUTES,
    default_interval,
    validate_docker_url,
    validate_host_name,
    validate_scan_interval,
)

__all__ = [
    "HOST_FIELDS", "INTERVAL_MAX_MINUTES", "INTERVAL_MIN_MINUTES", "PurgeRefused", "archive_host", "clean_host",
    "host_named", "purge_host", "save_host", "unarchive_host",
]

#: The fields a caller may write; everything else (archived_at, next_scan_at) has its own use case.
HOST_FIELDS = ("name", "url", "tls_ca", "tls_cert", "tls_key", "probe_enabled", "scan_interval_minutes", "enabled")
TLS_FIELDS = ("tls_ca", "tls_cert", "tls_key")
TLS_INCOMPLETE = "TLS needs all three of the CA certificate, the client certificate and the client key"
TLS_NOT_TCP = "TLS material only applies to tcp:// URLs"


def _defaults() -> dict[str, Any]:
    return {"name": "", "url": "", "tls_ca": "", "tls_cert": "", "tls_key": "", "probe_enabled": False,
            "scan_interval_minutes": default_interval(), "enabled": True}


def host_named(name: str) -> DockerHost | None:
    """The host called ``name``, or None; a string that cannot be a name (NUL, 10 kB) is never queried."""
    try:
        validate_host_name(name)
    except ValidationError:
        return None
    return DockerHost.objects.filter(name=name).first()


def archived_message(host: DockerHost) -> str:
    return f"host {host.name!r} is archived (its history is kept); unarchive it first"


def name_taken_message(other: DockerHost) -> str:
    suffix = " (archived: its history keeps the name)" if other.archived else ""
    return f"a host named {other.name!r} already exists{suffix}"


def clean_host(host: DockerHost | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``host`` as it would be after ``changes`` and return the changes to apply.

    ``host`` is None (or unsaved) for a new host. Fields absent from ``changes`` keep their
    stored value. Raises ValidationError({field: [message]}) listing every bad field; writes
    nothing. TLS material is checked (readable PEMs, key matching certificate, not expired)
    when it is given, not on every later edit: an unrelated change is not refused because a
    certificate expired since (the scan says so).
    """
    unknown = set(changes) - set(HOST_FIELDS)
    if unknown:
        raise TypeError(f"not host fields: {sorted(unknown)}")
    stored = DockerHost.objects.filter(pk=host.pk).first() if host is not None and host.pk else None
    if stored is not None and stored.archived:
        raise ValidationError(archived_message(stored), code="archived")
    before = {f: getattr(stored, f) for f in HOST_FIELDS} if stored else _defaults()
    after = {**before, **changes}
    errors: dict[str, list[str]] = {}

    def check(field: str, validator) -> None:
        if stored is None or field in changes:
            try:
                validator(after[field])
            except ValidationError as exc:
                errors.setdefault(field, []).extend(exc.messages)

    check("name", validate_host_name)
    check("url", lambda url: validate_docker_url(url if isinstance(url, str) else ""))
    if "scan_interval_minutes" in changes:
        check("scan_interval_minutes", validate_scan_interval)
    if "name" not in errors and (stored is None or after["name"] != stored.name):
        other = DockerHost.objects.filter(name=after["name"]).exclude(pk=getattr(stored, "pk", None)).first()
        if other is not None:
            errors["name"] = [name_taken_message(other)]

    tls = {f: after[f] or "" for f in TLS_FIELDS}
    tls_given = any(f in changes and (changes[f] or "") != (before[f] or "") for f in TLS_FIELDS)
    if any(tls.values()) and "url" not in errors:
        missing = [f for f in TLS_FIELDS if not tls[f]]
        if not after["url"].startswith("tcp://"):
            errors["url"] = [TLS_NOT_TCP]
        elif missing:
            errors[missing[0]] = [TLS_INCOMPLETE]
        elif tls_given:
            from scanners.client import HostConfig, validate_tls
            from scanners.errors import TLSFailure

            try:
                validate_tls(HostConfig(url=after["url"], **tls))
            except TLSFailure as exc:
                errors["tls_cert"] = [f"TLS material refused: {exc}"]
    if errors:
        raise ValidationError(errors)
    return dict(changes)


def save_host(host: DockerHost | None, changes: Mapping[str, Any], *, actor=None, actor_label: str = "") -> DockerHost:
    """Create (``host`` None or unsaved) or update a host, audited as ``host.created`` /
    ``host.updated``. Validates everything first (see :func:`clean_host`); on any failure
    raises ValidationError and nothing is written. TLS material is encrypted at rest by the
    model field; the audit event says whether TLS is used, never the material."""
    try:
        with transaction.atomic():
            if host is not None and host.pk:
                DockerHost.objects.select_for_update().filter(pk=host.pk).first()  # serialise edits of one host
            cleaned = clean_host(host, changes)
            target = host if host is not None else DockerHost()
            created = target.pk is None
            for field, value in cleaned.items():
                setattr(target, field, value)
            target.save()
            record("host.created" if created else "host.updated", target.name, actor=actor, actor_label=actor_label,
                   url=target.url, tls=target.uses_tls, probe=target.probe_enabled,
                   interval=target.scan_interval_minutes, enabled=target.enabled,
                   **({} if created else {"changed": sorted(cleaned)}))
    except IntegrityError:
        # Two writers raced for one name: the loser gets the message the check gives.
        other = DockerHost.objects.filter(name=changes.get("name", "")).first()
        if other is None:
            raise
        raise ValidationError({"name": [name_taken_message(other)]}) from None
    return target


def archive_host(host: DockerHost, *, actor=None, actor_label: str = "") -> tuple[DockerHost, bool]:
    """Take a host out of service, keeping its history: disabled, never scheduled, hidden
    from default lists, read-only. Returns (host, whether it changed); archiving an archived
    host again does nothing and records nothing (DELETE is idempotent)."""
    with transaction.atomic():
        host = DockerHost.objects.select_for_update().get(pk=host.pk)
        if host.archived:
            return host, False
        host.archived_at = timezone.now()
        host.enabled = False
        host.next_scan_at = None
        host.save(update_fields=["archived_at", "enabled", "next_scan_at", "updated_at"])
        record("host.archived", host.name, actor=actor, actor_label=actor_label, scans=host.scans.count())
    return host, True


def unarchive_host(host: DockerHost, *, actor=None, actor_label: str = "") -> tuple[DockerHost, bool]:
    """Bring an archived host back. It stays disabled: enable it when the daemon is known to
    be there again, so an unarchive never starts scans of a machine that may be gone."""
    with transaction.atomic():
        host = DockerHost.objects.select_for_update().get(pk=host.pk)
        if not host.archived:
            return host, False
        host.archived_at = None
        host.save(update_fields=["archived_at", "updated_at"])
        record("host.unarchived", host.name, actor=actor, actor_label=actor_label)
    return host, True


class PurgeRefused(Exception):
    """The host cannot be purged now; the message says why and what to do."""


def purge_host(host: DockerHost, *, actor=None, actor_label: str = "") -> dict[str, int]:
    """Retention, not an ordinary action: delete an *archived* host with its scans, results
    and the evidence no other scan shares, in one transaction, audited as ``host.purged``
    (audit events themselves are kept). Only `manage.py purge_host NAME --confirm` calls it.

    Archiving first is required so a purge is always a deliberate second step. Content-
    addressed rows (evidence, evidence sets, result sets) still used by another scan stay."""
    from posture.choices import ScanState
    from posture.models import Evidence, EvidenceSet, EvidenceSetItem, ResultChunk, ResultSet, ResultSetChunk, ScanRun

    with transaction.atomic():
        host = DockerHost.objects.select_for_update().get(pk=host.pk)
        if not host.archived:
            raise PurgeRefused(f"host {host.name!r} is not archived; archive it first, then purge")
        scans = ScanRun.objects.filter(host=host)
        if scans.filter(state__in=[ScanState.QUEUED, ScanState.RUNNING]).exists():
            raise PurgeRefused(f"host {host.name!r} has a scan queued or running; wait for it to finish")
        set_ids = set(scans.exclude(evidence_set=None).values_list("evidence_set_id", flat=True))
        result_ids = set(scans.values_list("evaluations__result_set_id", flat=True)) - {None}
        evidence_ids = set(EvidenceSetItem.objects.filter(evidence_set_id__in=set_ids)
                           .values_list("evidence_id", flat=True))
        counts = {"scans": scans.count()}
        scans.update(previous=None)  # the chain links scans of this host only; PROTECT would refuse
        scans.delete()
        chunk_ids = set(ResultSetChunk.objects.filter(result_set_id__in=result_ids).values_list("chunk_id", flat=True))
        counts["result_sets"] = ResultSet.objects.filter(pk__in=result_ids, evaluations__isnull=True).delete()[1].get(
            "posture.ResultSet", 0)
        ResultChunk.objects.filter(pk__in=chunk_ids, memberships__isnull=True).delete()
        counts["evidence_sets"] = EvidenceSet.objects.filter(pk__in=set_ids, scans__isnull=True).delete()[1].get(
            "posture.EvidenceSet", 0)
        still_used = EvidenceSetItem.objects.filter(evidence_id__in=evidence_ids).values("evidence_id")
        counts["evidence"] = Evidence.objects.filter(pk__in=evidence_ids).exclude(pk__in=still_used).delete()[1].get(
            "posture.Evidence", 0)
        name = host.name
        host.delete()
        record("host.purged", name, actor=actor, actor_label=actor_label, **counts)
    return counts


def messages_of(exc: ValidationError) -> dict[str, list[str]]:
    """``{field: [message]}`` of a ValidationError, non-field messages under NON_FIELD_ERRORS."""
    if hasattr(exc, "error_dict"):
        return {field: [m for e in errs for m in e.messages] for field, errs in exc.error_dict.items()}
    return {NON_FIELD_ERRORS: exc.messages}

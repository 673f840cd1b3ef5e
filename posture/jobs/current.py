"""Keep the read model of posture now (``posture.models.current``) in step.

- ``sync_host(host)``: after an evaluation (``record_evaluation``, ``rebuild_history``), the
  host's rows become its current scan's results (``posture.queries.scans.current_scan``, the
  one definition): rows of results that left are deleted, rows of results that arrived are
  inserted, and nothing else is written, so an unchanged host-day costs one small update.
- ``ensure_fresh()``: called by every read of the model. One query (PostgreSQL) compares the
  exceptions and attestations (a digest of every row that can apply) and the clock with what
  was applied;
  when either moved (an approval, a revocation, an expiry, a new attestation), the rows of the
  checks concerned are re-marked in SQL before the read. A missing state rebuilds everything
  (a fresh installation, or after ``invalidate``: catalog load, migration).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Min, Subquery, Value, When
from django.utils import timezone

from posture.choices import ResultStatus
from posture.models import Attestation, Check, CheckResult, ControlException, DockerHost, Evaluation
from posture.models.current import CurrentFinding, CurrentScan, CurrentState
from posture.queries.scans import current_scan

STATUS_ORDER: tuple[str, ...] = ResultStatus.order()
RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
SEVERITY_ORDER: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}

#: What ``ensure_fresh`` digests: every column of an exception or attestation that decides
#: whether, where and when it applies. Any change to one of them changes the digest.
_EXCEPTION_COLUMNS = ("pk", "state", "check_id", "host_id", "resource_regex", "decided_at", "expires_at", "revoked_at")
_ATTESTATION_COLUMNS = ("pk", "check_id", "host_id", "attested_at", "valid_until")


def _severity_ranks() -> dict[str, int]:
    unrated = len(SEVERITY_ORDER)
    return {cid: _SEVERITY_RANK.get(sev, unrated) for cid, sev in Check.objects.values_list("id", "severity")}


def sync_host(host: DockerHost | int) -> None:
    """Make the host's rows its current scan's results (none without an evaluated one)."""
    host_id = host.pk if isinstance(host, DockerHost) else int(host)
    with transaction.atomic():
        DockerHost.objects.select_for_update().filter(pk=host_id).first()  # one writer per host
        scan = current_scan(host_id)
        evaluation = (Evaluation.objects.filter(scan=scan, current=True).values_list("result_set_id", flat=True)
                      .first() if scan is not None else None)
        if evaluation is None:
            CurrentFinding.objects.filter(host_id=host_id).delete()
            CurrentScan.objects.filter(host_id=host_id).delete()
            return
        held = CurrentScan.objects.filter(host_id=host_id).values_list("result_set_id", flat=True).first()
        CurrentScan.objects.update_or_create(host_id=host_id, defaults={
            "scan_id": scan.pk, "finished_at": scan.finished_at, "result_set_id": evaluation})
        if held == evaluation:
            return  # same verdicts: the rows already say so
        wanted = dict(CheckResult.objects.filter(chunk__memberships__result_set_id=evaluation)
                      .values_list("id", "check_id"))
        have = set(CurrentFinding.objects.filter(host_id=host_id).values_list("result_id", flat=True))
        gone = have - wanted.keys()
        if gone:
            CurrentFinding.objects.filter(host_id=host_id, result_id__in=list(gone)).delete()
        new = [rid for rid in wanted if rid not in have]
        if not new:
            return
        severity = _severity_ranks()
        unrated = len(SEVERITY_ORDER)
        rows = CheckResult.objects.filter(pk__in=new).values_list("id", "check_id", "resource_type", "resource",
                                                                   "status")
        CurrentFinding.objects.bulk_create(
            [CurrentFinding(host_id=host_id, result_id=rid, check_id=check_id, resource_type=rtype, resource=resource,
                            status=status, severity_rank=severity.get(check_id, unrated),
                            verdict_rank=RANK.get(status, len(STATUS_ORDER)))
             for rid, check_id, rtype, resource, status in rows.iterator(chunk_size=2000)],
            batch_size=2000)
        state = CurrentState.objects.filter(pk=1).first()
        if state is not None and state.applied_at is not None:
            checks = {wanted[rid] for rid in new} & set(state.exception_checks)
            if checks:
                _apply(CurrentFinding.objects.filter(host_id=host_id, result_id__in=new, check_id__in=checks),
                       state.applied_at)


def _apply(rows, at: datetime) -> None:
    """Mark ``rows`` with the exception / attestation in force at ``at`` (the lowest id, as
    ``posture.queries.verdicts`` picks) and rank their verdict accordingly."""
    from posture.queries.verdicts import attestations_in_force, exceptions_in_force

    rows.update(
        exception_id=Case(When(status="fail", then=Subquery(exceptions_in_force(at).values("pk")[:1])),
                          default=None, output_field=BigIntegerField()),
        attestation_id=Case(When(status="manual", then=Subquery(attestations_in_force(at).values("pk")[:1])),
                            default=None, output_field=BigIntegerField()))
    rows.update(verdict_rank=Case(
        When(status="fail", exception_id__isnull=False, then=Value(RANK["excepted"])),
        When(status="manual", attestation_id__isnull=False, then=Value(RANK["pass"])),
        *[When(status=s, then=Value(i)) for s, i in RANK.items() if s != "excepted"],
        default=Value(len(STATUS_ORDER))))


def _in_force_checks(at: datetime) -> set[str]:
    return (set(ControlException.objects.filter(ControlException.active_q(at)).values_list("check_id", flat=True))
            | set(Attestation.objects.filter(Attestation.active_q(at)).values_list("check_id", flat=True)))


def _next_change(at: datetime) -> datetime | None:
    """The next moment after ``at`` when the set in force changes by the clock alone: an
    exception or attestation in force lapses, or one decided for later starts."""
    moments = [
        ControlException.objects.filter(ControlException.active_q(at)).aggregate(
            m=Min(Case(When(revoked_at__gt=at, then=F("revoked_at")), default=F("expires_at"))))["m"],
        ControlException.objects.filter(state__in=["approved", "revoked"], decided_at__gt=at).aggregate(
            m=Min("decided_at"))["m"],
        Attestation.objects.filter(Attestation.active_q(at)).aggregate(m=Min("valid_until"))["m"],
        Attestation.objects.filter(attested_at__gt=at).aggregate(m=Min("attested_at"))["m"],
    ]
    moments = [m for m in moments if m is not None]
    return min(moments) if moments else None


def _column_list(columns: tuple[str, ...]) -> str:
    return ", ".join(f"coalesce({'id' if c == 'pk' else c}::text, '~')" for c in columns)


#: PostgreSQL computes the digest itself, in the same query as the state row (one query per
#: read); other databases (the embedded SQLite) hash the rows in Python (two more queries).
_EXCEPTION_TEXT, _ATTESTATION_TEXT = _column_list(_EXCEPTION_COLUMNS), _column_list(_ATTESTATION_COLUMNS)
_PG_DIGEST = (
    f"md5(coalesce((SELECT string_agg(concat_ws('|', {_EXCEPTION_TEXT}), ',' ORDER BY id) "
    "FROM posture_controlexception WHERE state IN ('approved', 'revoked')), '') || '#' || "
    f"coalesce((SELECT string_agg(concat_ws('|', {_ATTESTATION_TEXT}), ',' ORDER BY id) "
    "FROM posture_attestation), ''))"
)


def _digest() -> str:
    """A digest of every exception and attestation column that decides whether, where and
    when one applies: any change to one of them changes it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"SELECT {_PG_DIGEST}")
            return cur.fetchone()[0]
    h = hashlib.md5(usedforsecurity=False)
    for rows in (ControlException.objects.filter(state__in=["approved", "revoked"]).order_by("pk")
                 .values_list(*_EXCEPTION_COLUMNS),
                 Attestation.objects.order_by("pk").values_list(*_ATTESTATION_COLUMNS)):
        h.update(repr(list(rows)).encode())
        h.update(b"#")
    return h.hexdigest()


def _state() -> tuple[datetime, datetime | None, str, str] | None:
    """(applied_at, valid_until, digest applied, digest now), or None without a state row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"SELECT applied_at, valid_until, digest, {_PG_DIGEST} FROM {CurrentState._meta.db_table} "
                        "WHERE id = 1")
            return cur.fetchone()
    row = CurrentState.objects.filter(pk=1).values_list("applied_at", "valid_until", "digest").first()
    return None if row is None else (*row, _digest())


def refresh(at: datetime | None = None, *, digest: str | None = None) -> None:
    """Re-apply the exceptions and attestations in force at ``at`` (default now) to the rows of
    the checks that had or have one; a missing state rebuilds every host first."""
    at = at or timezone.now()
    with transaction.atomic():
        state = CurrentState.objects.select_for_update().filter(pk=1).first()
        if state is None:
            rebuild(at)
            return
        checks = _in_force_checks(at)
        touched = checks | set(state.exception_checks)
        if touched:
            _apply(CurrentFinding.objects.filter(check_id__in=sorted(touched)), at)
        state.applied_at, state.valid_until = at, _next_change(at)
        state.exception_checks, state.digest = sorted(checks), digest or _digest()
        state.save()


def _fill_sql() -> str:
    """One INSERT ... SELECT of every host's rows from its ``CurrentScan`` (portable SQL)."""
    t = {m.__name__: m._meta.db_table for m in (CurrentFinding, CurrentScan, CheckResult, Check)}
    from posture.models import ResultSetChunk

    sev = " ".join(f"WHEN '{s}' THEN {i}" for s, i in _SEVERITY_RANK.items())
    rank = " ".join(f"WHEN '{s}' THEN {i}" for s, i in RANK.items() if s != "excepted")
    return (f"INSERT INTO {t['CurrentFinding']} (host_id, result_id, check_id, resource_type, resource, status, "
            f"severity_rank, verdict_rank) "
            f"SELECT cs.host_id, r.id, r.check_id, r.resource_type, r.resource, r.status, "
            f"CASE c.severity {sev} ELSE {len(SEVERITY_ORDER)} END, CASE r.status {rank} ELSE {len(STATUS_ORDER)} END "
            f"FROM {t['CurrentScan']} cs JOIN {ResultSetChunk._meta.db_table} m ON m.result_set_id = cs.result_set_id "
            f"JOIN {t['CheckResult']} r ON r.chunk_id = m.chunk_id LEFT JOIN {t['Check']} c ON c.id = r.check_id")


def rebuild(at: datetime | None = None) -> int:
    """Every host's rows from scratch (archived hosts too: reads filter them), set-based: one
    INSERT ... SELECT (seconds for 100 hosts); returns the rows."""
    from posture.queries.scans import current_scans

    at = at or timezone.now()
    with transaction.atomic():
        CurrentState.objects.filter(pk=1).delete()
        CurrentFinding.objects.all().delete()
        CurrentScan.objects.all().delete()
        CurrentScan.objects.bulk_create(
            CurrentScan(host_id=host_id, scan_id=scan_id, finished_at=finished_at, result_set_id=result_set_id)
            for scan_id, host_id, finished_at, result_set_id in
            Evaluation.objects.filter(current=True, scan__in=current_scans(at=None))
            .values_list("scan_id", "scan__host_id", "scan__finished_at", "result_set_id"))
        with connection.cursor() as cur:
            cur.execute(_fill_sql())
        checks = _in_force_checks(at)
        if checks:
            _apply(CurrentFinding.objects.filter(check_id__in=sorted(checks)), at)
        CurrentState.objects.create(pk=1, applied_at=at, valid_until=_next_change(at),
                                    exception_checks=sorted(checks), digest=_digest())
        return CurrentFinding.objects.count()


def invalidate() -> None:
    """The next read rebuilds everything (the catalog's severities changed, ...)."""
    CurrentState.objects.filter(pk=1).delete()


def ensure_fresh() -> datetime:
    """Bring the exceptions applied up to date for a read now (one query on PostgreSQL when
    nothing moved); returns the moment the rows hold for."""
    return fresh_state()[0]


def fresh_state() -> tuple[datetime, str]:
    """``ensure_fresh``, returning what the rows' exception marks stand on: (the moment they
    were applied at, the digest of the exceptions and attestations applied). Each re-application
    (refresh, rebuild) gets a new moment; between two, only ``sync_host`` changes rows, and
    only the rows of a host whose ``CurrentScan.result_set_id`` it changes. So (this pair,
    each host's result set) determines every row's verdict: a key that cannot go stale
    (``posture.queries.rollups`` caches on it)."""
    now = timezone.now()
    state = _state()
    if state is None:
        rebuild(now)
        return now, _digest()
    applied_at, valid_until, held, digest = state
    if held != digest or (valid_until is not None and valid_until <= now):
        refresh(now, digest=digest)
        return now, digest
    return applied_at, digest


def exceptions_digest() -> str:
    """The digest of every exception and attestation column that decides whether, where and
    when one applies (one query on PostgreSQL): part of the key of a cached read at a moment."""
    return _digest()


def ensure_state() -> None:
    """After a migrate or flush: rebuild a missing state, re-apply a stale one (post_migrate)."""
    state = _state()
    if state is None:
        rebuild()
    elif state[2] != state[3]:
        refresh(digest=state[3])

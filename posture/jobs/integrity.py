"""Integrity checks behind ``manage.py verify`` and /api/v1/integrity/.

- **Evidence**: ``posture.jobs.ingest.verify_chain`` recomputes every payload digest, set
  digest and chain link of a host's succeeded scans.
- **Results**: verdicts are content-addressed too (posture.jobs.evaluate.chunk_digest /
  set_digest): each chunk's digest is recomputed from its stored ``CheckResult`` rows, and
  each result set's from its chunks, for the current evaluation of every succeeded scan of
  the host. An edited status or detail no longer matches its chunk.
- **Reports**: every succeeded report's file is re-hashed against its recorded sha256.

Each problem is one line naming the host, scan, resource or report. A verification asked for
from the pages is recorded as an audit event (``record_verification``, and
``record_report_verification`` for one report's file)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied

from posture import roles
from posture.choices import ScanState
from posture.jobs.evaluate import chunk_digest, set_digest
from posture.jobs.ingest import verify_chain
from posture.models import (
    AuditEvent,
    CheckResult,
    DockerHost,
    Evaluation,
    Report,
    ReportState,
    ResultChunk,
    ResultSetChunk,
)
from posture.models.audit import record
from posture.queries.integrity import VERIFIED_ACTION, verification_target
from posture.queries.reports import REPORT_VERIFIED_ACTION, report_target
from posture.queries.scans import current_scan

_ROW = ("check_id", "check_version", "resource_type", "resource", "status", "detail", "evidence_kind", "evidence_key")


def verify_results(host_id: int) -> list[str]:
    """Recompute the digests of the verdicts of a host's succeeded scans (current evaluations)."""
    problems: list[str] = []
    evaluations = (Evaluation.objects.filter(scan__host_id=host_id, scan__state=ScanState.SUCCEEDED, current=True)
                   .order_by("scan__finished_at", "scan_id").values_list("scan_id", "result_set_id",
                                                                         "result_set__digest"))
    first_scan: dict[int, int] = {}  # result set -> first scan holding it
    for scan_id, set_id, digest in evaluations:
        if set_id in first_scan:
            continue
        first_scan[set_id] = scan_id
        chunks = ResultSetChunk.objects.filter(result_set_id=set_id).values_list("chunk__digest", flat=True)
        if set_digest(chunks.iterator(chunk_size=2000)) != digest:
            problems.append(f"scan #{scan_id}: result set {digest[:12]} does not match its chunks: verdicts were altered")
    if not first_scan:
        return problems
    scan_of_chunk: dict[int, int] = {}
    for set_id, chunk_id in (ResultSetChunk.objects.filter(result_set_id__in=list(first_scan))
                             .values_list("result_set_id", "chunk_id").iterator(chunk_size=2000)):
        scan_of_chunk.setdefault(chunk_id, first_scan[set_id])
    for chunk_id, stored, kind, resource, rows in _chunks(list(scan_of_chunk)):
        if chunk_digest(rows) != stored:
            problems.append(f"scan #{scan_of_chunk[chunk_id]}: the verdicts on {kind} {resource[:100]!r} "
                            f"(chunk {stored[:12]}) do not match their digest: a result was altered")
    return problems


def _chunks(ids: list[int]) -> Iterator[tuple[int, str, str, str, list[tuple]]]:
    """(chunk id, stored digest, resource type, resource, its rows), one chunk in memory at a time."""
    for start in range(0, len(ids), 500):
        batch = sorted(ids[start:start + 500])
        heads = {pk: (d, t, r) for pk, d, t, r in ResultChunk.objects.filter(pk__in=batch)
                 .values_list("pk", "digest", "resource_type", "resource")}
        current, rows, seen = None, [], set()
        for chunk_id, *row in (CheckResult.objects.filter(chunk_id__in=batch).order_by("chunk_id")
                               .values_list("chunk_id", *_ROW).iterator(chunk_size=2000)):
            if chunk_id != current:
                if current is not None:
                    yield (current, *heads[current], rows)
                current, rows = chunk_id, []
                seen.add(chunk_id)
            rows.append(tuple(row))
        if current is not None:
            yield (current, *heads[current], rows)
        for missing in sorted(set(batch) - seen):  # every row of a chunk deleted
            yield (missing, *heads[missing], [])


@dataclass
class HostIntegrity:
    name: str
    scans: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_host(host: DockerHost) -> HostIntegrity:
    """Evidence chain and verdicts of one host."""
    scans = host.scans.filter(state=ScanState.SUCCEEDED).count()
    return HostIntegrity(host.name, scans, verify_chain(host.pk) + verify_results(host.pk))


def file_sha256(handle) -> str:
    sha = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 16), b""):
        sha.update(block)
    return sha.hexdigest()


def verify_report(report: Report) -> str | None:
    """None when the stored file matches its recorded sha256, else the problem."""
    if not report.file:
        return f"report #{report.pk}: succeeded but has no file"
    try:
        with report.file.open("rb") as handle:
            digest = file_sha256(handle)
    except FileNotFoundError:
        return f"report #{report.pk}: file {report.file.name} is missing from storage"
    if digest != report.sha256:
        return f"report #{report.pk}: file {report.file.name} sha256 {digest[:16]} does not match the recorded " \
               f"{report.sha256[:16]}: the file was altered"
    return None


def verify_reports() -> Iterator[tuple[Report, str | None]]:
    for report in Report.objects.filter(state=ReportState.SUCCEEDED).order_by("pk").iterator(chunk_size=200):
        yield report, verify_report(report)


#: Problems kept in the audit event of a verification requested from the pages.
KEPT_PROBLEMS = 50


def record_verification(user, host: DockerHost) -> AuditEvent:
    """Verify one host's evidence chain and verdicts on request and keep the answer as an
    ``evidence.verified`` audit event (who, when, how many scans, the head it reached, the
    problems), so the integrity page shows every host's last verification without recomputing
    the fleet, and the audit trail shows who checked the evidence when. Any role may verify:
    it changes no evidence."""
    if not roles.can_read(user):
        raise PermissionDenied(roles.NO_ROLE)
    head = current_scan(host)  # read first: a scan finishing meanwhile is verified next time
    result = verify_host(host)
    return record(VERIFIED_ACTION, verification_target(host), actor=user, host=host.name,
                  scans=result.scans, head_scan=head.pk if head else None,
                  head_chain_digest=head.chain_digest if head else None,
                  problems=result.problems[:KEPT_PROBLEMS], problem_count=len(result.problems))


def record_report_verification(user, report: Report) -> AuditEvent:
    """Re-hash one succeeded report's file against its recorded sha256 on request (the Reports
    page's "Verify") and keep the answer as a ``report.verified`` audit event: ``ok`` and the
    problem (the file altered or missing). Any role may verify: it changes nothing."""
    if not roles.can_read(user):
        raise PermissionDenied(roles.NO_ROLE)
    if report.state != ReportState.SUCCEEDED:
        raise ValueError(f"report #{report.pk} is {report.state}: only a succeeded report has a file to verify")
    problem = verify_report(report)
    return record(REPORT_VERIFIED_ACTION, report_target(report), actor=user, ok=problem is None,
                  problem=problem or "", sha256=report.sha256)

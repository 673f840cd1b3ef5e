"""The posture summary: which hosts make up the fleet at a moment, and failing findings by
severity (fleet-wide or per host), for the overview page and ``GET /api/v1/posture/``.

Scores and coverage come from ``posture.queries.rollups`` (over (host, control) pairs, with
posture/queries/scores.py's definitions); this module adds what rollups do not count:
failing *results* (check x resource, after exceptions) by the severity of their check."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from posture.jobs.evaluate import check_controls
from posture.models import DockerHost, ScanRun
from posture.queries.rollups import Read, cached, read
from posture.queries.scans import HostRef, current_scan_id, current_scans
from posture.queries.verdicts import findings


def fleet_at(at: datetime | None) -> QuerySet[DockerHost]:
    """The hosts of the fleet at ``at`` (default: now): not archived then (an archived
    host's history still counts for the days before it was archived)."""
    hosts = DockerHost.objects.all()
    if at is None:
        return hosts.filter(archived_at__isnull=True)
    return hosts.filter(Q(archived_at__isnull=True) | Q(archived_at__gt=at))


def failing_by_severity(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None, at: datetime | None, *,
                        framework: str | None = None) -> dict[str | None, int]:
    """severity -> failing results (after exceptions: an excepted failure is not failing) of
    the hosts' current scans at ``at``, for the checks of ``framework`` (default: every
    check); None counts checks retired from the catalog. One GROUP BY query."""
    from posture.queries.groups import failing_by

    return failing_by(findings(hosts, at, **({"framework": framework} if framework else {})), "severity")


@dataclass(frozen=True)
class Failing:
    """Failing results (after exceptions) of the hosts' current scans at a moment, counted
    per (host, check) with the check's severity: every "failing by severity" of a summary
    (per framework, per host) read from one GROUP BY query instead of one query each."""

    rows: list[tuple[int, str, str | None, int]]  # (host id, check id, severity, failing results)

    def by_severity(self, *, framework: str | None = None, host: int | None = None) -> dict[str | None, int]:
        """severity -> failing results, for the checks of ``framework`` (default: all) on
        ``host`` (default: every host); None counts checks retired from the catalog."""
        mapping = check_controls()
        out: dict[str | None, int] = defaultdict(int)
        for host_id, check_id, severity, n in self.rows:
            if host is not None and host_id != host:
                continue
            if framework is not None and all(slug != framework for slug, _ref in mapping.get(check_id, ())):
                continue
            out[severity] += n
        return dict(out)


def current_scan_ids(hosts: QuerySet[DockerHost], at: datetime | None) -> list[int]:
    """The ids of the hosts' current scans at ``at`` (default now), as a list (one query).

    Why a list rather than the subquery ``findings`` builds by default: given the scans as
    constants, PostgreSQL reads only their results through the evaluation index; with the
    subquery it misjudges how few scans are current and joins every scan's results first
    (5x slower on a filtered fleet page of the seeded benchmark, see bench/api.py)."""
    return list(current_scans(hosts, at).values_list("pk", flat=True))


def failing(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None, at: datetime | None, *,
            scans: list[int] | None = None, state: Read | None = None) -> Failing:
    """The failing results of the hosts (or of ``scans``, their current scans at ``at``)
    at ``at`` per (host, check): one query, cached as the rollups are (``state``: their
    ``read`` of the same hosts, moment and scans)."""
    def compute() -> Failing:
        qs = findings(hosts, at, scans=scans, status="fail").order_by().values_list("host_id", "check_id", "severity")
        return Failing(list(qs.annotate(n=Count("*")).values_list("host_id", "check_id", "severity", "n")))

    return cached("failing", (), state or read(hosts, at, scans), compute)


def fleet_hosts(at: datetime | None, hosts: QuerySet[DockerHost] | None = None) -> QuerySet[DockerHost]:
    """The hosts of the fleet at ``at`` (``fleet_at``; narrowed to ``hosts``) registered by
    then, annotated with ``current_scan_id`` and ``scanned_at`` (its finish) at ``at``."""
    rows = fleet_at(at)
    if hosts is not None:
        rows = rows.filter(pk__in=hosts.values("pk"))
    if at is not None:
        rows = rows.filter(created_at__lte=at)
    return rows.annotate(current_scan_id=current_scan_id("pk", at)).annotate(
        scanned_at=Subquery(ScanRun.objects.filter(pk=OuterRef("current_scan_id")).values("finished_at")[:1]))


def host_names(ids: Iterable[int]) -> dict[int, str]:
    """host id -> name (one query; none for no ids)."""
    ids = list(ids)
    return dict(DockerHost.objects.filter(pk__in=ids).values_list("pk", "name")) if ids else {}

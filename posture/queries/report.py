"""What the PDF audit report reads that no other query answers yet: the hosts in scope with
their scans in the period, the framework's checks per control, the failing resources of each
check at the period's end (the first few and a count), the exceptions and attestations of the
period with their people, and the population for sampling (a summary per host, and the full
list while it is small).

Each function runs a fixed number of queries whatever the size of the fleet or the period,
and returns plain rows (dataclasses), so the renderer never touches a model. Lists that grow
with the fleet are bounded (``limit``/``per_check``) and come with their total: the report
says "and K more" and points to the CSV that holds every row."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, F, Max, Min, Q, Window
from django.db.models.functions import RowNumber

from posture.choices import ScanState
from posture.models import Check, DockerHost, Framework
from posture.queries.exports import attestations_during, exceptions_during, scans_during
from posture.queries.history import Period, clip_period
from posture.queries.scans import current_scans
from posture.queries.verdicts import findings


@dataclass(frozen=True)
class FrameworkInfo:
    slug: str
    name: str
    version: str


def framework_info(slug: str) -> FrameworkInfo:
    """The framework's name and version (raises Framework.DoesNotExist when unknown)."""
    row = Framework.objects.get(slug=slug)
    return FrameworkInfo(row.slug, row.name, row.version)


@dataclass
class ScopeHost:
    """A host in scope and what it did in the period."""

    id: int
    name: str
    created_at: datetime
    archived_at: datetime | None
    interval_minutes: int
    probe_enabled: bool
    enabled: bool
    scans: dict[str, int] = field(default_factory=dict)  # state -> scans in the period

    @property
    def scan_total(self) -> int:
        return sum(self.scans.values())


def scope_hosts(host_ids: list[int], period: Period) -> list[ScopeHost]:
    """The hosts (by id, ordered by name) with their scans in the period per state. Two queries."""
    rows = {pk: ScopeHost(pk, name, created, archived, minutes, probe, enabled)
            for pk, name, created, archived, minutes, probe, enabled in
            DockerHost.objects.filter(pk__in=host_ids).order_by("name").values_list(
                "pk", "name", "created_at", "archived_at", "scan_interval_minutes", "probe_enabled", "enabled")}
    counts = (scans_during(period, host_ids).order_by().values("host_id", "state").annotate(n=Count("*"))
              .values_list("host_id", "state", "n"))
    for host_id, state, n in counts:
        rows[host_id].scans[state] = n
    return list(rows.values())


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    severity: str
    automated: bool
    remediation: str


def checks_by_control(framework: str) -> dict[str, list[CheckInfo]]:
    """Control ref -> the catalog checks supporting it, worst severity first, then by id. One query."""
    order = {s: i for i, s in enumerate(("critical", "high", "medium", "low", "info"))}
    out: dict[str, list[CheckInfo]] = defaultdict(list)
    for ref, *row in (Check.objects.filter(controls__framework__slug=framework)
                      .values_list("controls__ref", "id", "title", "severity", "automated", "remediation")):
        out[ref].append(CheckInfo(*row))
    for checks in out.values():
        checks.sort(key=lambda c: (order.get(c.severity, 9), c.id))
    return dict(out)


@dataclass(frozen=True)
class FailingResource:
    host: str
    resource_type: str
    resource: str
    detail: str
    failing_since: datetime | None
    scan_id: int


def failing_resources(host_ids: list[int], at: datetime, framework: str, per_check: int = 10
                      ) -> dict[str, tuple[list[FailingResource], int]]:
    """Check id -> (its first ``per_check`` failing resources at ``at``, after exceptions, the
    longest failing first; how many fail in all), over the hosts' current scans at ``at``
    (posture.queries.verdicts.findings). Two queries: counts per check, and the first rows
    per check picked by a window function in SQL, over the current scans' ids read first
    (given as a subquery, PostgreSQL joined every scan's results before keeping the current
    ones: 50 times slower on a fleet's year)."""
    scans = list(current_scans(host_ids, at).values_list("pk", flat=True))
    failing = findings(scans=scans, at=at, framework=framework, status="fail")
    totals = dict(failing.order_by().values("check_id").annotate(n=Count("*")).values_list("check_id", "n"))
    if not totals:
        return {}
    ranked = failing.order_by().annotate(rank=Window(
        RowNumber(), partition_by=[F("check_id")],
        order_by=[F("failing_since").asc(nulls_last=True), F("host_name").asc(), F("resource").asc()]))
    out: dict[str, list[FailingResource]] = defaultdict(list)
    rows = ranked.filter(rank__lte=per_check).values_list(
        "check_id", "host_name", "resource_type", "resource", "detail", "failing_since", "scan_id", "rank")
    for check_id, host, rtype, resource, detail, since, scan_id, _rank in sorted(rows, key=lambda r: (r[0], r[-1])):
        out[check_id].append(FailingResource(host, rtype, resource, detail, since, scan_id))
    return {check_id: (out[check_id], n) for check_id, n in totals.items()}


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    check_id: str
    host: str | None  # None: every host
    resource_pattern: str
    justification: str
    proposed_by: str
    proposed_at: datetime
    approved_by: str
    approved_at: datetime | None
    expires_at: datetime
    revoked_by: str
    revoked_at: datetime | None

    def expires_within(self, period: tuple[datetime, datetime]) -> bool:
        return period[0] <= self.expires_at < period[1]


def exceptions_of_period(period: Period, host_ids: list[int], checks: list[str]) -> list[ExceptionRow]:
    """Approved exceptions in force at some moment of the period (posture.queries.exports),
    for ``checks``, with the names of who proposed, approved and revoked them. One query."""
    rows = exceptions_during(period, host_ids).filter(check_id__in=checks).values_list(
        "pk", "check_id", "host__name", "resource_pattern", "justification", "proposed_by__username", "proposed_at",
        "decided_by__username", "decided_at", "expires_at", "revoked_by__username", "revoked_at")
    return [ExceptionRow(pk, check, host, pattern, why, by or "", at, approver or "", decided, expires, rev or "",
                         revoked)
            for pk, check, host, pattern, why, by, at, approver, decided, expires, rev, revoked in rows]


@dataclass(frozen=True)
class AttestationRow:
    id: int
    check_id: str
    host: str | None  # None: every host
    statement: str
    attested_by: str
    attested_at: datetime
    valid_until: datetime
    has_file: bool


def attestations_of_period(period: Period, host_ids: list[int], checks: list[str]) -> list[AttestationRow]:
    """Attestations valid at some moment of the period for ``checks``. One query."""
    rows = attestations_during(period, host_ids).filter(check_id__in=checks).values_list(
        "pk", "check_id", "host__name", "statement", "attested_by__username", "attested_at", "valid_until", "file")
    return [AttestationRow(pk, check, host, text, by or "", at, until, bool(upload))
            for pk, check, host, text, by, at, until, upload in rows]


@dataclass(frozen=True)
class PopulationHost:
    """One host's share of the population: how many scans, per state, and the id range."""

    host: str
    scans: int
    succeeded: int
    first_id: int
    last_id: int
    first_at: datetime | None
    last_at: datetime | None

    @property
    def other(self) -> int:
        return self.scans - self.succeeded


@dataclass(frozen=True)
class PopulationScan:
    id: int
    host: str
    at: datetime | None  # finished (or queued, when it has not finished)
    state: str
    manifest_digest: str
    chain_digest: str


@dataclass
class Population:
    total: int
    hosts: list[PopulationHost]
    scans: list[PopulationScan]  # every scan when total <= limit, else empty
    listed: bool


def population(period: Period, host_ids: list[int], limit: int = 1500) -> Population:
    """The scans of the period (posture.queries.exports.scans_during): a summary per host, and
    every scan (id, host, time, state, manifest and chain digests) when there are at most
    ``limit``. Two or three queries."""
    start, end = clip_period(period)
    scans = scans_during((start, end), host_ids)
    hosts = [PopulationHost(*row) for row in scans.order_by("host__name").values("host__name").annotate(
        n=Count("*"), ok=Count("pk", filter=Q(state=ScanState.SUCCEEDED)), first=Min("pk"), last=Max("pk"),
        first_at=Min("finished_at"), last_at=Max("finished_at"),
    ).values_list("host__name", "n", "ok", "first", "last", "first_at", "last_at")]
    total = sum(h.scans for h in hosts)
    rows: list[PopulationScan] = []
    if total <= limit:
        for pk, host, finished, queued, state, manifest, chain in scans.values_list(
                "pk", "host__name", "finished_at", "queued_at", "state", "evidence_set__digest", "chain_digest"):
            rows.append(PopulationScan(pk, host, finished or queued, state, manifest or "", chain or ""))
    return Population(total, hosts, rows, total <= limit)

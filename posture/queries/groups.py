"""Findings grouped in SQL, so a 9-container host is a handful of rows, not 340.

Both groupings take a ``posture.queries.verdicts.findings`` queryset (already filtered) and
count its rows per verdict **after exceptions and attestations** with one GROUP BY query:
the counts beside each group are exactly the rows its link lists.

- ``by_resource``: one row per (host, resource type, resource), worst first; a lazy
  ``values`` queryset, so pagination stays in the database.
- ``by_control``: one row per control of a framework. A check may support several controls,
  so the rows are grouped by check in SQL (bounded by the catalog) and summed per control
  in Python; a control's counts are the sum over the checks that support it, as the
  control rollups count them.
- ``resources_with_failures``: for one host's page, every resource with its counts and its
  failing checks (each with the result and scan that locate its evidence), in two queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, QuerySet

from posture.jobs.evaluate import check_controls
from posture.models import CheckResult, Control
from posture.queries.verdicts import STATUS_ORDER, verdict_q

Counts = dict[str, int]


def _counts() -> dict[str, Count]:
    """One ``Count`` per verdict (``n_<status>``), each over the rows with that verdict."""
    return {f"n_{s}": Count("pk", filter=verdict_q([s])) for s in STATUS_ORDER}


def _as_counts(row: dict) -> Counts:
    return {s: row[f"n_{s}"] for s in STATUS_ORDER if row.get(f"n_{s}")}


def by_resource(qs: QuerySet[CheckResult]) -> QuerySet:
    """Rows ``{host_id, host_name, resource_type, resource, n_<status>..., total}`` per
    resource, most failures first (then errors, host, resource). One lazy query."""
    return (qs.order_by().values("host_id", "host_name", "resource_type", "resource")
            .annotate(total=Count("pk"), **_counts())
            .order_by(F("n_fail").desc(), F("n_error").desc(), "host_name", "resource_type", "resource"))


def resource_counts(row: dict) -> Counts:
    """The per-verdict counts of a ``by_resource`` row, worst first, zeros left out."""
    return _as_counts(row)


@dataclass
class ControlGroup:
    """One control of a framework with its findings counted per verdict."""

    ref: str
    title: str
    section: str
    counts: Counts = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def worst(self) -> str | None:
        return next((s for s in STATUS_ORDER if self.counts.get(s)), None)


def by_control(qs: QuerySet[CheckResult], framework: str) -> list[ControlGroup]:
    """One row per control of ``framework`` that has findings in ``qs``, worst status first
    (failing controls on the first page), in document order within a status. Two
    queries: the GROUP BY over checks and the framework's controls with their checks."""
    per_check = {row["check_id"]: _as_counts(row)
                 for row in qs.order_by().values("check_id").annotate(**_counts())}
    groups: list[ControlGroup] = []
    controls = (Control.objects.filter(framework__slug=framework, checks__id__in=list(per_check))
                .values_list("ref", "title", "section", "sort_key", "checks__id").order_by("sort_key", "checks__id"))
    by_ref: dict[str, ControlGroup] = {}
    for ref, title, section, _key, check_id in controls:
        group = by_ref.get(ref)
        if group is None:
            group = by_ref[ref] = ControlGroup(ref, title, section)
            groups.append(group)
        group.checks.append(check_id)
        for s, n in per_check.get(check_id, {}).items():
            group.counts[s] = group.counts.get(s, 0) + n
    for group in groups:
        group.counts = {s: group.counts[s] for s in STATUS_ORDER if group.counts.get(s)}
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    return sorted(groups, key=lambda g: rank.get(g.worst or "", len(rank)))  # stable: document order within


@dataclass(frozen=True)
class FailingCheck:
    """One failing finding of a resource: the check, and where its evidence is."""

    check_id: str
    title: str | None
    severity: str | None
    scan_id: int
    result_id: int
    controls: tuple[tuple[str, str], ...] = ()  # (framework slug, ref) the check supports


@dataclass
class ResourceGroup:
    """One resource of a host with its findings counted per verdict and its failing checks
    (worst severity first)."""

    host_id: int
    resource_type: str
    resource: str
    counts: Counts
    total: int
    failing: list[FailingCheck] = field(default_factory=list)


def resources_with_failures(qs: QuerySet[CheckResult]) -> list[ResourceGroup]:
    """Every resource of a ``findings`` queryset (meant for one host: its daemon, host,
    images and containers) with its counts per verdict and its failing checks, most
    failures first. Two queries whatever the number of resources: the ``by_resource``
    GROUP BY and the failing rows themselves."""
    groups = {(row["host_id"], row["resource_type"], row["resource"]):
              ResourceGroup(row["host_id"], row["resource_type"], row["resource"], _as_counts(row), row["total"])
              for row in by_resource(qs)}
    mapping = check_controls()
    # Stored failures with the exception that applies, if any (tested per failing row in the
    # SELECT, after the WHERE has narrowed the rows: the same verdict as ``status="fail"``).
    failing = (qs.filter(status="fail").order_by("severity_rank", "check_id", "resource", "result_id")
               .values_list("host_id", "resource_type", "resource", "check_id", "title", "severity", "scan_id",
                            "result_id", "exception_id"))
    for host_id, rtype, resource, check_id, title, severity, scan_id, result_id, exception_id in failing:
        group = groups.get((host_id, rtype, resource))
        if group is not None and exception_id is None:
            group.failing.append(FailingCheck(check_id, title, severity, scan_id, result_id,
                                              tuple(mapping.get(check_id, ()))))
    return list(groups.values())


def failing_by(qs: QuerySet[CheckResult], field: str) -> dict:
    """Failing findings (verdict ``fail``: stored failures no exception in force excepts) of a
    ``findings`` queryset, counted per value of ``field`` (``host_id``, ``severity``...) in one
    GROUP BY. The exception test runs in the aggregate, over the stored failures only: a WHERE
    on the verdict lets the planner test every evaluation's failing rows before it narrows them
    to the scans read (ten times slower on a seeded year)."""
    rows = (qs.filter(status="fail").order_by().values_list(field)
            .annotate(n=Count("pk"), excepted=Count("exception_id")).values_list(field, "n", "excepted"))
    return {value: n - excepted for value, n, excepted in rows}

"""Reports as the pages read them: the listing (newest first, with who asked), one report,
the hosts a request may be scoped to, and the last time each report's file was verified from
the pages (a ``report.verified`` audit event, ``posture.jobs.integrity.record_report_verification``).

The listing is filtered by ``posture.filtersets.ReportFilterSet``; a page of it costs a fixed
number of queries (the reports with their requester, their last verifications)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max, QuerySet, Subquery

from posture.models import AuditEvent, DockerHost, Framework, Report

REPORT_VERIFIED_ACTION = "report.verified"


def reports() -> QuerySet[Report]:
    """Every report, newest first, with its requester (the FilterSet narrows it)."""
    return Report.objects.select_related("requested_by").order_by("-id")


def report(pk: int) -> Report | None:
    return reports().filter(pk=pk).first()


def report_target(report: Report | int) -> str:
    """The audit target of a report's events (as ``request_report`` records them)."""
    return f"report #{report if isinstance(report, int) else report.pk}"


def frameworks() -> list[tuple[str, str]]:
    """(slug, "name version") of every framework loaded, by slug."""
    return [(slug, f"{name} {version}".strip() or slug) for slug, name, version in
            Framework.objects.order_by("slug").values_list("slug", "name", "version")]


@dataclass(frozen=True)
class ScopeHost:
    name: str
    archived: bool


def scope_hosts() -> list[ScopeHost]:
    """Every host a report may be scoped to, by name: archived ones too (their history is
    still evidence for a past period)."""
    return [ScopeHost(name, archived is not None) for name, archived in
            DockerHost.objects.order_by("name").values_list("name", "archived_at")]


def host_names(values: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Host names or ids (as the other pages' ``host=`` filters take them) -> ({value: name},
    [values naming no host]), in one query."""
    values = [v for v in values if v]
    ids = [int(v) for v in values if v.isdigit() and len(v) < 19]
    rows = DockerHost.objects.filter(name__in=values) | DockerHost.objects.filter(pk__in=ids)
    by_name, by_id = {}, {}
    for pk, name in rows.values_list("pk", "name"):
        by_name[name], by_id[str(pk)] = name, name
    found = {v: by_name.get(v) or by_id.get(v) for v in values}
    return {v: n for v, n in found.items() if n}, [v for v, n in found.items() if not n]


def last_verifications(reports: Iterable[Report]) -> dict[int, AuditEvent]:
    """Report id -> its latest ``report.verified`` event, for the given reports (one query)."""
    targets = {report_target(r): r.pk for r in reports}
    if not targets:
        return {}
    latest = (AuditEvent.objects.filter(action=REPORT_VERIFIED_ACTION, target__in=list(targets))
              .order_by().values("target").annotate(last=Max("id")).values("last"))
    return {targets[e.target]: e for e in AuditEvent.objects.filter(pk__in=Subquery(latest))}

"""What a control's page reads besides rollups and findings: the control and the checks that
support it, the evidence that decided one finding, and the control's failure windows.

Kept in the query layer so the page never queries models itself; each function is one query."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from posture.models import Check, CheckResult, Control, EvidenceSetItem, FailureWindow
from posture.queries.history import failure_windows

#: How far back a control's timeline looks.
TIMELINE_DAYS = 90
#: Windows listed under the timeline (newest first).
TIMELINE_ROWS = 200
#: Windows drawn as bars at most (a fleet-wide control can have thousands in 90 days: the
#: page says how many were left out rather than loading them all).
TIMELINE_MAX = 2000


def control(framework: str, ref: str) -> Control | None:
    """The control ``ref`` of ``framework`` with its framework, or None."""
    return Control.objects.select_related("framework").filter(framework__slug=framework, ref=ref).first()


def checks_of(control: Control) -> list[Check]:
    """The checks that support ``control``, worst severity first, then by id."""
    order = {s: i for i, s in enumerate(("critical", "high", "medium", "low", "info"))}
    return sorted(control.checks.all(), key=lambda c: (order.get(c.severity, 9), c.id))


@dataclass(frozen=True)
class DecidingEvidence:
    """The stored evidence payload a finding was decided from."""

    kind: str
    key: str
    digest: str
    payload: object


def deciding_evidence(row: CheckResult) -> DecidingEvidence | None:
    """The payload of the evidence a finding names (``evidence_kind``/``evidence_key``) in
    the manifest of the finding's scan (``row.scan_id`` from ``findings``), or None when the
    check names none or the scan holds no such item."""
    if not row.evidence_kind:
        return None
    item = (EvidenceSetItem.objects.select_related("evidence")
            .filter(evidence_set__scans=row.scan_id, kind=row.evidence_kind, key=row.evidence_key).first())
    if item is None:
        return None
    return DecidingEvidence(item.kind, item.key, item.evidence.digest, item.evidence.payload)


@dataclass
class HostTimeline:
    """One host's failure windows of a control's checks over the timeline's period."""

    host_id: int
    host_name: str
    windows: list[FailureWindow] = field(default_factory=list)

    @property
    def failing_for(self) -> timedelta:
        return sum((w.duration for w in self.windows), timedelta())


@dataclass
class Timeline:
    start: datetime
    end: datetime
    hosts: list[HostTimeline]
    rows: list[FailureWindow]  # newest first, at most TIMELINE_ROWS
    total: int  # windows in the period
    drawn: int = 0  # windows drawn (at most TIMELINE_MAX, the earliest opened)


def timeline(check_ids: list[str], end: datetime | None = None, days: int = TIMELINE_DAYS) -> Timeline:
    """The failure windows of ``check_ids`` overlapping the ``days`` before ``end`` (default
    now), per host (``posture.queries.history.failure_windows``, clipped to the period).
    One query for the windows (a COUNT too past ``TIMELINE_MAX``), whatever the hosts."""
    end = min(end or timezone.now(), timezone.now())
    start = end - timedelta(days=days)
    windows: QuerySet[FailureWindow] = failure_windows(check=check_ids, period=(start, end)).select_related("host")
    listed = list(windows[:TIMELINE_MAX + 1]) if check_ids else []
    total = len(listed)
    if total > TIMELINE_MAX:
        listed, total = listed[:TIMELINE_MAX], windows.count()
    per_host: dict[int, HostTimeline] = {}
    for w in listed:
        per_host.setdefault(w.host_id, HostTimeline(w.host_id, w.host.name)).windows.append(w)
    hosts = sorted(per_host.values(), key=lambda h: (-h.failing_for, h.host_name))
    rows = sorted(listed, key=lambda w: (w.opened_at, w.pk), reverse=True)
    return Timeline(start, end, hosts, rows[:TIMELINE_ROWS], total, drawn=len(listed))


def bars(timeline: Timeline, width: int = 1000) -> dict[int, list[tuple[int, int]]]:
    """host id -> [(x, w)] of its windows on a ``width``-unit track of the period (SVG
    attributes, not inline styles: the CSP forbids those). At least one unit wide."""
    span = (timeline.end - timeline.start).total_seconds() or 1
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for host in timeline.hosts:
        for w in host.windows:
            x = int((w.clipped_start - timeline.start).total_seconds() / span * width)
            x2 = int((w.clipped_end - timeline.start).total_seconds() / span * width)
            out[host.host_id].append((max(0, min(x, width - 1)), max(1, min(x2, width) - x)))
    return dict(out)


def section_names(framework: str) -> dict[str, str]:
    """section -> its name in ``framework`` (one DISTINCT query)."""
    return dict(Control.objects.filter(framework__slug=framework).order_by().values_list("section", "section_name")
                .distinct())

"""What a control's page reads besides rollups and findings: the control and the checks that
support it, the evidence that decided one finding, and the control's failure windows.

Kept in the query layer so the page never queries models itself; each function is one query."""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Window:
    """One failure window of a timeline, as the page reads it (plain values: no model
    instance per window, a fleet-wide control has thousands in 90 days)."""

    host_id: int
    host_name: str
    check_id: str
    resource_type: str
    resource: str
    opened_at: datetime
    closed_at: datetime | None  # None: still failing
    clipped_start: datetime  # the part inside the timeline's period
    clipped_end: datetime
    duration: timedelta  # clipped_end - clipped_start


#: The columns of a ``Window``, in its field order, read with ``values_list``.
_WINDOW_COLUMNS = ("host_id", "host__name", "check_id", "resource_type", "resource", "opened_at", "closed_at",
                   "clipped_start", "clipped_end", "duration")


@dataclass
class HostTimeline:
    """One host's failure windows of a control's checks over the timeline's period, and
    their bars: (x, width) on a ``TRACK``-unit track of the period, drawn in order."""

    host_id: int
    host_name: str
    windows: list[Window] = field(default_factory=list)
    bars: list[tuple[int, int]] = field(default_factory=list)

    @property
    def failing_for(self) -> timedelta:
        return sum((w.duration for w in self.windows), timedelta())


@dataclass
class Timeline:
    start: datetime
    end: datetime
    hosts: list[HostTimeline]
    rows: list[Window]  # newest first, at most TIMELINE_ROWS
    total: int  # windows in the period
    drawn: int = 0  # windows drawn (at most TIMELINE_MAX, the earliest opened)


#: Units of a timeline's track: the bars are SVG attributes on a ``0 0 TRACK 10`` viewBox
#: (not inline styles: the CSP forbids those).
TRACK = 1000


def timeline(check_ids: list[str], end: datetime | None = None, days: int = TIMELINE_DAYS) -> Timeline:
    """The failure windows of ``check_ids`` overlapping the ``days`` before ``end`` (default
    now), per host (``posture.queries.history.failure_windows``, clipped to the period), with
    each host's bars. One query for the windows (a COUNT too past ``TIMELINE_MAX``),
    whatever the hosts."""
    end = min(end or timezone.now(), timezone.now())
    start = end - timedelta(days=days)
    windows: QuerySet[FailureWindow] = failure_windows(check=check_ids, period=(start, end))
    listed = [Window(*row) for row in windows.values_list(*_WINDOW_COLUMNS)[:TIMELINE_MAX + 1]] if check_ids else []
    total = len(listed)
    if total > TIMELINE_MAX:
        listed, total = listed[:TIMELINE_MAX], windows.count()
    per_host: dict[int, HostTimeline] = {}
    for w in listed:
        host = per_host.get(w.host_id)
        if host is None:
            host = per_host[w.host_id] = HostTimeline(w.host_id, w.host_name)
        host.windows.append(w)
    hosts = sorted(per_host.values(), key=lambda h: (-h.failing_for, h.host_name))
    span = (end - start).total_seconds() or 1
    for host in hosts:
        host.bars = [_bar((w.clipped_start - start).total_seconds() / span * TRACK,
                          (w.clipped_end - start).total_seconds() / span * TRACK) for w in host.windows]
    rows = listed[::-1]  # newest first: the query orders by (opened_at, id)
    return Timeline(start, end, hosts, rows[:TIMELINE_ROWS], total, drawn=len(listed))


def _bar(x1: float, x2: float) -> tuple[int, int]:
    """(x, width) of a window from its ends in track units: inside the track, at least one unit wide."""
    x = int(x1)
    return max(0, min(x, TRACK - 1)), max(1, min(int(x2), TRACK) - x)


def section_names(framework: str) -> dict[str, str]:
    """section -> its name in ``framework`` (one DISTINCT query)."""
    return dict(Control.objects.filter(framework__slug=framework).order_by().values_list("section", "section_name")
                .distinct())

"""History as failure windows and collection gaps: "failing since", time to remediate, and
when a host went unobserved.

Everything here reads the derived tables (posture/models/history.py) and ``ScanRun``, never
the verdicts: a year of a fleet is answered from its windows and scans, with a query count
that does not grow with hosts, scans or windows.

Definitions (one place each; the dashboard, PDF and API use these):

- **Period**: a half-open ``(start, end)`` of aware datetimes. An end in the future is read
  as now: nothing is known about time that has not happened.
- **Failure window** of a (host, check, resource): from the scan that first saw it fail to
  the scan where it passed, no longer applied or was gone (still open: ``closed_at`` null).
  Clipped to a period, its duration runs from ``max(opened_at, start)`` to
  ``min(closed_at or now, end)``.
- **Open at T**: ``opened_at <= T`` and (not closed, or ``closed_at > T``): exactly the
  windows whose failure the host's current scan at T reports (posture/queries/scans.py).
- **Time to remediate**: the full duration (``closed_at - opened_at``) of the windows closed
  within the period; mean, median and 90th percentile (linear interpolation, as
  PostgreSQL's ``percentile_cont``), per check, per control or per host.
- **Collection gap** of a host: a stretch between consecutive succeeded scans longer than
  twice its scan interval. The gap runs from when the next scan was due (the previous scan
  + one interval: evidence holds for one interval, as between any two on-time scans) to the
  next succeeded scan, so a daily host that missed three days has a three-day gap, the three
  days its daily posture has no row. After its last scan, a host is in a gap from one
  interval later to the end of its expected coverage, if that stretch is over twice the
  interval too. Before its first succeeded scan nothing was ever collected: if that scan
  came more than twice the interval after the host was registered, the whole wait is a gap.
- **Expected coverage** of a host: from its registration (or its first succeeded scan, if
  that is earlier, or if it came within twice the interval: the short wait for a first scan
  is not observed time) to the end of the period, now, or the moment it was archived,
  whichever is first. An archived host expects nothing more. A *disabled* host still does:
  disabling pauses collection without saying why, and the missing evidence shows as a gap
  (archive a host that is out of service for good). The interval is the host's current
  ``scan_interval_minutes`` (its history is not kept)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import MD5, Coalesce, Greatest, Lag, Lead, Least
from django.utils import timezone

from posture.choices import ScanState
from posture.models import DockerHost, FailureWindow, ScanRun

HostRef = DockerHost | int
Hosts = HostRef | Iterable[HostRef] | QuerySet[DockerHost] | None
Period = tuple[datetime, datetime]


# --- arguments -----------------------------------------------------------------------------

def clip_period(period: Period, now: datetime | None = None) -> Period:
    """``period`` checked (aware datetimes, start before end) with its end capped at now.
    A bad period is a ValueError naming the problem, never a silently empty answer."""
    try:
        start, end = period
    except (TypeError, ValueError):
        raise ValueError("a period is a pair (start, end) of datetimes") from None
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise ValueError(f"the period's {name} must be a datetime, not {type(value).__name__}")
        if timezone.is_naive(value):
            raise ValueError(f"the period's {name} must carry a time zone ({value.isoformat()})")
    if not start < end:
        raise ValueError(f"the period must start before it ends ({start.isoformat()} .. {end.isoformat()})")
    now = now or timezone.now()
    return start, min(end, max(now, start))


def host_filter(hosts: Hosts, field_name: str = "host_id") -> Q:
    """``hosts`` (None: all; one host or id; a DockerHost queryset; hosts or ids) as a filter
    on ``field_name``."""
    if hosts is None:
        return Q()
    if isinstance(hosts, DockerHost | int):
        return Q(**{field_name: hosts.pk if isinstance(hosts, DockerHost) else hosts})
    if isinstance(hosts, QuerySet):
        return Q(**{f"{field_name}__in": hosts.order_by().values("pk")})
    return Q(**{f"{field_name}__in": [h.pk if isinstance(h, DockerHost) else int(h) for h in hosts]})


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


# --- failure windows -----------------------------------------------------------------------

def failure_windows(hosts: Hosts = None, check: str | Iterable[str] | None = None, resource: str | None = None,
                    period: Period | None = None, open_at: datetime | None = None, *,
                    resource_type: str | None = None, closed: bool | None = None) -> QuerySet[FailureWindow]:
    """Failure windows, filtered, ordered and annotated in the database (paginate the result).

    ``period``: only windows overlapping it. ``open_at``: only windows open at that moment.
    ``closed``: only windows closed by now (True) or still open (False).
    Each row keeps ``opened_at``/``closed_at`` (null: still failing) and the scans that
    opened and closed it, and is annotated with ``clipped_start``/``clipped_end`` (the part
    inside the period; without a period, the window up to now) and ``duration`` (their
    difference). Ordered by ``opened_at``, then id."""
    rows = FailureWindow.objects.filter(host_filter(hosts))
    checks = _as_list(check)
    if checks is not None:
        rows = rows.filter(check_id__in=checks)
    if resource_type is not None:
        rows = rows.filter(resource_type=resource_type)
    if resource is not None:
        rows = rows.filter(resource=resource)
    if closed is not None:
        rows = rows.filter(closed_at__isnull=not closed)
    if open_at is not None:
        rows = rows.filter(Q(closed_at__isnull=True) | Q(closed_at__gt=open_at), opened_at__lte=open_at)
    now = timezone.now()
    if period is not None:
        start, end = clip_period(period, now)
        rows = rows.filter(Q(closed_at__isnull=True) | Q(closed_at__gt=start), opened_at__lt=end)
        clipped_start = Greatest("opened_at", Value(start, output_field=DateTimeField()))
        clipped_end = Least(Coalesce("closed_at", Value(end, output_field=DateTimeField())),
                            Value(end, output_field=DateTimeField()))
    else:
        clipped_start = F("opened_at")
        clipped_end = Coalesce("closed_at", Value(now, output_field=DateTimeField()))
    return rows.annotate(clipped_start=clipped_start, clipped_end=clipped_end).annotate(
        duration=ExpressionWrapper(F("clipped_end") - F("clipped_start"), output_field=DurationField()),
    ).order_by("opened_at", "id")


def open_window_subquery(at: datetime | None = None, *, value: str = "opened_at", host: str = "host_id",
                         check: str = "check_id", resource_type: str = "resource_type",
                         resource: str = "resource") -> Subquery:
    """"Failing since" as an expression: ``value`` (``opened_at`` by default, or
    ``opened_scan_id``, ``id``) of the window of the outer row's (host, check, resource) open
    at ``at`` (default: now), or null when it is not failing then.

    The keyword arguments name the outer query's fields, e.g. for verdict rows that carry
    their host as ``scan__host_id``:
    ``rows.annotate(failing_since=open_window_subquery(T, host="scan__host_id"))``.
    Now: one probe of the open-window unique index per row. At a past T: the windows of
    (host, check) opened by T, newest first, one row read."""
    windows = FailureWindow.objects.filter(host_id=OuterRef(host), check_id=OuterRef(check),
                                           resource_type=OuterRef(resource_type), resource=OuterRef(resource))
    if at is None:
        # The partial unique index is on md5(resource): match it so the planner can use it.
        windows = windows.alias(resource_md5=MD5("resource")).filter(
            closed_scan__isnull=True, resource_md5=MD5(OuterRef(resource)))
    else:
        windows = windows.filter(Q(closed_at__isnull=True) | Q(closed_at__gt=at), opened_at__lte=at)
    return Subquery(windows.order_by("-opened_at").values(value)[:1])


@dataclass(frozen=True)
class OpenFailure:
    """A failure open at some moment: since when, and which scan first saw it."""

    since: datetime
    opened_scan_id: int
    window_id: int


def failing_since(hosts: Hosts = None, at: datetime | None = None,
                  check: str | Iterable[str] | None = None) -> dict[tuple[int, str, str, str], OpenFailure]:
    """(host id, check, resource type, resource) -> OpenFailure for every failure open at
    ``at`` (default: now), in one query. For listings, annotate with
    ``open_window_subquery`` instead (it pages with the findings)."""
    rows = FailureWindow.objects.filter(host_filter(hosts))
    checks = _as_list(check)
    if checks is not None:
        rows = rows.filter(check_id__in=checks)
    if at is None:
        rows = rows.filter(closed_scan__isnull=True)
    else:
        rows = rows.filter(Q(closed_at__isnull=True) | Q(closed_at__gt=at), opened_at__lte=at)
    return {(h, c, rt, r): OpenFailure(since, scan, pk) for h, c, rt, r, since, scan, pk in rows.values_list(
        "host_id", "check_id", "resource_type", "resource", "opened_at", "opened_scan_id", "pk")}


# --- time to remediate ---------------------------------------------------------------------

REMEDIATION_GROUPS = ("check", "control", "host")


class _Percentile(Aggregate):
    """PostgreSQL's ordered-set ``percentile_cont(fraction) WITHIN GROUP (ORDER BY x)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


class _EpochSeconds(Func):
    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


@dataclass(frozen=True)
class Remediation:
    """Time to remediate one check, control or host: windows closed in the period."""

    key: str | int | tuple[str, str]  # check id, host id, or (framework slug, control ref)
    closed: int
    mean: timedelta
    median: timedelta
    p90: timedelta


def percentile(sorted_values: list[float], fraction: float) -> float:
    """``percentile_cont``: linear interpolation between the closest ranks (values sorted)."""
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def time_to_remediate(period: Period, by: str = "check", hosts: Hosts = None, *, framework: str | None = None,
                      check: str | Iterable[str] | None = None, in_sql: bool | None = None) -> list[Remediation]:
    """Mean, median and p90 time to remediate per check, control (``framework`` narrows it)
    or host, over the windows closed within ``period``; groups ordered by key. One query.

    PostgreSQL aggregates in SQL (``percentile_cont``); other databases (SQLite) read one
    (group, duration) row per window closed in the period and aggregate in Python.
    ``in_sql`` forces either path (tests compare them)."""
    if by not in REMEDIATION_GROUPS:
        raise ValueError(f"time to remediate is grouped by one of {', '.join(REMEDIATION_GROUPS)}, not {by!r}")
    start, end = clip_period(period)
    rows = FailureWindow.objects.filter(host_filter(hosts), closed_at__gte=start, closed_at__lt=end)
    checks = _as_list(check)
    if checks is not None:
        rows = rows.filter(check_id__in=checks)
    if by == "control":
        keys = ["catalog_check__controls__framework__slug", "catalog_check__controls__ref"]
        # One filter() call: a second one on this multi-valued relation would join it again.
        rows = rows.filter(catalog_check__controls__isnull=False) if framework is None else rows.filter(
            catalog_check__controls__framework__slug=framework)
    else:
        keys = ["check_id" if by == "check" else "host_id"]
    duration = ExpressionWrapper(F("closed_at") - F("opened_at"), output_field=DurationField())
    if in_sql is None:
        in_sql = connection.vendor == "postgresql"
    out = []
    if in_sql:
        seconds = _EpochSeconds(duration)
        grouped = (rows.values(*keys).annotate(n=Count("id"), mean=Avg(seconds), median=_Percentile(seconds, 0.5),
                                               p90=_Percentile(seconds, 0.9)).order_by(*keys))
        for row in grouped:
            key = tuple(row[k] for k in keys)
            out.append(Remediation(key if len(key) > 1 else key[0], row["n"], timedelta(seconds=row["mean"]),
                                   timedelta(seconds=row["median"]), timedelta(seconds=row["p90"])))
        return out
    durations: dict = defaultdict(list)
    for *key, value in rows.annotate(duration=duration).values_list(*keys, "duration"):
        durations[tuple(key) if len(key) > 1 else key[0]].append(value.total_seconds())
    for key in sorted(durations):
        values = sorted(durations[key])
        out.append(Remediation(key, len(values), timedelta(seconds=statistics.fmean(values)),
                               timedelta(seconds=percentile(values, 0.5)), timedelta(seconds=percentile(values, 0.9))))
    return out


# --- collection gaps -----------------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    """A stretch without collected evidence, clipped to the period asked about."""

    host_id: int
    start: datetime
    end: datetime
    last_scan_id: int | None  # the succeeded scan before it (None: the host was never scanned before)
    next_scan_id: int | None  # the succeeded scan that ended it (None: not ended by the period's end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass
class HostCoverage:
    """What a period expected of one host: ``start``..``end`` (empty when start >= end) and
    the gaps inside it."""

    host_id: int
    start: datetime
    end: datetime
    interval: timedelta
    gaps: list[Gap] = field(default_factory=list)

    @property
    def expected(self) -> timedelta:
        return max(self.end - self.start, timedelta(0))

    @property
    def gap_time(self) -> timedelta:
        return sum((g.duration for g in self.gaps), timedelta(0))


def host_coverage(period: Period, hosts: Hosts = None) -> dict[int, HostCoverage]:
    """Expected coverage and collection gaps of every host (or of ``hosts``) over ``period``,
    in two queries: the hosts, and their succeeded scans before the period's end, each with
    the next one's finish time (``LEAD``), keeping only those whose following stretch
    reaches into the period. Hosts expecting nothing in the period are left out."""
    start, end = clip_period(period)
    host_rows = DockerHost.objects.filter(host_filter(hosts, "pk")).values_list(
        "pk", "created_at", "archived_at", "scan_interval_minutes")
    order = [F("finished_at").asc(), F("id").asc()]
    scans = (
        ScanRun.objects.filter(host_filter(hosts), state=ScanState.SUCCEEDED, finished_at__lt=end)
        .annotate(previous_at=Window(Lag("finished_at"), partition_by=[F("host_id")], order_by=order),
                  next_at=Window(Lead("finished_at"), partition_by=[F("host_id")], order_by=order),
                  next_id=Window(Lead("id"), partition_by=[F("host_id")], order_by=order))
        .filter(Q(next_at__gt=start) | Q(next_at__isnull=True))
        .order_by("host_id", "finished_at", "id")
        .values_list("host_id", "id", "finished_at", "previous_at", "next_at", "next_id")
    )
    by_host: dict[int, list[tuple]] = defaultdict(list)
    for row in scans:
        by_host[row[0]].append(row[1:])
    out = {}
    for host_id, created_at, archived_at, minutes in host_rows:
        coverage = _coverage(host_id, created_at, archived_at, timedelta(minutes=minutes), by_host.get(host_id, []),
                             start, end)
        if coverage.start < coverage.end:
            out[host_id] = coverage
    return out


def _coverage(host_id: int, created_at: datetime, archived_at: datetime | None, interval: timedelta,
              scans: list[tuple], start: datetime, end: datetime) -> HostCoverage:
    """One host's coverage from its scan rows (id, finished_at, previous_at, next_at, next_id),
    oldest first: the succeeded scans before ``end`` whose following stretch reaches past
    ``start``. No rows: the host had no succeeded scan at all before ``end``."""
    until = min(end, archived_at) if archived_at else end
    limit = 2 * interval
    gaps: list[tuple[datetime, datetime, int | None, int | None]] = []
    if not scans:
        # Never scanned: a gap once the wait for a first scan is over twice the interval,
        # otherwise nothing is expected yet.
        expected_from = created_at if until - created_at > limit else until
        gaps.append((created_at, until, None, None))
    elif scans[0][2] is None:  # the host's first scan ever: was the wait for it a gap?
        first_id, first_at = scans[0][0], scans[0][1]
        expected_from = created_at if first_at - created_at > limit else first_at
        gaps.append((created_at, first_at, None, first_id))
    else:  # scanned before; the earlier stretches all ended by ``start``
        expected_from = start
    for scan_id, finished_at, _previous, next_at, next_id in scans:
        stretch_end = min(next_at, until) if next_at else until
        if stretch_end - finished_at > limit:
            gaps.append((finished_at + interval, stretch_end, scan_id,
                         next_id if next_at and next_at <= until else None))
    coverage = HostCoverage(host_id, max(start, expected_from), until, interval)
    for gap_start, gap_end, last, following in gaps:
        s, e = max(gap_start, coverage.start), min(gap_end, coverage.end)
        if s < e:
            coverage.gaps.append(Gap(host_id, s, e, last, following))
    return coverage


def collection_gaps(period: Period, hosts: Hosts = None) -> list[Gap]:
    """Every collection gap of the hosts over ``period``, ordered by host and start."""
    return [gap for _, coverage in sorted(host_coverage(period, hosts).items()) for gap in coverage.gaps]

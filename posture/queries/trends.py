"""Trends: score and coverage of a framework per day, fleet-wide and per host, over any
range of days (30/90/365 for the dashboard), from the pre-aggregated ``DailyPosture`` rows
(posture/jobs/history.py writes them: one per host, framework and day, from the day's last
succeeded scan, exceptions and attestations in force then).

One query per series (SUMs grouped by day, or by host and day), whatever the fleet's size.
A day without a row for a host is a collection gap: that host adds nothing to the day's sums
(never counted as passing), and the day reports how many hosts had a row (``hosts``). Every
day of the range is in the series; a day no host reported has no score.

Score and coverage are posture/queries/scores.py's, over the day's summed control counts;
``result_score`` is the same score over individual results (check x resource)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from posture.choices import ResultStatus
from posture.models import DailyPosture, DockerHost, Framework
from posture.queries import scores
from posture.queries.history import Hosts, host_filter

STATUSES = ResultStatus.order()
_FIELDS = [f"controls_{s}" for s in STATUSES] + ["results_pass", "results_fail"]
#: Longest range one call answers (ten years of days); a bigger one is a caller's mistake.
MAX_DAYS = 3660


@dataclass(frozen=True)
class TrendPoint:
    """One day of a series: control counts per status summed over the hosts that reported."""

    day: date
    hosts: int  # hosts with a row that day (a host's own series: 1, or 0 for a gap)
    controls: dict[str, int] = field(default_factory=dict)
    results_pass: int = 0
    results_fail: int = 0

    @property
    def gap(self) -> bool:
        return self.hosts == 0

    @property
    def score(self) -> float | None:
        return scores.score(self.controls)

    @property
    def coverage(self) -> float | None:
        return scores.coverage(self.controls)

    @property
    def result_score(self) -> float | None:
        return scores.score({"pass": self.results_pass, "fail": self.results_fail})


def last_days(days: int, today: date | None = None) -> tuple[date, date]:
    """The range of the last ``days`` days, today included (server time zone)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"a trend covers 1 to {MAX_DAYS} days, not {days!r}")
    today = today or timezone.localdate()
    return today - timedelta(days=days - 1), today


def _range(start: date, end: date) -> list[date]:
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, date) or isinstance(value, datetime):  # a datetime is a date too
            raise ValueError(f"the trend's {name} must be a date, not {type(value).__name__}")
    if end < start:
        raise ValueError(f"the trend must start on or before its end ({start} .. {end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"a trend covers at most {MAX_DAYS} days ({start} .. {end})")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _point(day: date, hosts: int, row: dict | None) -> TrendPoint:
    if row is None:
        return TrendPoint(day, 0)
    return TrendPoint(day, hosts, {s: row[f"controls_{s}"] or 0 for s in STATUSES if row[f"controls_{s}"]},
                      row["results_pass"] or 0, row["results_fail"] or 0)


def _check_framework(framework: str) -> None:
    """Called only when a series came back empty: an unknown slug is an error, not a flat line."""
    if not Framework.objects.filter(slug=framework).exists():
        known = ", ".join(Framework.objects.order_by("slug").values_list("slug", flat=True))
        raise ValueError(f"unknown framework {framework!r}; known: {known or 'none (load_catalog)'}")


def _rows(framework: str, start: date, end: date, hosts) -> QuerySet[DailyPosture]:
    return DailyPosture.objects.filter(host_filter(hosts), framework=framework, day__gte=start, day__lte=end)


def fleet_trend(framework: str, start: date, end: date, hosts: Hosts = None) -> list[TrendPoint]:
    """One point per day from ``start`` to ``end`` (inclusive) over every host (or ``hosts``)."""
    days = _range(start, end)
    rows = {row["day"]: row for row in _rows(framework, start, end, hosts).values("day")
            .annotate(n=Count("host_id"), **{f: Sum(f) for f in _FIELDS}).order_by("day")}
    if not rows:
        _check_framework(framework)
    return [_point(day, rows[day]["n"] if day in rows else 0, rows.get(day)) for day in days]


def host_trends(framework: str, start: date, end: date, hosts: Hosts = None) -> dict[int, list[TrendPoint]]:
    """host id -> one point per day (``hosts`` 1, or 0 on a gap day), for every host with a
    row in the range (and every host named in ``hosts``, even without one)."""
    days = _range(start, end)
    per_host: dict[int, dict[date, dict]] = defaultdict(dict)
    for row in _rows(framework, start, end, hosts).values("host_id", "day", *_FIELDS).order_by("host_id", "day"):
        per_host[row["host_id"]][row["day"]] = row
    if not per_host:
        _check_framework(framework)
    if hosts is not None and not isinstance(hosts, QuerySet):
        for h in [hosts] if isinstance(hosts, DockerHost | int) else hosts:
            per_host.setdefault(h.pk if isinstance(h, DockerHost) else int(h), {})
    return {host_id: [_point(day, 1, rows.get(day)) for day in days] for host_id, rows in sorted(per_host.items())}

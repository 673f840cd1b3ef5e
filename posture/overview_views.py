"""The Overview page (``/``): how compliant the fleet is per framework, per host, by
severity and over time, which hosts need attention, and the latest scans; now or "as of"
any past moment (``?at=``).

Everything is read through the query layer (rollups, findings, trends, collection gaps,
scans), each called once for the whole fleet, so the page costs the same number of queries
for 2 hosts or 2,000 (tests/posture/test_overview.py pins it). As of T: each host's current
scan at T, the exceptions and attestations in force at T, the trend ending on T's day, the
gaps of the 30 days before T and the scans queued by T."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from posture.choices import ScanState
from posture.filtersets import MomentField, unknown_message
from posture.host_views import is_overdue
from posture.models import DockerHost, ScanRun
from posture.queries import summary
from posture.queries.history import Gap, collection_gaps
from posture.queries.rollups import Counts, FrameworkRollup, coverage, fleet_and_hosts, score
from posture.queries.scans import current_scan_id, last_finished_scan_id, recent_scans
from posture.queries.summary import fleet_at
from posture.queries.trends import TrendPoint, fleet_trend, last_days
from posture.queries.verdicts import SEVERITY_ORDER
from posture.views import reader_required

#: The frameworks the overview scores, in the order shown, with their labels.
FRAMEWORKS: tuple[tuple[str, str], ...] = (
    ("cis-docker-1.8.0", "CIS Docker 1.8.0"),
    ("cis-docker-1.6.0", "CIS Docker (1.6.0 numbering)"),
    ("soc2-2017", "SOC 2"),
)
SLUGS = tuple(slug for slug, _ in FRAMEWORKS)
TREND_DAYS = (30, 90, 365)
GAP_DAYS = 30
RECENT_SCANS = 10
UNRATED = "unrated"  # failures of a check retired from the catalog (no severity any more)


class OverviewForm(forms.Form):
    """``?at=`` (ISO 8601 or the picker's ``YYYY-MM-DDTHH:MM``, server time; not in the
    future) and ``?days=`` (the trend's range). Any other parameter is refused, as on
    every page with filters: a typo must not silently show the present."""

    at = MomentField(required=False, label="As of")
    days = forms.TypedChoiceField(choices=[(str(d), f"{d} days") for d in TREND_DAYS], coerce=int,
                                  required=False, empty_value=TREND_DAYS[0], label="Trend")

    def __init__(self, data, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.unknown = sorted(set(data) - set(self.fields))

    def clean_at(self) -> datetime | None:
        at = self.cleaned_data.get("at")
        if at is not None and at > timezone.now():
            raise forms.ValidationError("%(value)s is in the future: posture only knows the past and the present",
                                        params={"value": at.isoformat()})
        return at

    def clean(self) -> dict[str, Any]:
        for name in self.unknown:
            self.add_error(None, f"{name[:40]}: {unknown_message(self.fields)}")
        return super().clean()

    def messages(self) -> list[str]:
        return [f"{name}: {m}" if name != "__all__" else m for name, ms in self.errors.items() for m in ms]


def percent(value: float | None) -> str:
    """A share as a whole percentage, rounded down (99.6 % is not 100 %) but not below what
    the float means (0.29 * 100 is 28.999...: 29 %), or an en dash for no value."""
    return "–" if value is None else f"{math.floor(round(value * 100, 6))}%"


def span(duration: timedelta) -> str:
    """A gap's length for people: days and hours, or hours and minutes when under a day."""
    minutes = int(duration.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    return f"{days} d {hours} h" if days else f"{hours} h {mins} min"


@dataclass
class FrameworkScore:
    slug: str
    label: str
    rollup: FrameworkRollup
    score: str
    coverage: str
    findings_url: str


@dataclass
class HostRow:
    host: DockerHost
    current: ScanRun | None
    failure: ScanRun | None  # the last finished scan by T, when it failed or errored
    overdue: bool
    scores: list[tuple[str, str, str]]  # (framework label, score, coverage), in FRAMEWORKS order
    findings_url: str
    host_url: str
    scan_url: str | None

    @property
    def attention(self) -> bool:
        return self.failure is not None or self.overdue


@dataclass
class TrendDay:
    day: date
    hosts: int
    cells: list[tuple[str, str, str]] = field(default_factory=list)  # (framework label, score, coverage)


class Links:
    """URLs of the overview's links, each carrying ``at`` when the page is "as of"."""

    def __init__(self, at: datetime | None, days: int) -> None:
        self.at, self.days = at, days

    def _with_at(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "at": self.at.isoformat()} if self.at else params

    def findings(self, **params: Any) -> str:
        return "/findings/?" + urlencode(self._with_at(params))

    def host(self, host_id: int) -> str:
        return f"/hosts/{host_id}/" + ("?" + urlencode(self._with_at({})) if self.at else "")

    def scan(self, scan_id: int) -> str:
        return f"/scans/{scan_id}/" + ("?" + urlencode(self._with_at({})) if self.at else "")

    def overview(self, days: int | None = None, now: bool = False) -> str:
        params = {} if now else self._with_at({})
        if (days or self.days) != TREND_DAYS[0]:
            params["days"] = days or self.days
        return "/" + ("?" + urlencode(params) if params else "")


def host_rows(hosts, at: datetime | None, moment: datetime, per_host: dict[int, dict[str, Counts]],
              links: Links) -> list[HostRow]:
    """Each host with its current and last finished scan at ``at`` (two queries) and its
    scores. A host registered after ``at`` with no scan by then is left out."""
    rows_qs = hosts.order_by("name", "pk").annotate(current_id=current_scan_id("pk", at),
                                                   finished_id=last_finished_scan_id("pk", at))
    listed = list(rows_qs)
    ids = {i for h in listed for i in (h.current_id, h.finished_id) if i}
    scans = {s.pk: s for s in ScanRun.objects.filter(pk__in=ids).defer("log", "warnings")} if ids else {}
    rows = []
    for h in listed:
        current, finished = scans.get(h.current_id), scans.get(h.finished_id)
        if current is None and at is not None and h.created_at > at:
            continue
        failure = finished if finished is not None and finished.state != ScanState.SUCCEEDED else None
        mine = per_host.get(h.pk, {})
        cells = [(label, percent(score(mine[s])), percent(coverage(mine[s]))) if s in mine else (label, "–", "–")
                 for s, label in FRAMEWORKS]
        rows.append(HostRow(h, current, failure, is_overdue(h, current, moment), cells,
                            links.findings(status="fail", host=h.pk), links.host(h.pk),
                            links.scan(current.pk) if current else None))
    return rows


def failing_by_severity(hosts, at: datetime | None, links: Links) -> list[tuple[str, int, str]]:
    """(severity, failing results, findings link) worst first: one GROUP BY over the
    findings after exceptions (an excepted failure is not failing)."""
    grouped = summary.failing_by_severity(hosts, at)
    out = [(s, grouped.get(s, 0), links.findings(status="fail", severity=s)) for s in SEVERITY_ORDER]
    if grouped.get(None):
        out.append((UNRATED, grouped[None], links.findings(status="fail")))
    return out


def trend(hosts, end: date, days: int) -> tuple[list[TrendDay], dict[str, Any]]:
    """The fleet's score and coverage per framework per day up to ``end`` (one query per
    framework), as table rows and as the chart's data (percentages, null on gap days)."""
    start, end = last_days(days, end)
    series = {slug: fleet_trend(slug, start, end, hosts) for slug in SLUGS}
    first: list[TrendPoint] = series[SLUGS[0]]
    table = [TrendDay(p.day, max(series[s][i].hosts for s in SLUGS),
                      [(label, percent(series[s][i].score), percent(series[s][i].coverage)) for s, label in FRAMEWORKS])
             for i, p in enumerate(first)]

    def pct(v: float | None) -> float | None:
        return None if v is None else round(v * 100, 1)

    chart = {"days": [p.day.isoformat() for p in first],
             "series": [{"label": label, "score": [pct(p.score) for p in series[slug]],
                         "coverage": [pct(p.coverage) for p in series[slug]]} for slug, label in FRAMEWORKS]}
    return table, chart


def scan_state_then(scan: ScanRun, at: datetime | None) -> tuple[str, str]:
    """(state, label) of a scan as it was at ``at``: one still running or queued then says so."""
    if at is None or (scan.finished_at is not None and scan.finished_at <= at):
        return scan.state, scan.get_state_display()
    if scan.started_at is not None and scan.started_at <= at:
        return ScanState.RUNNING.value, "running then"
    return ScanState.QUEUED.value, "queued then"


@reader_required
@require_safe
def overview(request: HttpRequest) -> HttpResponse:
    form = OverviewForm(request.GET)
    if not form.is_valid():
        return render(request, "posture/overview.html",
                      {"form": form, "errors": form.messages(), "days": TREND_DAYS[0], "trend_days": TREND_DAYS,
                       "tz": timezone.get_current_timezone_name()}, status=400)
    at: datetime | None = form.cleaned_data["at"]
    days: int = form.cleaned_data["days"]
    moment = at or timezone.now()
    links = Links(at, days)
    hosts = fleet_at(at)

    # ``at`` None reads posture now from its read model; a moment, the stored results. The
    # fleet's rollups and each host's tallies come from one computation.
    fleet, per_host = fleet_and_hosts(SLUGS, hosts, at)
    scores = [FrameworkScore(slug, label, fleet[slug], percent(fleet[slug].score), percent(fleet[slug].coverage),
                             links.findings(framework=slug, status="fail")) for slug, label in FRAMEWORKS]
    rows = host_rows(hosts, at, moment, per_host, links)
    severities = failing_by_severity(hosts, at, links)
    table, chart = trend(hosts, timezone.localdate(moment), days)
    gaps: list[Gap] = collection_gaps((moment - timedelta(days=GAP_DAYS), moment), hosts)
    names = {r.host.pk: r.host for r in rows}
    scans = [(s, *scan_state_then(s, at), links.scan(s.pk)) for s in recent_scans(at, RECENT_SCANS)]
    return render(request, "posture/overview.html", {
        "form": form, "at": at, "moment": moment, "days": days, "trend_days": TREND_DAYS, "links": links,
        "scores": scores, "labels": [label for _, label in FRAMEWORKS], "rows": rows,
        "attention": [r for r in rows if r.attention], "severities": severities,
        "failing": sum(n for _, n, _ in severities), "failing_url": links.findings(status="fail"),
        "trend_table": table, "trend_chart": chart, "gaps": [(g, names.get(g.host_id), span(g.duration)) for g in gaps],
        "gap_days": GAP_DAYS, "scans": scans,
        "picker_value": timezone.localtime(at).strftime("%Y-%m-%dT%H:%M") if at else "",
        "picker_max": timezone.localtime(timezone.now()).strftime("%Y-%m-%dT%H:%M"),
        "tz": timezone.get_current_timezone_name(), "now_url": links.overview(now=True),
        "range_links": [(d, links.overview(days=d)) for d in TREND_DAYS],
    })

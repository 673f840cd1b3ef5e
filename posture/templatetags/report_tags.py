"""Template helpers of the Reports page and the Export buttons."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone

register = template.Library()

#: Hosts named in a row's scope before "and N more".
SCOPE_NAMES = 3


@register.simple_tag
def export_url(framework: str = "", host: str = "", at: datetime | str | None = None) -> str:
    """The request form's URL preset from a page's context: its framework, host filter and
    as-of moment (each left out when empty)."""
    params = {"framework": framework or "", "host": host or "",
              "at": at.isoformat() if isinstance(at, datetime) else (at or "")}
    query = urlencode({k: v for k, v in params.items() if v})
    return reverse("report-new-page") + (f"?{query}" if query else "")


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d")


def _is_midnight(moment: datetime) -> bool:
    return timezone.localtime(moment).time() == time.min


@register.filter
def period(report) -> str:
    """``2026-09-01 – 2026-11-30`` (whole days, the end day included) or, when the period
    does not fall on day boundaries, its moments to the minute (UTC)."""
    start, end = report.period_start, report.period_end
    first = _day(start) if _is_midnight(start) else timezone.localtime(start).strftime("%Y-%m-%d %H:%M")
    last = (_day(end - timedelta(days=1)) if _is_midnight(end)
            else timezone.localtime(end).strftime("%Y-%m-%d %H:%M"))
    return f"{first} – {last}"


@register.filter
def scope(report) -> str:
    """Every host of the period, or the names in scope (the first few and how many more)."""
    if report.hosts is None:
        return "every host"
    names = list(report.hosts)
    shown = ", ".join(names[:SCOPE_NAMES])
    return shown + (f" and {len(names) - SCOPE_NAMES} more" if len(names) > SCOPE_NAMES else "")

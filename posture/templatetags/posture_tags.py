from datetime import date, datetime
from html import escape

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def get_cis(controls: dict) -> str:
    """The CIS v1.8.0 ids of a result's controls, comma-separated."""
    return ", ".join(controls.get("cis-docker-1.8.0", ()))


@register.simple_tag(takes_context=True)
def nav_link(context, name: str, label: str, exact: bool = False, also: str = "") -> str:
    """A navigation link marked ``aria-current="page"`` on its own section (the path starts
    with its URL, or with one of the space-separated prefixes in ``also``; ``exact`` for /)."""
    from django.urls import reverse
    from django.utils.html import format_html
    from django.utils.safestring import mark_safe

    url = reverse(name)
    path = getattr(context.get("request"), "path", "")
    current = path == url if exact else path.startswith((url, *also.split()))
    return format_html('<a href="{}"{}>{}</a>', url, mark_safe(' aria-current="page"') if current else "", label)


@register.filter
def percent(value: float | None) -> str:
    """A share as a whole percentage (rounded down), or an en dash for none: the overview's."""
    from posture.overview_views import percent as as_percent

    return as_percent(value)


@register.filter(expects_localtime=True)
def minute(value: datetime | None) -> str:
    """A moment as ``YYYY-MM-DD HH:MM`` in the current time zone: what ``|date:"Y-m-d H:i"``
    shows, without the date filter's per-call format lookup (pages print hundreds of moments
    in their tables). '' for none, as the date filter (so ``|default:"–"`` still applies)."""
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ""


@register.simple_tag
def timeline_rects(bars: list[tuple[int, int]]) -> str:
    """The SVG ``<rect>`` of each (x, width) bar of a timeline track, as one string: a
    fleet-wide control draws thousands, too many for a template loop. Only integers are
    written (``:d`` refuses anything else), so nothing here can carry markup."""
    return mark_safe("".join(f'<rect x="{x:d}" y="0" width="{w:d}" height="10"></rect>' for x, w in bars))  # noqa: S308


@register.simple_tag
def failing_items(links) -> str:
    """The ``<li>`` of each failing check of a resource (``posture.host_views.FailingLink``):
    a host's containers list hundreds, written here in one pass rather than a template loop
    of a dozen lookups each. Every value is escaped with ``html.escape``, exactly as ``{{ }}``
    escapes it (Django's ``escape`` is that function), so titles and URLs carry no markup."""
    out = []
    for f in links:
        check = f.check
        severity = escape(check.severity or "none"), escape(check.severity or "–")
        evidence = (f'<a href="{escape(f.evidence_url)}" title="the deciding evidence, on CIS {escape(f.ref)}\'s page">'
                    f'CIS {escape(f.ref)} evidence</a> · ') if f.evidence_url else ""
        out.append(f'<li><span class="sev sev-{severity[0]}">{severity[1]}</span> {escape(check.title or check.check_id)}'
                   f'\n        <span class="links">{evidence}<a href="{escape(f.findings_url)}" '
                   'title="this finding in the findings list">finding</a></span></li>')
    return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


@register.filter(expects_localtime=True)
def day(value: date | None) -> str:
    """A day (or a moment's day, in the current time zone) as ``YYYY-MM-DD``: what
    ``|date:"Y-m-d"`` shows, as cheaply as ``minute``. '' for none."""
    return value.strftime("%Y-%m-%d") if isinstance(value, date) else ""

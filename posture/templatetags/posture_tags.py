from datetime import datetime

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

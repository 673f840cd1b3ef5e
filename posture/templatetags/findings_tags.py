"""Template filters of the findings and controls pages."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict, key):
    """``mapping[key]``, or an empty list when absent (for loops)."""
    return mapping.get(key, []) if mapping else []


@register.filter
def duration(value: timedelta | None) -> str:
    """A duration as days and hours (``3d 4h``), minutes under an hour; '–' for none."""
    if value is None:
        return "–"
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m"

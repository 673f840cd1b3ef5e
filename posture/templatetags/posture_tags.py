from django import template

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

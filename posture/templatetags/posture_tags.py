from django import template

register = template.Library()


@register.filter
def get_cis(controls: dict) -> str:
    """The CIS v1.8.0 ids of a result's controls, comma-separated."""
    return ", ".join(controls.get("cis-docker-1.8.0", ()))

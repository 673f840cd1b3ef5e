"""The catalog as read: frameworks with their control counts, and one framework's controls
with the checks mapped to each (the reverse index of ``Check.controls``) and the rationale
(``note``: why a control is or is not supportable by container evidence)."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from posture.models import Check, Control, Framework
from posture.queries.verdicts import SEVERITY_ORDER


def frameworks() -> QuerySet[Framework]:
    """Every framework by slug, annotated with ``control_count`` and ``automated_count``
    (controls decided by checks). One query."""
    return Framework.objects.annotate(control_count=Count("controls"),
                                      automated_count=Count("controls", filter=Q(controls__assess="automated"))
                                      ).order_by("slug")


def mapped_controls(framework: Framework) -> list[Control]:
    """The framework's controls in document order, each with ``checks`` (a list: the checks
    mapped to it, worst severity first, then by id). Two queries, whatever the catalog."""
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    controls = list(Control.objects.filter(framework=framework).order_by("sort_key")
                    .prefetch_related(Prefetch("checks", queryset=Check.objects.order_by("id"))))
    for control in controls:
        control.checks_sorted = sorted(control.checks.all(), key=lambda c: (rank.get(c.severity, len(rank)), c.id))
    return controls

"""FilterSets shared by pages and the API (DESIGN: one FilterSet per model).

A filter value that cannot match (a misspelt action) is a 400 that lists the valid choices,
not an empty page that looks like "nothing happened"."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone
from django_filters import fields as filter_fields

from posture.models import ApiToken, AuditEvent
from posture.models.tokens import TokenState

#: Actions posture records (posture/models/audit.py ``record``). The filter also accepts any
#: other action already in the trail, so a new kind of event is filterable before it is
#: listed here.
KNOWN_ACTIONS = (
    "attestation.created",
    "exception.approved",
    "exception.proposed",
    "exception.rejected",
    "exception.revoked",
    "host.archived",
    "host.created",
    "host.deleted",
    "host.purged",
    "host.unarchived",
    "host.updated",
    "scan.requested",
    "token.created",
    "token.revoked",
    "user.created",
)


def audit_actions() -> list[tuple[str, str]]:
    """Known actions and those present in the trail (one DISTINCT query, run only when an
    ``action`` value is validated or a form offers the choices)."""
    present = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
    return [(a, a) for a in sorted(set(KNOWN_ACTIONS) | set(present))]


class ListingChoiceField(filter_fields.ChoiceField):
    """A choice field whose refusal lists every valid choice."""

    def validate(self, value) -> None:
        try:
            super().validate(value)
        except forms.ValidationError as exc:
            if getattr(exc, "code", None) != "invalid_choice":
                raise
            valid = ", ".join(str(key) for key, _label in self.choices if key != "")
            raise forms.ValidationError(
                "%(value)s is not one of the valid choices: %(valid)s",
                code="invalid_choice", params={"value": value, "valid": valid},
            ) from None


class ListingChoiceFilter(django_filters.ChoiceFilter):
    field_class = ListingChoiceField


class AuditEventFilterSet(django_filters.FilterSet):
    """The audit trail, filtered by what happened (action), who did it (actor: the user name,
    'cli', 'system' or 'bootstrap') and to what (target: a host name, 'exception #12', ...)."""

    action = ListingChoiceFilter(choices=audit_actions, label="Action", help_text="what happened, e.g. exception.approved")
    actor = django_filters.CharFilter(field_name="actor_label", label="Actor", help_text="user name, or cli / system / bootstrap")
    target = django_filters.CharFilter(field_name="target", label="Target", help_text="exact target, e.g. a host name or 'exception #12'")

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "target"]


class ApiTokenFilterSet(django_filters.FilterSet):
    """Personal API tokens by owner (user name; an admin's list holds everyone's) and state."""

    owner = django_filters.CharFilter(field_name="owner__username", label="Owner", help_text="user name")
    state = ListingChoiceFilter(choices=TokenState.choices, method="filter_state", label="State",
                                help_text="active, expired or revoked")

    class Meta:
        model = ApiToken
        fields = ["owner", "state"]

    def filter_state(self, queryset, name, value):
        now = timezone.now()
        expired = Q(expires_at__isnull=False, expires_at__lte=now)
        if value == TokenState.REVOKED:
            return queryset.filter(revoked_at__isnull=False)
        if value == TokenState.EXPIRED:
            return queryset.filter(expired, revoked_at__isnull=True)
        return queryset.filter(revoked_at__isnull=True).exclude(expired)

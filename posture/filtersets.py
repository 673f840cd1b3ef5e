"""FilterSets shared by pages and the API (DESIGN: one FilterSet per model).

A filter value that cannot match (a misspelt action) is a 400 that lists the valid choices,
not an empty page that looks like "nothing happened"."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django_filters import fields as filter_fields

from posture.choices import FINISHED_STATES, ScanState, Trigger
from posture.models import ApiToken, Attestation, AuditEvent, ControlException, DockerHost, ExceptionState, ScanRun
from posture.models.hosts import URL_SCHEMES
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


# --- hosts, scans, exceptions, attestations ----------------------------------------------
# Unknown parameters are refused by posture/api/filters.py (API backend and pages alike).

TRUE_FALSE = (("true", "true"), ("false", "false"))
ARCHIVED_CHOICES = (("false", "false (the default)"), ("true", "true"), ("all", "all"))


class TrueFalseFilter(ListingChoiceFilter):
    """Yes or no, spelled ``true`` or ``false``. django-filter's BooleanFilter reads any other
    word ("maybe", "yes") as "no filter" and answers everything; this one refuses it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("choices", TRUE_FALSE)
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        return qs.filter(**{self.field_name: value == "true"})


def _applies_to_host(queryset, value: str):
    """Rows scoped to the host named ``value`` and rows for every host (host empty): what
    applies to that host."""
    return queryset.filter(Q(host__name=value) | Q(host__isnull=True))


class HostFilterSet(django_filters.FilterSet):
    """Docker hosts. Archived hosts are left out unless ``archived=true`` (only them) or
    ``archived=all``."""

    name = django_filters.CharFilter(field_name="name", label="Name", help_text="exact host name")
    name_contains = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains",
                                              help_text="part of the host name, any case")
    enabled = TrueFalseFilter(label="Enabled", help_text="true or false")
    archived = ListingChoiceFilter(choices=ARCHIVED_CHOICES, method="filter_archived", label="Archived",
                                   help_text="false (the default), true or all")
    probe = TrueFalseFilter(field_name="probe_enabled", label="Host probe", help_text="host probe on: true or false")
    scheme = ListingChoiceFilter(choices=[(s, s) for s in URL_SCHEMES], method="filter_scheme", label="URL scheme",
                                 help_text="unix, tcp or ssh")
    last_scan_failed = TrueFalseFilter(method="filter_last_scan_failed", label="Latest scan failed",
                                       help_text="true: the host's latest finished scan failed or errored")

    class Meta:
        model = DockerHost
        fields = ["name", "name_contains", "enabled", "archived", "probe", "scheme", "last_scan_failed"]

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if not self.form.cleaned_data.get("archived"):
            queryset = queryset.filter(archived_at__isnull=True)
        return queryset

    def filter_archived(self, queryset, name, value):
        return queryset if value == "all" else queryset.filter(archived_at__isnull=value == "false")

    def filter_scheme(self, queryset, name, value):
        return queryset.filter(url__startswith=f"{value}://")

    def filter_last_scan_failed(self, queryset, name, value):
        latest = (ScanRun.objects.filter(host_id=OuterRef("pk"), state__in=FINISHED_STATES)
                  .order_by("-finished_at", "-id").values("state")[:1])
        failed = Q(last_finished_state__in=[ScanState.FAILED, ScanState.ERRORED])
        queryset = queryset.alias(last_finished_state=Subquery(latest))
        return queryset.filter(failed) if value == "true" else queryset.exclude(failed)


class ScanFilterSet(django_filters.FilterSet):
    """Scans by host name, state, trigger and finish time (``finished_after`` inclusive,
    ``finished_before`` exclusive; ISO 8601)."""

    host = django_filters.CharFilter(field_name="host__name", label="Host", help_text="exact host name")
    state = ListingChoiceFilter(choices=ScanState.choices, label="State")
    trigger = ListingChoiceFilter(choices=Trigger.choices, label="Trigger")
    finished_after = django_filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="gte",
                                                      label="Finished at or after", help_text="ISO 8601")
    finished_before = django_filters.IsoDateTimeFilter(field_name="finished_at", lookup_expr="lt",
                                                       label="Finished before", help_text="ISO 8601")

    class Meta:
        model = ScanRun
        fields = ["host", "state", "trigger", "finished_after", "finished_before"]


class ControlExceptionFilterSet(django_filters.FilterSet):
    """Exceptions by check, host (those that apply to it: its own and those for every host),
    state, in force at a moment, and expiring before a moment."""

    check = django_filters.CharFilter(field_name="check_id", label="Check", help_text="check id")
    host = django_filters.CharFilter(method="filter_host", label="Host",
                                     help_text="exceptions that apply to this host: its own and those for every host")
    state = ListingChoiceFilter(choices=ExceptionState.choices, label="State")
    in_force_at = django_filters.IsoDateTimeFilter(method="filter_in_force_at", label="In force at",
                                                   help_text="approved, not expired and not revoked at this moment")
    expiring_before = django_filters.IsoDateTimeFilter(field_name="expires_at", lookup_expr="lt",
                                                       label="Expiring before", help_text="ISO 8601")

    class Meta:
        model = ControlException
        fields = ["check", "host", "state", "in_force_at", "expiring_before"]

    def filter_host(self, queryset, name, value):
        return _applies_to_host(queryset, value)

    def filter_in_force_at(self, queryset, name, value):
        return queryset.filter(ControlException.active_q(value))


class AttestationFilterSet(django_filters.FilterSet):
    """Attestations by check, host (those that apply to it) and validity at a moment."""

    check = django_filters.CharFilter(field_name="check_id", label="Check", help_text="check id")
    host = django_filters.CharFilter(method="filter_host", label="Host",
                                     help_text="attestations that apply to this host: its own and those for every host")
    valid_at = django_filters.IsoDateTimeFilter(method="filter_valid_at", label="Valid at",
                                                help_text="attested at or before, and valid after, this moment")

    class Meta:
        model = Attestation
        fields = ["check", "host", "valid_at"]

    def filter_host(self, queryset, name, value):
        return _applies_to_host(queryset, value)

    def filter_valid_at(self, queryset, name, value):
        return queryset.filter(Attestation.active_q(value))

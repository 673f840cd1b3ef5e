"""FilterSets shared by pages and the API (DESIGN: one FilterSet per model).

A filter value that cannot match (a misspelt action) is a 400 that lists the valid choices,
not an empty page that looks like "nothing happened"."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

import django_filters
from django import forms
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import fields as filter_fields

from posture.choices import FINISHED_STATES, ResultStatus, ScanState, Trigger
from posture.models import (
    ApiToken,
    Attestation,
    AuditEvent,
    Check,
    CheckResult,
    Control,
    ControlException,
    DockerHost,
    ExceptionState,
    Framework,
    ScanRun,
)
from posture.models.hosts import URL_SCHEMES
from posture.models.tokens import TokenState
from posture.queries import verdicts
from posture.queries.rollups import FrameworkRollup, rollups

# --- StrictFilterSet: the base every listing's FilterSet can share ---------------------------
#
# An unknown query *parameter* (``?stauts=fail``) is a 400 listing the accepted ones, exactly
# like an unknown *value*: a silently ignored filter shows everything and looks like an answer.
# Subclasses name the parameters the endpoint reads besides filters in ``extra_params``.

#: Read by pagination and DRF's format override on every listing.
PAGING_PARAMS: tuple[str, ...] = ("page", "page_size", "format")


class StrictFilterSet(django_filters.FilterSet):
    """A FilterSet whose form refuses parameters it does not know (DRF's filter backend turns
    the form errors into the API's 400, pages show them). Override ``clean_filters`` for
    checks across fields (raise ``forms.ValidationError({"field": "message"})``)."""

    extra_params: ClassVar[tuple[str, ...]] = PAGING_PARAMS

    def accepted_params(self) -> list[str]:
        return sorted({*self.filters, *self.extra_params})

    def clean_filters(self, cleaned: dict[str, Any]) -> None:
        """Cross-field validation hook (default: nothing)."""

    def get_form_class(self):
        base = super().get_form_class()
        filterset = self

        class StrictForm(base):
            def clean(self):
                cleaned = super().clean()
                accepted = filterset.accepted_params()
                for key in self.data:
                    if key not in accepted:
                        self._errors[str(key)[:100]] = self.error_class(
                            [f"unknown parameter; accepted: {', '.join(accepted)}"])
                try:
                    filterset.clean_filters(cleaned)
                except forms.ValidationError as exc:
                    for name, errors in exc.error_dict.items() if hasattr(exc, "error_dict") else [(None, [exc])]:
                        if name in self.fields:
                            self.add_error(name, errors)
                        else:
                            self._errors[name or "__all__"] = self.error_class([m for e in errors for m in e])
                return cleaned

        StrictForm.__name__ = base.__name__
        return StrictForm


def parse_moment(raw: str) -> datetime:
    """An ISO 8601 date-time (or date: midnight) as an aware datetime (naive means server
    time). A well-formed but impossible date (February 30th) is refused, never a 500."""
    try:
        at = parse_datetime(raw)
    except ValueError:
        at = None
    if at is None:
        raise forms.ValidationError(
            "%(value)r is not a valid ISO 8601 date-time (e.g. 2026-02-28T10:00:00Z)",
            code="invalid", params={"value": raw[:40]})
    at = timezone.make_aware(at) if timezone.is_naive(at) else at
    # In UTC: PostgreSQL refuses offsets past 15:59 (``-23:59`` is valid ISO 8601). A moment
    # beyond the calendar in UTC (9999-12-31T23:59:59-23:59) is the calendar's last one.
    try:
        return at.astimezone(UTC)
    except OverflowError:
        edge = datetime.max if at.year > 1 else datetime.min
        return edge.replace(tzinfo=UTC)


class MomentField(forms.Field):
    def to_python(self, value):
        if value in (None, ""):
            return None
        return parse_moment(str(value))


class MomentFilter(django_filters.IsoDateTimeFilter):
    """A moment (``?at=``, ``?finished_after=``, ...) parsed as the API always has: in UTC
    before it reaches the database (django-filter's IsoDateTimeFilter passed ``-23:25``
    offsets on, which PostgreSQL refuses: a 500). An IsoDateTimeFilter only so that the schema
    says ``format: date-time``."""

    field_class = MomentField


Choices = Iterable[tuple[str, str]] | Callable[[], Iterable[tuple[str, str]]]


class CSVChoiceField(forms.Field):
    """One or more comma-separated values, each one of ``choices`` (a list or a callable,
    evaluated only when a value is checked); a refusal lists every valid choice."""

    def __init__(self, *args, choices: Choices = (), **kwargs) -> None:
        kwargs.pop("null_label", None)
        super().__init__(*args, **kwargs)
        self._choices = choices

    def valid(self) -> list[str]:
        choices = self._choices() if callable(self._choices) else self._choices
        return [str(key) for key, _label in choices]

    def to_python(self, value) -> list[str]:
        if value in (None, ""):
            return []
        values = [v.strip() for v in str(value).split(",") if v.strip()]
        valid = self.valid()
        bad = [v for v in values if v not in valid]
        if bad:
            raise forms.ValidationError("%(value)r is not one of the valid choices: %(valid)s", code="invalid_choice",
                                        params={"value": bad[0][:100], "valid": ", ".join(valid)})
        return values


class CSVChoiceFilter(django_filters.Filter):
    """``?status=fail,error``: any of the listed values."""

    field_class = CSVChoiceField

    def filter(self, qs, value):
        return qs.filter(**{f"{self.field_name}__in": value}) if value else qs


class _Keep(django_filters.Filter):
    """A parameter validated by the form and used by the FilterSet itself (not a column)."""

    def filter(self, qs, value):
        return qs


#: Actions posture records (posture/models/audit.py ``record``). The filter also accepts any
#: other action already in the trail, so a new kind of event is filterable before it is
#: listed here.
KNOWN_ACTIONS = (
    "attestation.created",
    "evidence.verified",
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
    "report.requested",
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
                code="invalid_choice", params={"value": str(value)[:100], "valid": valid},
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
    finished_after = MomentFilter(field_name="finished_at", lookup_expr="gte",
                                  label="Finished at or after", help_text="ISO 8601")
    finished_before = MomentFilter(field_name="finished_at", lookup_expr="lt",
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
    in_force_at = MomentFilter(method="filter_in_force_at", label="In force at",
                               help_text="approved, not expired and not revoked at this moment")
    expiring_before = MomentFilter(field_name="expires_at", lookup_expr="lt",
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
    valid_at = MomentFilter(method="filter_valid_at", label="Valid at",
                            help_text="attested at or before, and valid after, this moment")

    class Meta:
        model = Attestation
        fields = ["check", "host", "valid_at"]

    def filter_host(self, queryset, name, value):
        return _applies_to_host(queryset, value)

    def filter_valid_at(self, queryset, name, value):
        return queryset.filter(Attestation.active_q(value))


# --- findings and controls (posture/queries/verdicts.py, rollups.py) -------------------------

def framework_choices() -> list[tuple[str, str]]:
    return [(slug, slug) for slug in Framework.objects.order_by("slug").values_list("slug", flat=True)]


def check_choices() -> list[tuple[str, str]]:
    return [(c, c) for c in Check.objects.order_by("id").values_list("id", flat=True)]


class HostField(forms.CharField):
    """A host by name, or by id when all digits; an unknown one is refused (one query)."""

    def validate(self, value) -> None:
        super().validate(value)
        if value:
            if not DockerHost.objects.filter(verdicts.host_q(value, name="name", id="pk")).exists():
                raise forms.ValidationError("no host %(value)r (give its name or id)", code="invalid_choice",
                                            params={"value": value[:100]})


class HostFilter(_Keep):
    field_class = HostField


class _VerdictFilters(StrictFilterSet):
    """What findings and controls share: the moment, the hosts and their reading.

    ``hosts`` / ``scans`` / ``default_at`` choose the verdicts read (see
    ``posture.queries.verdicts.findings``); ``?at=`` overrides ``default_at`` (default now)."""

    at = MomentFilter(method="keep", label="At", help_text="ISO 8601 moment: exceptions and attestations in force "
                      "then (and, for a fleet, each host's current scan then)")

    def __init__(self, data=None, queryset=None, *, hosts=None, scans=None, default_at: datetime | None = None,
                 request=None, prefix=None) -> None:
        super().__init__(data, queryset, request=request, prefix=prefix)
        self.hosts, self.scans, self.default_at = hosts, scans, default_at
        if scans is not None:
            self.filters.pop("host", None)  # the scans are given: there is no fleet to narrow

    def keep(self, queryset, name, value):
        return queryset

    @property
    def moment(self) -> datetime:
        """The moment read (``?at=``, else the default, else now). Call after ``is_valid()``."""
        at = self.form.cleaned_data.get("at") if self.is_bound and self.is_valid() else None
        return at or self.default_at or timezone.now()


class FindingFilterSet(_VerdictFilters):
    """Findings (check x resource verdicts after exceptions), filtered and ordered in SQL:
    ``framework`` (+ ``control``, a ref within it), ``host`` (name or id), ``resource_type``,
    ``resource`` (exact), ``resource_contains``, ``check``, ``status`` and ``severity`` (any of
    a comma-separated list), ``new_since`` (failing since then or later), ``ordering`` (comma-
    separated names from ``ORDERINGS``, ``-`` descending). Pagination stays in the database."""

    framework = ListingChoiceFilter(choices=framework_choices, method="keep", label="Framework")
    control = django_filters.CharFilter(method="keep", label="Control", help_text="ref within the framework, e.g. 5.5")
    host = HostFilter(label="Host", help_text="host name or id")
    resource_type = CSVChoiceFilter(choices=[(t, t) for t in verdicts.RESOURCE_TYPES], label="Resource type")
    resource = django_filters.CharFilter(method="keep", label="Resource", help_text="exact resource name")
    resource_contains = django_filters.CharFilter(method="keep", label="Resource contains",
                                                  help_text="part of the resource name (case-insensitive)")
    check = ListingChoiceFilter(choices=check_choices, method="keep", label="Check")
    status = CSVChoiceFilter(choices=ResultStatus.choices, label="Status", help_text="after exceptions and attestations")
    severity = CSVChoiceFilter(choices=[(s, s) for s in verdicts.SEVERITY_ORDER], label="Severity")
    new_since = MomentFilter(method="keep", label="New since", help_text="failing since this moment or later")
    ordering = CSVChoiceFilter(choices=[(f"{sign}{name}", name) for name in verdicts.ORDERINGS for sign in ("", "-")],
                               label="Ordering", help_text="comma-separated; - for descending")

    #: The filters ``posture.queries.verdicts.filter_findings`` applies.
    FILTERS: ClassVar[tuple[str, ...]] = ("framework", "control", "host", "resource_type", "resource",
                                          "resource_contains", "check", "status", "severity", "new_since")

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("queryset", CheckResult.objects.none())
        super().__init__(*args, **kwargs)

    def clean_filters(self, cleaned: dict[str, Any]) -> None:
        if cleaned.get("control") and not cleaned.get("framework"):
            raise forms.ValidationError(
                {"control": "a control is a ref within a framework: add framework= (e.g. cis-docker-1.8.0)"})

    def filter_queryset(self, queryset):
        ordering = self.form.cleaned_data.get("ordering") or None
        return verdicts.order_findings(verdicts.filter_findings(queryset, **self._given()), ordering)

    def verdict_counts(self) -> dict[str, int]:
        """Rows per verdict under every filter but ``status`` (one GROUP BY query): the
        counts beside a table's status links, each equal to the rows its link lists."""
        base = verdicts.findings(self.hosts, self.moment, scans=self.scans, **self._given(skip=("status",)))
        return verdicts.verdict_counts(base)

    def _given(self, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """The filters given (validated), as ``filter_findings`` keyword arguments."""
        data = self.form.cleaned_data
        return {name: data[name] for name in self.FILTERS
                if name in self.filters and name not in skip and data.get(name) not in (None, "", [])}

    @property
    def qs(self):
        """The findings of the hosts (or scans) at the moment asked, filtered and ordered."""
        if not hasattr(self, "_qs"):
            self.queryset = verdicts.findings(self.hosts, self.moment, scans=self.scans)
        return super().qs


class ControlFilterSet(_VerdictFilters):
    """Control rollups of one framework (``?framework=``, or every framework when the
    listing allows it), for the fleet, one ``host`` or given scans, at ``?at=``: narrowed by
    ``ref``, ``section``, ``assess``, ``supportable`` (in SQL) and ``status`` (any of a list,
    the control's rolled-up status). Every framework holds a bounded number of controls, so
    ``status`` is applied to the computed rollup; the counts themselves come from
    ``posture.queries.rollups`` in a fixed number of queries."""

    framework = ListingChoiceFilter(choices=framework_choices, field_name="framework__slug", label="Framework")
    ref = django_filters.CharFilter(field_name="ref", label="Control ref", help_text="e.g. 5.5 or CC6.1")
    section = django_filters.CharFilter(field_name="section", label="Section", help_text="e.g. 5 or CC6")
    assess = ListingChoiceFilter(choices=[("automated", "automated"), ("manual", "manual")], label="Assessed by")
    supportable = django_filters.BooleanFilter(label="Supportable by container evidence")
    status = CSVChoiceFilter(choices=ResultStatus.choices, method="keep", label="Status",
                             help_text="the control's status after exceptions and attestations")
    host = HostFilter(label="Host", help_text="one host's rollup (name or id) instead of the fleet's")

    def __init__(self, *args, default_framework: str | None = None, **kwargs) -> None:
        kwargs.setdefault("queryset", Control.objects.all())
        super().__init__(*args, **kwargs)
        self.default_framework = default_framework

    def frameworks(self) -> list[str]:
        """The frameworks in scope: the one asked, the default, or all of them (one query)."""
        chosen = self.form.cleaned_data.get("framework") or self.default_framework
        return [chosen] if chosen else [slug for slug, _ in framework_choices()]

    def rollups(self) -> dict[str, FrameworkRollup]:
        """framework slug -> ``FrameworkRollup`` at the moment asked (cached)."""
        if not hasattr(self, "_rollups"):
            hosts = self.hosts
            host = self.form.cleaned_data.get("host") if "host" in self.filters else None
            if host:
                hosts = DockerHost.objects.filter(verdicts.host_q(host, name="name", id="pk"))
            self._rollups = rollups(self.frameworks(), hosts, self.moment, scans=self.scans)
        return self._rollups

    def rows(self) -> list:
        """The rollup rows passing every filter, in framework and document order (for
        endpoints that list one scan's controls: the list is bounded by the framework)."""
        wanted = set(self.qs.values_list("pk", flat=True))
        return [row for rollup in self.rollups().values() for row in rollup.controls if row.control_id in wanted]

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.default_framework and not self.form.cleaned_data.get("framework"):
            queryset = queryset.filter(framework__slug=self.default_framework)
        statuses = self.form.cleaned_data.get("status")
        if statuses:
            queryset = queryset.filter(pk__in=[row.control_id for rollup in self.rollups().values()
                                               for row in rollup.controls if row.status in statuses])
        return queryset

"""Admin: hosts are editable (TLS material write-only) and archived, never deleted; evidence and
scans read-only."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import format_html

from posture.jobs.hosts import archive_host, clean_host, messages_of, save_host, unarchive_host
from posture.models import (
    Attestation,
    AuditEvent,
    Check,
    Control,
    ControlException,
    DockerHost,
    Evidence,
    EvidenceSet,
    Framework,
    ScanRun,
)
from posture.models.hosts import INTERVAL_RULE, NAME_RULE, default_interval


class DockerHostForm(forms.ModelForm):
    """Validated by `posture.jobs.hosts.clean_host`, the rules the API and `addhost` use, so
    the same bad input gets the same message here. The fields do no checks of their own (no
    stripping, no length limit). TLS fields are write-only: leaving one empty keeps the
    stored value."""

    name = forms.CharField(required=False, strip=False, help_text=NAME_RULE)
    url = forms.CharField(required=False, strip=False, widget=forms.TextInput(attrs={"size": 60}),
                          help_text="unix:///var/run/docker.sock, tcp://host:2376 (with TLS), ssh://user@host")
    tls_ca = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, strip=False, help_text="PEM; empty keeps the stored one")
    tls_cert = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, strip=False, help_text="PEM; empty keeps the stored one")
    tls_key = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, strip=False, help_text="PEM; empty keeps the stored one")
    scan_interval_minutes = forms.IntegerField(initial=default_interval, help_text=INTERVAL_RULE)

    class Meta:
        model = DockerHost
        fields = ["name", "url", "tls_ca", "tls_cert", "tls_key", "probe_enabled", "scan_interval_minutes", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("tls_ca", "tls_cert", "tls_key"):
            self.initial[name] = ""

    def clean(self):
        data = super().clean()
        stored = DockerHost.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        changes = {}
        for name in self.Meta.fields:
            if name not in data:
                continue  # its own field check failed (e.g. not a number): already reported
            if name in ("tls_ca", "tls_cert", "tls_key") and not data[name]:
                if stored is not None:
                    data[name] = getattr(stored, name)  # keep the stored PEM
                continue
            changes[name] = data[name]
        try:
            clean_host(stored, changes)
        except ValidationError as exc:
            for field, messages in messages_of(exc).items():
                self.add_error(None if field == NON_FIELD_ERRORS else field, messages)
        self.host_changes = changes
        return data


class ArchivedFilter(admin.SimpleListFilter):
    """Archived hosts are hidden unless asked for, as in the API's default list."""

    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return [("no", "Active"), ("yes", "Archived"), ("all", "All")]

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {"selected": (self.value() or "no") == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}

    def queryset(self, request, queryset):
        value = self.value() or "no"
        if value == "all":
            return queryset
        return queryset.filter(archived_at__isnull=value == "no")


@admin.register(DockerHost)
class DockerHostAdmin(admin.ModelAdmin):
    """Writes go through `save_host` (validated, audited). No delete, for anyone: a host's
    scans are evidence; archive it instead (an action here, or DELETE in the API)."""

    form = DockerHostForm
    list_display = ["name", "url", "uses_tls", "probe_enabled", "scan_interval_minutes", "next_scan_at", "enabled",
                    "archived_at"]
    list_filter = [ArchivedFilter, "enabled", "probe_enabled"]
    search_fields = ["name", "url"]
    readonly_fields = ["archived_at"]
    actions = ["archive_hosts", "unarchive_hosts"]

    @admin.display(boolean=True, description="TLS")
    def uses_tls(self, obj: DockerHost) -> bool:
        return obj.uses_tls

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: DockerHost, form: DockerHostForm, change: bool) -> None:
        save_host(obj, form.host_changes, actor=request.user)

    @admin.action(description="Archive the selected hosts (history kept, never scanned)", permissions=["change"])
    def archive_hosts(self, request, queryset) -> None:
        done = sum(archive_host(host, actor=request.user)[1] for host in queryset)
        self.message_user(request, f"{done} host(s) archived; their history is kept.")

    @admin.action(description="Unarchive the selected hosts (they stay disabled)", permissions=["change"])
    def unarchive_hosts(self, request, queryset) -> None:
        done = sum(unarchive_host(host, actor=request.user)[1] for host in queryset)
        self.message_user(request, f"{done} host(s) unarchived; enable them to scan again.")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScanRun)
class ScanRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "host", "trigger", "state", "queued_at", "finished_at", "attempts", "counts", "error"]
    list_filter = ["state", "trigger", "host"]
    list_select_related = ["host"]


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ["digest", "kind", "size", "first_seen_at"]
    list_filter = ["kind"]
    fields = ["digest", "kind", "size", "first_seen_at", "pretty_payload"]
    readonly_fields = fields

    @admin.display(description="payload")
    def pretty_payload(self, obj: Evidence) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True, ensure_ascii=False))


@admin.register(EvidenceSet)
class EvidenceSetAdmin(ReadOnlyAdmin):
    list_display = ["digest", "item_count", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "target"]
    list_filter = ["action"]


@admin.register(Framework)
class FrameworkAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "version", "derived_from"]


@admin.register(Control)
class ControlAdmin(ReadOnlyAdmin):
    list_display = ["framework", "ref", "title", "level", "assess", "supportable"]
    list_filter = ["framework", "assess", "supportable", "level"]
    search_fields = ["ref", "title"]
    ordering = ["framework", "sort_key"]


@admin.register(Check)
class CheckAdmin(ReadOnlyAdmin):
    list_display = ["id", "title", "scope", "severity", "version", "automated"]
    list_filter = ["scope", "severity", "automated"]
    search_fields = ["id", "title"]


@admin.register(ControlException)
class ControlExceptionAdmin(ReadOnlyAdmin):
    """Read-only here: the workflow (propose, approve, revoke) goes through the API so every
    step is checked against roles and audited."""

    list_display = ["id", "check_id", "host", "resource_pattern", "state", "expires_at", "proposed_by", "decided_by",
                    "revoked_at"]
    list_filter = ["state"]


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["id", "check_id", "host", "attested_by", "attested_at", "valid_until"]

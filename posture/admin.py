"""Admin: hosts are editable (TLS material write-only), evidence and scans read-only."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html

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


class DockerHostForm(forms.ModelForm):
    """TLS fields are write-only: leaving one empty keeps the stored value."""

    tls_ca = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="PEM; empty keeps the stored one")
    tls_cert = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="PEM; empty keeps the stored one")
    tls_key = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, help_text="PEM; empty keeps the stored one")

    class Meta:
        model = DockerHost
        fields = ["name", "url", "tls_ca", "tls_cert", "tls_key", "probe_enabled", "scan_interval_minutes", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("tls_ca", "tls_cert", "tls_key"):
            self.initial[name] = ""

    def clean(self):
        data = super().clean()
        for name in ("tls_ca", "tls_cert", "tls_key"):
            if not data.get(name) and self.instance.pk:
                data[name] = getattr(DockerHost.objects.get(pk=self.instance.pk), name)
        return data


@admin.register(DockerHost)
class DockerHostAdmin(admin.ModelAdmin):
    form = DockerHostForm
    list_display = ["name", "url", "uses_tls", "probe_enabled", "scan_interval_minutes", "next_scan_at", "enabled"]
    list_filter = ["enabled", "probe_enabled"]
    search_fields = ["name", "url"]

    @admin.display(boolean=True, description="TLS")
    def uses_tls(self, obj: DockerHost) -> bool:
        return obj.uses_tls


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

    list_display = ["id", "check_id", "host", "resource_pattern", "state", "expires_at", "proposed_by", "decided_by"]
    list_filter = ["state"]


@admin.register(Attestation)
class AttestationAdmin(ReadOnlyAdmin):
    list_display = ["id", "check_id", "host", "attested_by", "attested_at", "valid_until"]

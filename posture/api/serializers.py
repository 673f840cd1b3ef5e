from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers

from posture.jobs.hosts import messages_of, save_host
from posture.models import Attestation, AuditEvent, Control, ControlException, DockerHost, ScanRun
from posture.models.hosts import INTERVAL_RULE, NAME_RULE


class DockerHostSerializer(serializers.ModelSerializer):
    """TLS material is write-only: it is accepted, stored encrypted, never returned.

    Every rule (name, URL, interval, TLS, names taken, archived hosts) lives in
    `posture.jobs.hosts.save_host`, shared with `addhost` and the admin: the fields here do
    no validation of their own (no trimming, no length limits), so the same bad input gets
    the same message on every path."""

    name = serializers.CharField(trim_whitespace=False, allow_blank=True, help_text=NAME_RULE)
    url = serializers.CharField(trim_whitespace=False, allow_blank=True,
                                help_text="unix:///var/run/docker.sock, tcp://host:2376 (with TLS), ssh://user@host")
    scan_interval_minutes = serializers.IntegerField(required=False, help_text=INTERVAL_RULE)
    tls_ca = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    tls_cert = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    tls_key = serializers.CharField(write_only=True, required=False, allow_blank=True, trim_whitespace=False)
    uses_tls = serializers.BooleanField(read_only=True)
    archived = serializers.BooleanField(read_only=True)
    current_scan = serializers.SerializerMethodField()

    class Meta:
        model = DockerHost
        fields = ["id", "name", "url", "tls_ca", "tls_cert", "tls_key", "uses_tls", "probe_enabled",
                  "scan_interval_minutes", "next_scan_at", "enabled", "archived", "archived_at", "created_at",
                  "current_scan"]
        read_only_fields = ["next_scan_at", "archived_at", "created_at"]

    def get_current_scan(self, host: DockerHost) -> int | None:
        return getattr(host, "current_scan_id", None)

    def _save(self, host: DockerHost | None, data: dict) -> DockerHost:
        try:
            return save_host(host, data, actor=self.context["request"].user)
        except DjangoValidationError as exc:
            errors = messages_of(exc)
            if NON_FIELD_ERRORS in errors:
                errors["detail"] = errors.pop(NON_FIELD_ERRORS)
            raise serializers.ValidationError(errors) from None

    def create(self, validated_data: dict) -> DockerHost:
        return self._save(None, validated_data)

    def update(self, instance: DockerHost, validated_data: dict) -> DockerHost:
        return self._save(instance, validated_data)


class ScanRunSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", queryset=DockerHost.objects.all())
    manifest_digest = serializers.CharField(source="evidence_set.digest", read_only=True, default=None)

    class Meta:
        model = ScanRun
        fields = ["id", "host", "trigger", "state", "queued_at", "started_at", "finished_at", "attempts", "error",
                  "counts", "warnings", "log", "scanner_version", "manifest_digest", "chain_digest"]
        read_only_fields = [f for f in fields if f != "host"]

    def validate_host(self, host: DockerHost) -> DockerHost:
        if host.archived:
            raise serializers.ValidationError(f"host {host.name!r} is archived; unarchive it to scan it")
        return host


class ScanRunListSerializer(ScanRunSerializer):
    """A scan in a list: everything but its log (read one scan for it)."""

    class Meta(ScanRunSerializer.Meta):
        fields = [f for f in ScanRunSerializer.Meta.fields if f != "log"]
        read_only_fields = [f for f in fields if f != "host"]


class ControlExceptionSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", queryset=DockerHost.objects.all(), required=False, allow_null=True)
    proposed_by = serializers.StringRelatedField()
    decided_by = serializers.StringRelatedField()
    revoked_by = serializers.StringRelatedField()

    class Meta:
        model = ControlException
        fields = ["id", "check_id", "host", "resource_pattern", "justification", "expires_at", "state",
                  "proposed_by", "proposed_at", "decided_by", "decided_at", "revoked_by", "revoked_at"]
        read_only_fields = ["state", "proposed_by", "proposed_at", "decided_by", "decided_at", "revoked_by",
                            "revoked_at"]


class AttestationFileField(serializers.FileField):
    """Takes an upload; shows a stored file as its authenticated download URL
    (/api/v1/attestations/{id}/file/), since no public URL serves attestation files."""

    def get_attribute(self, instance: Attestation) -> Attestation:
        return instance

    def to_representation(self, value: Attestation) -> str | None:
        if not value.file:
            return None
        url = reverse("api:attestation-file", kwargs={"pk": value.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class AttestationSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", queryset=DockerHost.objects.all(), required=False, allow_null=True)
    attested_by = serializers.StringRelatedField()
    file = AttestationFileField(required=False, allow_null=True,
                                help_text="PDF, PNG, JPEG, plain text or CSV, up to POSTURE_ATTESTATION_MAX_BYTES; "
                                          "read back as its authenticated download URL")

    class Meta:
        model = Attestation
        fields = ["id", "check_id", "host", "statement", "attested_by", "attested_at", "valid_until", "file"]
        read_only_fields = ["attested_by", "attested_at"]


class AuditEventSerializer(serializers.ModelSerializer):
    """One audit event; ``actor`` is the user name (or cli / system / bootstrap) as recorded,
    kept even when the account is later deleted."""

    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "action", "target", "detail"]
        read_only_fields = fields


class ControlSerializer(serializers.ModelSerializer):
    """A framework control and the checks that support it (the reverse index)."""

    framework = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    checks = serializers.SlugRelatedField(slug_field="id", many=True, read_only=True)

    class Meta:
        model = Control
        fields = ["framework", "ref", "title", "section", "section_name", "level", "assess", "supportable", "note",
                  "checks"]

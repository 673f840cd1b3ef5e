from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from posture.models import Attestation, AuditEvent, Control, ControlException, DockerHost, ScanRun


class DockerHostSerializer(serializers.ModelSerializer):
    """TLS material is write-only: it is accepted, stored encrypted, never returned."""

    tls_ca = serializers.CharField(write_only=True, required=False, allow_blank=True)
    tls_cert = serializers.CharField(write_only=True, required=False, allow_blank=True)
    tls_key = serializers.CharField(write_only=True, required=False, allow_blank=True)
    uses_tls = serializers.BooleanField(read_only=True)
    current_scan = serializers.SerializerMethodField()

    class Meta:
        model = DockerHost
        fields = ["id", "name", "url", "tls_ca", "tls_cert", "tls_key", "uses_tls", "probe_enabled",
                  "scan_interval_minutes", "next_scan_at", "enabled", "created_at", "current_scan"]
        read_only_fields = ["next_scan_at", "created_at"]

    def get_current_scan(self, host: DockerHost) -> int | None:
        return getattr(host, "current_scan_id", None)

    def validate(self, attrs: dict) -> dict:
        """TLS material is checked before it is stored (readable PEM, key matching the
        certificate, not expired), as `manage.py addhost` does."""
        from scanners.client import HostConfig, validate_tls
        from scanners.errors import TLSFailure

        tls = {k: attrs.get(k, getattr(self.instance, k, "") if self.instance else "") or ""
               for k in ("tls_ca", "tls_cert", "tls_key")}
        if any(attrs.get(k) for k in tls):
            url = attrs.get("url") or (self.instance.url if self.instance else "")
            if not url.startswith("tcp://"):
                raise serializers.ValidationError({"url": "TLS material only applies to tcp:// URLs"})
            if not all(tls.values()):
                raise serializers.ValidationError({"tls_key": "TLS needs all three of tls_ca, tls_cert and tls_key"})
            try:
                validate_tls(HostConfig(url=url, tls_ca=tls["tls_ca"], tls_cert=tls["tls_cert"], tls_key=tls["tls_key"]))
            except TLSFailure as exc:
                raise serializers.ValidationError({"tls_cert": f"TLS files refused: {exc}"}) from None
        return attrs


class ScanRunSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", queryset=DockerHost.objects.all())
    manifest_digest = serializers.CharField(source="evidence_set_id", read_only=True)

    class Meta:
        model = ScanRun
        fields = ["id", "host", "trigger", "state", "queued_at", "started_at", "finished_at", "attempts", "error",
                  "counts", "warnings", "log", "scanner_version", "manifest_digest", "chain_digest"]
        read_only_fields = [f for f in fields if f != "host"]


class ControlExceptionSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", queryset=DockerHost.objects.all(), required=False, allow_null=True)
    proposed_by = serializers.StringRelatedField()
    decided_by = serializers.StringRelatedField()

    class Meta:
        model = ControlException
        fields = ["id", "check_id", "host", "resource_pattern", "justification", "expires_at", "state",
                  "proposed_by", "proposed_at", "decided_by", "decided_at"]
        read_only_fields = ["state", "proposed_by", "proposed_at", "decided_by", "decided_at"]


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

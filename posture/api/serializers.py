from __future__ import annotations

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from posture.api.schema import filter_schema
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
    proposed_by = serializers.StringRelatedField(allow_null=True)  # null once the account is deleted
    decided_by = serializers.StringRelatedField(allow_null=True)
    revoked_by = serializers.StringRelatedField(allow_null=True)

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
    attested_by = serializers.StringRelatedField(allow_null=True)
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
    """A framework control, the checks that support it (the reverse index) and its rollup
    (fleet-wide or one host's, at a moment: ``context["rollups"]``, slug -> FrameworkRollup)."""

    framework = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    checks = serializers.SlugRelatedField(slug_field="id", many=True, read_only=True)
    status = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    hosts = serializers.SerializerMethodField()
    hosts_failing = serializers.SerializerMethodField()

    class Meta:
        model = Control
        fields = ["framework", "ref", "title", "section", "section_name", "level", "assess", "supportable", "note",
                  "checks", "status", "counts", "hosts", "hosts_failing"]

    def _rollup(self, control: Control):
        rollup = self.context.get("rollups", {}).get(control.framework.slug)
        return rollup.by_ref.get(control.ref) if rollup is not None else None

    def get_status(self, control: Control) -> str | None:
        row = self._rollup(control)
        return row.status if row else None

    def get_counts(self, control: Control) -> dict[str, int]:
        row = self._rollup(control)
        return row.counts if row else {}

    def get_hosts(self, control: Control) -> dict[str, int]:
        row = self._rollup(control)
        return row.hosts if row else {}

    def get_hosts_failing(self, control: Control) -> int:
        row = self._rollup(control)
        return row.hosts_failing if row else 0


class FindingSerializer(serializers.Serializer):
    """One verdict (check x resource) of a scan, as read through ``posture.queries.verdicts``:
    ``status`` is after the exceptions and attestations in force at the moment read (naming
    the ``exception`` or ``attestation`` that applied); ``stored_status`` is what the checks
    said. ``failing_since`` is when the failure window began (failures only)."""

    scan = serializers.IntegerField(source="scan_id")
    host = serializers.SerializerMethodField()
    check = serializers.CharField(source="check_id")
    title = serializers.CharField(allow_null=True)
    severity = serializers.CharField(allow_null=True)
    controls = serializers.SerializerMethodField()
    resource_type = serializers.CharField()
    resource = serializers.CharField()
    status = serializers.CharField(source="verdict")
    stored_status = serializers.CharField(source="status")
    detail = serializers.CharField()
    exception = serializers.IntegerField(source="exception_id", allow_null=True)
    attestation = serializers.IntegerField(source="attestation_id", allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    evidence = serializers.SerializerMethodField()

    def get_host(self, row) -> dict:
        return {"id": row.host_id, "name": row.host_name}

    def get_controls(self, row) -> dict[str, list[str]]:
        from posture.jobs.evaluate import check_controls

        by_framework: dict[str, list[str]] = {}
        for slug, ref in check_controls().get(row.check_id, ()):
            by_framework.setdefault(slug, []).append(ref)
        return by_framework

    def get_evidence(self, row) -> dict | None:
        return {"kind": row.evidence_kind, "key": row.evidence_key} if row.evidence_kind else None


class ControlRollupSerializer(serializers.Serializer):
    """One control's rollup (``posture.queries.rollups.ControlRollup``): its worst status
    after exceptions and attestations, results per status, and hosts per status."""

    framework = serializers.CharField()
    ref = serializers.CharField()
    title = serializers.CharField()
    section = serializers.CharField()
    assess = serializers.CharField()
    supportable = serializers.BooleanField()
    status = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField())
    hosts = serializers.DictField(child=serializers.IntegerField())
    hosts_failing = serializers.IntegerField()


class RollupSummarySerializer(serializers.Serializer):
    """A framework's summary (``posture.queries.rollups``): score = pass / (pass + fail) and
    coverage = assessed / applicable over (host, control) pairs; null when undefined."""

    framework = serializers.CharField()
    at = serializers.DateTimeField()
    hosts = serializers.IntegerField()
    controls = serializers.DictField(child=serializers.IntegerField(), help_text="controls per status")
    host_controls = serializers.DictField(child=serializers.IntegerField(),
                                          help_text="(host, control) pairs per status")
    score = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(allow_null=True)


def filter_parameters(filterset_class, exclude: tuple[str, ...] = ()) -> list[OpenApiParameter]:
    """The query parameters of a FilterSet, for the schema of an action that applies it
    itself (DRF's filter backend would apply it to the action's own queryset), each typed by
    ``posture.api.schema.filter_schema`` (a moment a date-time, a yes/no a boolean, ...)."""
    params = []
    for name, f in filterset_class.base_filters.items():
        if name not in exclude:
            spec = filter_schema(f)
            params.append(OpenApiParameter(name, spec.pop("schema"), **spec))
    return params


class ConnectionReportSerializer(serializers.Serializer):
    """What a connection test found (``posture.jobs.connection.ConnectionReport``)."""

    ok = serializers.BooleanField()
    url = serializers.CharField()
    seconds = serializers.FloatField()
    api_version = serializers.CharField(help_text="the API version posture negotiated")
    server_api_version = serializers.CharField(help_text="the newest API version the daemon offers")
    server_version = serializers.CharField()
    os = serializers.CharField()
    containers = serializers.IntegerField(allow_null=True)
    images = serializers.IntegerField(allow_null=True)
    error_kind = serializers.CharField(help_text="configuration, tls, unreachable, not_docker, timeout, too_large, "
                                                 "malformed, lost, failed or internal; empty when ok")
    error = serializers.CharField()
    hint = serializers.CharField()

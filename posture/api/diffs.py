"""``GET /api/v1/scans/{id}/diff/?against=<other id>``: what changed between two scans of a
host (posture/queries/diffs.py), with its response schema for drf-spectacular.

Without ``against`` the scan is compared with the host's previous succeeded scan (the one it
replaced as current). Either order works: ``before`` is always the earlier scan."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers

from posture.api.errors import ErrorSerializer
from posture.api.filters import reject_unknown
from posture.choices import ScanState
from posture.models import ScanRun
from posture.queries.diffs import FLIP_KINDS, DiffError, ScanDiff, diff_scans
from posture.queries.scans import previous_scan

_STATUS_HELP = "a status (fail, pass, error, not_assessed, excepted, manual, not_applicable); null: resource absent"


class ScanRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    finished_at = serializers.DateTimeField(allow_null=True)
    trigger = serializers.CharField()
    manifest_digest = serializers.CharField(source="evidence_set", allow_null=True)
    evaluated = serializers.BooleanField(help_text="has verdicts (flips need both sides evaluated)")


class ResourceRefSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="container or image")
    key = serializers.CharField(help_text="container id or image id")
    name = serializers.CharField(help_text="container name, or the image's first tag (short id when untagged)")


class FieldChangeSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='JSON path, e.g. HostConfig.Privileged or Mounts[Destination="/data"].RW')
    change = serializers.ChoiceField(choices=["changed", "added", "removed"])
    old = serializers.JSONField(allow_null=True, help_text="null when added; a value over 1000 characters of JSON "
                                "is replaced by {truncated, chars, sha256, start}")
    new = serializers.JSONField(allow_null=True, help_text="null when removed (same summary rule)")


class ResourceChangeSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="container, image, daemon.info, daemon.version or host")
    key = serializers.CharField()
    name = serializers.CharField()
    previous_key = serializers.CharField(allow_null=True, help_text="the id it had before, when recreated under "
                                         "the same name (container) or tag (image)")
    recreated = serializers.BooleanField()
    changes = FieldChangeSerializer(many=True)
    total_changes = serializers.IntegerField(help_text="changes in all; at most 50 are listed")
    truncated = serializers.BooleanField()


class CheckFlipSerializer(serializers.Serializer):
    check = serializers.CharField()
    resource_type = serializers.CharField()
    resource = serializers.CharField()
    before = serializers.CharField(allow_null=True, help_text=_STATUS_HELP)
    after = serializers.CharField(allow_null=True, help_text=_STATUS_HELP)
    kind = serializers.ChoiceField(choices=FLIP_KINDS, help_text="fixed only for fail -> pass, not_applicable or "
                                   "gone: an error or not_assessed is never a fix")
    detail = serializers.CharField()


class ScanDiffSerializer(serializers.Serializer):
    """Both sides' verdicts are read with the exceptions and attestations in force at ``at``
    (the later scan's finish)."""

    host = serializers.CharField()
    before = ScanRefSerializer()
    after = ScanRefSerializer()
    at = serializers.DateTimeField(allow_null=True)
    identical = serializers.BooleanField()
    containers_added = ResourceRefSerializer(many=True)
    containers_removed = ResourceRefSerializer(many=True)
    images_added = ResourceRefSerializer(many=True)
    images_removed = ResourceRefSerializer(many=True)
    changed = ResourceChangeSerializer(many=True)
    verdicts_compared = serializers.BooleanField(help_text="false when a scan has no evaluation yet: no flips")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="flips per kind: "
                                   + ", ".join(FLIP_KINDS))
    unchanged_resources = serializers.IntegerField(help_text="resources whose verdicts are identical (skipped)")
    flips = CheckFlipSerializer(many=True)


DIFF_SCHEMA = extend_schema(
    parameters=[OpenApiParameter("against", OpenApiTypes.INT, description="the other scan's id (same host); "
                                 "default: the host's previous succeeded scan")],
    responses={200: ScanDiffSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
    description="Containers and images added and removed, configuration fields changed (old -> new from the "
                "stored evidence), daemon changes, and checks that flipped between two succeeded scans of a host.",
)


def diff_for_request(request, scan: ScanRun) -> ScanDiff:
    """The diff the request asks for, or the API's 400/404 saying why there is none."""
    reject_unknown(request.query_params, ("against", "format"))
    raw = request.query_params.get("against")
    if raw is None or raw == "":
        if scan.state != ScanState.SUCCEEDED:
            raise exceptions.ValidationError([f"scan #{scan.pk} {scan.state} and has no evidence to compare"])
        other = previous_scan(scan)
        if other is None:
            raise exceptions.NotFound(f"scan #{scan.pk} is the first succeeded scan of host {scan.host.name!r}: "
                                      "there is no previous scan to compare it with (pass ?against=<scan id>)")
    else:
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise exceptions.ValidationError({"against": [f"{raw[:40]!r} is not a scan id (a whole number)"]})
        other = int(raw)
    try:
        return diff_scans(scan, other)
    except DiffError as exc:
        raise exceptions.ValidationError({"against": [str(exc)]} if raw else [str(exc)]) from None

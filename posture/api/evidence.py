"""A scan's evidence over the API: `/scans/{id}/evidence/` lists the items of its manifest
(kind, key, name, sha256, size; `EvidenceFilterSet`: `kind`, `key`, `name`) and
`/scans/{id}/evidence/{sha256}/` returns one payload with its digest.

An item is addressed by its payload's sha256 (64 hex digits): names and keys are
attacker-controlled strings with slashes and colons (`sha256:...` image ids, container
names), unsafe in a path. A finding names its evidence as `{kind, key}`: list with
`?kind=&key=` to find the digest. The digest lets a client verify the payload: it is the
sha256 of the payload's canonical JSON (sorted keys, no spaces, UTF-8)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from posture.api.conditional import conditional
from posture.api.serializers import filter_parameters
from posture.filtersets import EvidenceFilterSet
from posture.queries.evidence import evidence_item, scan_evidence


class EvidenceItemSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="daemon.info, daemon.version, image, container or host")
    key = serializers.CharField(help_text="the resource's key: an image or container id, 'daemon', 'probe'")
    name = serializers.CharField(help_text="a container's name, an image's first tag, else the key")
    sha256 = serializers.CharField(source="digest", help_text="sha256 of the payload's canonical JSON")
    size = serializers.IntegerField(help_text="bytes of canonical JSON")


class EvidencePayloadSerializer(EvidenceItemSerializer):
    payload = serializers.JSONField(help_text="the evidence as collected (secrets redacted at collection)")


_DIGEST = OpenApiParameter("sha256", OpenApiTypes.STR, OpenApiParameter.PATH, pattern="^[0-9a-f]{64}$",
                           description="the payload's sha256 (from the evidence list)")


class EvidenceActions:
    """Mixed into ScanRunViewSet (`self.get_object()` is the scan)."""

    @extend_schema(parameters=filter_parameters(EvidenceFilterSet), responses=EvidenceItemSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="evidence", filter_backends=[])
    @conditional
    def evidence(self, request, pk=None):
        """The evidence items the scan saw (none for a scan that stored none), by kind and key."""
        from posture.api.views import _valid

        scan = self.get_object()
        data = _valid(EvidenceFilterSet(request.query_params, request=request)).form.cleaned_data
        rows = scan_evidence(scan, kind=data.get("kind"), key=data.get("key"), name=data.get("name"))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(EvidenceItemSerializer(page, many=True).data)

    @extend_schema(parameters=[_DIGEST], responses=EvidencePayloadSerializer)
    @action(detail=True, methods=["get"], url_path=r"evidence/(?P<sha256>[^/]+)", filter_backends=[])
    @conditional
    def evidence_payload(self, request, pk=None, sha256=None):
        """One evidence payload of the scan, by its sha256."""
        scan = self.get_object()
        item = evidence_item(scan, sha256.lower()) if len(sha256) == 64 else None
        if item is None:
            raise drf_exceptions.NotFound(f"scan #{scan.pk} holds no evidence with sha256 {sha256[:64]!r}")
        return Response(EvidencePayloadSerializer(item).data)

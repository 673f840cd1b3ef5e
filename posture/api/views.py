from __future__ import annotations

from django.db import transaction
from django.db.models import Max, Q
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from posture.api.permissions import RolePermission
from posture.api.serializers import DockerHostSerializer, ScanRunSerializer
from posture.choices import ScanState, Trigger
from posture.jobs.scans import request_scan
from posture.models import DockerHost, ScanRun
from posture.models.audit import record
from posture.tasks import send_scan


class DockerHostViewSet(viewsets.ModelViewSet):
    serializer_class = DockerHostSerializer
    permission_classes = [RolePermission]
    filterset_fields = ["enabled", "probe_enabled"]

    def get_queryset(self):
        return DockerHost.objects.annotate(
            current_scan_id=Max("scans__id", filter=Q(scans__state=ScanState.SUCCEEDED))
        ).order_by("name")

    def perform_create(self, serializer):
        host = serializer.save()
        record("host.created", host.name, actor=self.request.user, url=host.url)

    def perform_update(self, serializer):
        host = serializer.save()
        record("host.updated", host.name, actor=self.request.user, url=host.url)

    def perform_destroy(self, instance):
        record("host.deleted", instance.name, actor=self.request.user)
        instance.delete()


class ScanRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """List and read scans; POST {"host": NAME} queues a scan (or returns the one already queued)."""

    serializer_class = ScanRunSerializer
    permission_classes = [RolePermission]
    filterset_fields = ["host__name", "state", "trigger"]
    queryset = ScanRun.objects.select_related("host").order_by("-id")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        host = serializer.validated_data["host"]
        with transaction.atomic():
            scan, created = request_scan(host, Trigger.API)
            if created:
                send_scan(scan.pk)
                record("scan.requested", host.name, actor=request.user, scan=scan.pk)
        return Response(self.get_serializer(scan).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

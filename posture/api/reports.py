"""Reports and integrity over the API.

- ``POST /api/v1/reports/`` ``{"kind": "zip"|"pdf"|"csv", "framework", "start", "end", "hosts"?,
  "csv_kind"?}``: queue a report (202 with the row; ``state``/``progress`` to poll); ``pdf``
  is the audit report, ``zip`` the evidence package (every CSV and the PDF);
- ``GET /api/v1/reports/``, ``/reports/{id}/``: state, progress, sha256, size, error;
- ``GET /api/v1/reports/{id}/download/``: the file (attachment), through this authenticated
  view only (MEDIA_ROOT is never served); 409 until the report has succeeded;
- ``POST /api/v1/reports/verify/`` (multipart ``file``): check an evidence package against
  its manifest and this database (``manage.py verify --export``);
- ``GET /api/v1/integrity/`` (``?host=NAME``): every host's evidence chain and verdicts, and
  every report file (``manage.py verify``).

Every role may request, read and download reports ("auditor: read and export"): see
posture/api/permissions.py."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions as drf_exceptions
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from posture.api.errors import Conflict, ErrorSerializer
from posture.api.permissions import RolePermission
from posture.api.views import _JSONErrorsOnly
from posture.jobs.hosts import host_named
from posture.jobs.integrity import verify_host, verify_reports
from posture.jobs.reports import ReportRefused, report_file_response, request_report
from posture.models import DockerHost, Report, ReportState
from posture.reports import csv as exports
from posture.reports.package import verify_package


#: What a report's download is served as.
class ReportSerializer(serializers.ModelSerializer):
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = Report
        fields = ["id", "kind", "csv_kind", "framework", "period_start", "period_end", "hosts", "requested_by",
                  "requested_at", "state", "progress", "progress_note", "started_at", "finished_at", "sha256", "size",
                  "error", "download"]
        read_only_fields = fields

    def get_download(self, report: Report) -> str | None:
        if report.state != ReportState.SUCCEEDED:
            return None
        request = self.context.get("request")
        path = f"/api/v1/reports/{report.pk}/download/"
        return request.build_absolute_uri(path) if request else path


class ReportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["csv", "pdf", "zip"])
    csv_kind = serializers.ChoiceField(choices=list(exports.KINDS), required=False, default="")
    framework = serializers.CharField(max_length=64)
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    hosts = serializers.ListField(child=serializers.CharField(max_length=300), required=False, allow_null=True,
                                  max_length=10_000, default=None)


class VerifySerializer(serializers.Serializer):
    file = serializers.FileField(help_text="an evidence package (zip) made by posture")


class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rendered exports of an audit period (CSV, PDF report or evidence package)."""

    serializer_class = ReportSerializer
    permission_classes = [RolePermission]
    queryset = Report.objects.select_related("requested_by").order_by("-id")

    @extend_schema(request=ReportRequestSerializer, responses={202: ReportSerializer})
    def create(self, request, *args, **kwargs):
        ser = ReportRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            report = request_report(request.user, **ser.validated_data)
        except ReportRefused as exc:
            raise drf_exceptions.ValidationError(str(exc)) from None
        return Response(self.get_serializer(report).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(
        OpenApiTypes.BINARY, description="the report's file, as an attachment"),
        (409, "application/json"): OpenApiResponse(ErrorSerializer, description="the report has not succeeded (yet)")})
    @action(detail=True, methods=["get"], url_path="download", url_name="download",
            content_negotiation_class=_JSONErrorsOnly)
    def download(self, request, pk=None):
        report = self.get_object()
        if report.state != ReportState.SUCCEEDED:
            raise Conflict(f"report #{report.pk} is {report.state}: it can be downloaded once it has succeeded")
        return report_file_response(report)

    @extend_schema(request={"multipart/form-data": VerifySerializer}, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="verify", url_name="verify", parser_classes=[MultiPartParser])
    def verify(self, request):
        """Check an uploaded package: ``{"ok", "problems": [one line each], "files", "hosts"}``."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.POSTURE_VERIFY_MAX_BYTES  # largest package accepted (bytes)
        if length > limit + 64 * 1024:
            raise drf_exceptions.ValidationError({"file": [f"the upload is {length} bytes; at most "
                                                           f"{limit} are accepted"]})
        ser = VerifySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        result = verify_package(ser.validated_data["file"])
        return Response({"ok": result.ok, "problems": result.problems, "files": result.files, "hosts": result.hosts})


class IntegrityView(APIView):
    """Evidence chains and verdicts of every host (or ``?host=NAME``), and every report file."""

    permission_classes = [RolePermission]
    basename = "integrity"

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        name = request.query_params.get("host")
        hosts = DockerHost.objects.order_by("name")
        if name:
            host = host_named(name)
            if host is None:
                raise drf_exceptions.NotFound(f"no host named {name[:100]!r}")
            hosts = hosts.filter(pk=host.pk)
        rows = [verify_host(h) for h in hosts]
        body = {"hosts": [{"name": r.name, "scans": r.scans, "ok": r.ok, "problems": r.problems} for r in rows]}
        ok = all(r.ok for r in rows)
        if not name:
            checked, problems = 0, []
            for _report, problem in verify_reports():
                checked += 1
                if problem:
                    problems.append(problem)
            body["reports"] = {"checked": checked, "ok": not problems, "problems": problems}
            ok = ok and not problems
        return Response({"ok": ok, **body})

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions as drf_exceptions
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from posture.api.conditional import conditional, without_summary_moment
from posture.api.diffs import DIFF_SCHEMA, ScanDiffSerializer, diff_for_request
from posture.api.evidence import EvidenceActions
from posture.api.pagination import RollupPagination
from posture.api.permissions import RolePermission
from posture.api.serializers import (
    AttestationSerializer,
    AuditEventSerializer,
    ConnectionReportSerializer,
    ControlExceptionSerializer,
    ControlRollupSerializer,
    ControlSerializer,
    DockerHostSerializer,
    FindingSerializer,
    RollupSummarySerializer,
    ScanRunListSerializer,
    ScanRunSerializer,
    filter_parameters,
)
from posture.choices import Trigger
from posture.filtersets import (
    AttestationFilterSet,
    AuditEventFilterSet,
    ControlExceptionFilterSet,
    ControlFilterSet,
    FindingFilterSet,
    HostFilterSet,
    ScanFilterSet,
    parse_moment,
)
from posture.jobs import exceptions as exception_jobs
from posture.jobs.connection import check_connection
from posture.jobs.hosts import archive_host, unarchive_host
from posture.jobs.scans import ScanRefused, queue_scan
from posture.models import Attestation, AuditEvent, Control, ControlException, CurrentFinding, DockerHost, ScanRun
from posture.queries.rollups import cached
from posture.queries.scans import current_scan_id
from posture.queries.verdicts import verdict_moment
from posture.uploads import FALLBACK_TYPE, KINDS, attestation_file_response

_HOST_REF = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH,
                             description="the host's id or its name (an all-digit value is tried as an id first)")


@extend_schema_view(**{a: extend_schema(parameters=[_HOST_REF]) for a in (
    "retrieve", "update", "partial_update", "destroy", "archive", "unarchive")})
class DockerHostViewSet(viewsets.ModelViewSet):
    """Hosts. Writes go through `posture.jobs.hosts` (one validation, audited).

    DELETE archives the host instead of deleting it (its scans are evidence): the answer is
    200 with the archived host, and a second DELETE changes nothing. Archived hosts are
    disabled, never scheduled, read-only until ``POST .../unarchive/``, and left out of the
    list unless ``?archived=true`` (only archived) or ``?archived=all`` (HostFilterSet).

    A host is addressed by id or by name (``/api/v1/hosts/web1/``): names are letters,
    digits, '.', '_' and '-', so they need no escaping in a path."""

    serializer_class = DockerHostSerializer
    permission_classes = [RolePermission]
    filterset_class = HostFilterSet
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        return DockerHost.objects.annotate(current_scan_id=current_scan_id()).order_by("name")

    def get_object(self) -> DockerHost:
        """By id, then by name: an all-digit name is reachable when no host has that id."""
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        qs = self.filter_queryset(self.get_queryset())
        host = qs.filter(pk=int(value)).first() if value.isascii() and value.isdigit() and len(value) < 19 else None
        if host is None:
            host = qs.filter(name=value).first()
        if host is None:
            raise drf_exceptions.NotFound(f"no host with id or name {value[:100]!r}")
        self.check_object_permissions(self.request, host)
        return host

    def get_success_headers(self, data) -> dict[str, str]:
        """Location is the new host's API URL (DRF's default would use the Docker URL field)."""
        return {"Location": reverse("api:host-detail", args=[data["id"]], request=self.request)}

    def _answer(self, host: DockerHost) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=host.pk)).data)

    @extend_schema(responses={200: DockerHostSerializer}, description="Archives the host (its history is kept); "
                   "idempotent. There is no deletion through the API.")
    def destroy(self, request, *args, **kwargs):
        host, _ = archive_host(self.get_object(), actor=request.user)
        return self._answer(host)

    @extend_schema(request=None, responses=DockerHostSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        """Take the host out of service, keeping its history (what DELETE does)."""
        host, _ = archive_host(self.get_object(), actor=request.user)
        return self._answer(host)

    @extend_schema(request=None, responses=ConnectionReportSerializer)
    @action(detail=True, methods=["post"], url_path="test", url_name="test")
    def test(self, request, pk=None):
        """Connect to the saved host as a scan would (`/version` and `/info`, at most 10 s) and
        report: `ok` with the daemon's facts, or `error_kind`, `error` and a `hint`. Always 200
        for a host's failure; writes nothing (no scan, no evidence, no audit event). It runs in
        the web process, which may not reach what the workers reach."""
        return Response(ConnectionReportSerializer(check_connection(self.get_object().host_config())).data)

    @extend_schema(request=None, responses=DockerHostSerializer)
    @action(detail=True, methods=["post"])
    def unarchive(self, request, pk=None):
        """Bring an archived host back, still disabled: PATCH enabled=true to scan it again."""
        host, _ = unarchive_host(self.get_object(), actor=request.user)
        return self._answer(host)


class ScanRunViewSet(EvidenceActions, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """List and read scans; POST {"host": NAME} queues a scan (or returns the one already queued)."""

    serializer_class = ScanRunSerializer
    permission_classes = [RolePermission]
    filterset_class = ScanFilterSet
    queryset = ScanRun.objects.select_related("host", "evidence_set").order_by("-id")

    def get_serializer_class(self):
        """The list leaves out each scan's log (the detail has it): a page of 50 scans must
        not carry 50 logs."""
        return ScanRunListSerializer if self.action == "list" else ScanRunSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        return qs.defer("log") if self.action == "list" else qs

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        host = serializer.validated_data["host"]
        try:
            scan, created = queue_scan(host, Trigger.API, request.user)
        except ScanRefused as exc:  # archived since the serializer looked
            raise drf_exceptions.ValidationError({"host": [str(exc)]}) from None
        return Response(self.get_serializer(scan).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    # filters=False: the scans' own filters (ScanFilterSet) apply to the list, not here.
    @extend_schema(parameters=filter_parameters(FindingFilterSet, exclude=("host",)), filters=False,
                   responses=FindingSerializer(many=True))
    @action(detail=True, methods=["get"])
    @conditional
    def results(self, request, pk=None):
        """Verdicts of the scan (check x resource) after the exceptions and attestations in
        force at ``?at=`` (default: now for the host's current scan, else when the scan
        finished), filtered, ordered and paginated in the database (``FindingFilterSet``)."""
        scan = self.get_object()
        filterset = _valid(FindingFilterSet(request.query_params, scans=[scan], request=request))
        if not filterset.form.cleaned_data.get("at"):
            filterset.default_at = verdict_moment(scan)
        return findings_page(self, filterset)

    @extend_schema(parameters=filter_parameters(ControlFilterSet, exclude=("host",)), filters=False,
                   responses=ControlRollupSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=RollupPagination)
    @conditional(ignore=without_summary_moment)
    def controls(self, request, pk=None):
        """Every control of ``?framework=`` (default cis-docker-1.8.0) with the worst status of
        the scan's results behind it (after exceptions and attestations in force at ``?at=``,
        default as for results) and counts per status; controls no check supports say
        ``not_assessed``. Paginated; ``summary`` holds the framework's score and coverage."""
        scan = self.get_object()
        filterset = _valid(ControlFilterSet(request.query_params, scans=[scan], request=request,
                                            default_framework="cis-docker-1.8.0"))
        if not filterset.form.cleaned_data.get("at"):
            filterset.default_at = verdict_moment(scan)
        page = self.paginate_queryset(filterset.rows())
        response = self.get_paginated_response(ControlRollupSerializer(page, many=True).data)
        response.data["summary"] = RollupSummarySerializer(
            [r.summary() for r in filterset.rollups().values()], many=True).data
        return response


    @DIFF_SCHEMA
    @action(detail=True, methods=["get"], serializer_class=ScanDiffSerializer)
    @conditional
    def diff(self, request, pk=None):
        """What changed since ``?against=`` (default: the host's previous succeeded scan)."""
        return Response(ScanDiffSerializer(diff_for_request(request, self.get_object())).data)


def findings_page(view, filterset: FindingFilterSet) -> Response:
    """A page of a validated ``FindingFilterSet``'s verdicts (a scan's or the fleet's): a
    COUNT and a LIMIT/OFFSET query, whatever the number of hosts or results.

    Now (the read model), the offset is taken over ids alone, and the page's 50 rows are then
    read by id with their per-row lookups (stored result, failing since): PostgreSQL evaluates
    a row's select list before OFFSET discards it, so one query for both would run those
    lookups for every skipped row (page 45 of 50 on a 10-host seed: 41 ms, against 6 ms for
    the ids and a few for the rows)."""
    qs = filterset.qs
    if qs.model is not CurrentFinding:
        page = view.paginate_queryset(qs)
    else:
        ids = view.paginate_queryset(qs.values_list("pk", flat=True))
        rows = {row.pk: row for row in qs.filter(pk__in=ids).order_by()} if ids else {}
        page = [rows[pk] for pk in ids if pk in rows]  # (a row replaced in between is left out)
    return view.get_paginated_response(FindingSerializer(page, many=True).data)


def _valid(filterset):
    """The filterset, validated: its form errors as the API's 400 (fields by parameter)."""
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return filterset


def _parse_at(request) -> datetime | None:
    """``?at=`` as an aware datetime (naive means server time), or a 400 naming the format."""
    raw = request.query_params.get("at")
    if not raw:
        return None
    try:
        return parse_moment(raw)
    except DjangoValidationError as exc:
        raise drf_exceptions.ValidationError({"at": exc.messages}) from None


def _domain_call(fn, *args, **kwargs):
    """Run a workflow function, turning its Django errors into API errors."""
    try:
        return fn(*args, **kwargs)
    except DjangoPermissionDenied as exc:
        raise drf_exceptions.PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        # By field when the workflow said which field (the error body's "fields"), else whole-input messages.
        raise drf_exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from None


class ControlExceptionViewSet(viewsets.ReadOnlyModelViewSet, mixins.CreateModelMixin):
    """Exceptions: operators propose (POST), admins approve or reject, operators revoke."""

    serializer_class = ControlExceptionSerializer
    permission_classes = [RolePermission]
    filterset_class = ControlExceptionFilterSet
    queryset = ControlException.objects.select_related("host", "proposed_by", "decided_by", "revoked_by").order_by("-id")

    def create(self, request, *args, **kwargs):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        exc = _domain_call(exception_jobs.propose, request.user, **ser.validated_data)
        return Response(self.get_serializer(exc).data, status=status.HTTP_201_CREATED)

    def _decide(self, request, fn, **kwargs):
        exc = _domain_call(fn, request.user, self.get_object(), **kwargs)
        return Response(self.get_serializer(exc).data)

    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._decide(request, exception_jobs.decide, approve=True)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(request, exception_jobs.decide, approve=False)

    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self._decide(request, exception_jobs.revoke)


class _JSONErrorsOnly(BaseContentNegotiation):
    """A file download answers whatever the client accepts; errors are JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return JSONRenderer(), JSONRenderer.media_type


#: Room for the form fields around an attestation file in a multipart body.
_FORM_OVERHEAD = 64 * 1024


class AttestationViewSet(viewsets.ReadOnlyModelViewSet, mixins.CreateModelMixin):
    """Attestations for manual checks: statement, who, when, valid until, optional file
    (downloaded by readers from ``/attestations/{id}/file/``)."""

    serializer_class = AttestationSerializer
    permission_classes = [RolePermission]
    filterset_class = AttestationFilterSet
    queryset = Attestation.objects.select_related("host", "attested_by").order_by("-id")

    def create(self, request, *args, **kwargs):
        # Refuse an oversized body before it is parsed (and spooled to disk).
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.POSTURE_ATTESTATION_MAX_BYTES
        if length > limit + _FORM_OVERHEAD:
            raise drf_exceptions.ValidationError(
                {"file": [f"the upload is {length} bytes; attestation files may be at most {limit} bytes"]})
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        att = _domain_call(exception_jobs.attest, request.user, **ser.validated_data)
        return Response(self.get_serializer(att).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, media): OpenApiResponse(
        OpenApiTypes.BINARY, description="the file, as an attachment (PDF, PNG, JPEG, text or CSV; "
        "application/octet-stream when its content does not match its name)")
        for media in (*(kind.content_type.split(";")[0] for kind in KINDS), FALLBACK_TYPE)})
    @action(detail=True, methods=["get"], url_path="file", url_name="file", content_negotiation_class=_JSONErrorsOnly)
    def file(self, request, pk=None):
        """The attestation's file, as a download (attachment, type from an allow-list)."""
        return attestation_file_response(self.get_object())


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first, for auditors and admins. Filter with ``?action=``
    (a bad value lists the valid ones), ``?actor=`` and ``?target=``."""

    serializer_class = AuditEventSerializer
    permission_classes = [RolePermission]
    filterset_class = AuditEventFilterSet
    queryset = AuditEvent.objects.order_by("-at", "-id")


class ControlViewSet(viewsets.ReadOnlyModelViewSet):
    """Framework controls with the checks that support each, and each control's rollup
    (``status``, ``counts`` of results, ``hosts`` per status) fleet-wide or for ``?host=``,
    at ``?at=`` (default now). Filter with ``ControlFilterSet``: ``?framework=soc2-2017``,
    ``ref``, ``section``, ``assess``, ``supportable``, ``status``."""

    serializer_class = ControlSerializer
    permission_classes = [RolePermission]
    queryset = Control.objects.select_related("framework").prefetch_related("checks").order_by("framework__slug", "sort_key")
    lookup_field = "pk"

    @extend_schema(parameters=filter_parameters(ControlFilterSet))
    @conditional
    def list(self, request, *args, **kwargs):
        filterset = _valid(ControlFilterSet(request.query_params, queryset=self.get_queryset(), request=request))

        def page() -> dict:
            rows = self.paginate_queryset(filterset.qs)
            context = {**self.get_serializer_context(), "rollups": filterset.rollups()}
            return self.get_paginated_response(ControlSerializer(rows, many=True, context=context).data).data

        # A page is cached on what it shows: the rollups' key (posture/queries/rollups.py) and the URL.
        return Response(cached("controls", (request.build_absolute_uri(),), filterset.state(), page))

    @conditional
    def retrieve(self, request, *args, **kwargs):
        control = self.get_object()
        filterset = _valid(ControlFilterSet(request.query_params, request=request,
                                            default_framework=control.framework.slug))
        context = {**self.get_serializer_context(), "rollups": filterset.rollups()}
        return Response(ControlSerializer(control, context=context).data)

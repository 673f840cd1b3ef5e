"""Fleet-wide reads over the API: findings, the posture summary, history (failure windows,
trends, operating effectiveness, collection gaps) and frameworks.

Each endpoint validates its query parameters with a FilterSet of posture/filtersets.py (an
unknown parameter or value is a 400 listing the valid ones) and answers from posture/queries/:
the views hold no queries of their own, so their query counts are those of the query layer
(fixed, whatever the number of hosts or scans; tests/posture/api/test_fleet.py pins them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from posture.api.conditional import conditional, without_summary_moment
from posture.api.pagination import RollupPagination
from posture.api.permissions import RolePermission
from posture.api.serializers import FindingSerializer, RollupSummarySerializer, filter_parameters
from posture.api.views import _valid, findings_page
from posture.filtersets import (
    EffectivenessFilterSet,
    FailureWindowFilterSet,
    FindingFilterSet,
    GapFilterSet,
    PostureFilterSet,
    TrendFilterSet,
    framework_choices,
    host_rows,
)
from posture.models import Framework
from posture.queries import catalog as catalog_queries
from posture.queries.effectiveness import operating_effectiveness
from posture.queries.history import collection_gaps, failure_windows
from posture.queries.rollups import cached, fleet_and_hosts, read
from posture.queries.scores import ASSESSED, coverage, score
from posture.queries.summary import current_scan_ids, failing, fleet_at, fleet_hosts, host_names
from posture.queries.trends import fleet_trend, last_days
from posture.queries.verdicts import SEVERITY_ORDER

#: The framework a history question reads when none is given.
DEFAULT_FRAMEWORK = "cis-docker-1.8.0"
#: Failing results of checks retired from the catalog (no severity any more).
UNRATED = "unrated"


def _not_future(name: str, at: datetime | None) -> None:
    if at is not None and at > timezone.now():
        raise drf_exceptions.ValidationError(
            {name: [f"{at.isoformat()} is in the future: posture only knows the past and the present"]})


def _domain(fn, *args, **kwargs):
    """A query-layer call whose ValueError (a framework without such a control, ...) is a 400."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise drf_exceptions.ValidationError({"detail": [str(exc)]}) from None


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


class _Listing(viewsets.GenericViewSet):
    """A list action that validates its FilterSet itself and asks posture/queries (the
    default filter backend would apply a FilterSet to a model queryset)."""

    permission_classes = [RolePermission]
    filter_backends: list = []


# --- findings ----------------------------------------------------------------------------------

class FindingViewSet(_Listing):
    """Every verdict (check x resource) of the fleet: each host's current scan now, or at
    `?at=` (the hosts of the fleet then, their current scans then, the exceptions and
    attestations in force then), filtered, ordered and paginated in the database
    (`FindingFilterSet`, as `/scans/{id}/results/` and the findings page)."""

    serializer_class = FindingSerializer

    @extend_schema(parameters=filter_parameters(FindingFilterSet), responses=FindingSerializer(many=True))
    @conditional
    def list(self, request):
        filterset = _valid(FindingFilterSet(request.query_params, request=request))
        at = filterset.form.cleaned_data.get("at")
        _not_future("at", at)
        if at is not None:  # now reads the read model of posture now; a moment, the stored results
            filterset.scans = current_scan_ids(fleet_at(at), at)
        # A page is cached on what it shows (posture/queries/rollups.py ``cached``): the fleet's
        # current result sets, hosts and scans, the exceptions applied, and the URL asked.
        state = read(None, at, filterset.scans if at is not None else None)
        data = cached("findings", (request.build_absolute_uri(),), state,
                      lambda: findings_page(self, filterset).data, rows=True)
        return Response(data)


# --- posture summary ---------------------------------------------------------------------------

class PostureFrameworkSerializer(RollupSummarySerializer):
    """A framework's posture over the hosts asked: the rollup's summary, the pairs behind the
    coverage (assessed = pass + fail + excepted, applicable = all but not_applicable) and
    failing results by severity (after exceptions)."""

    assessed = serializers.IntegerField(help_text="(host, control) pairs with a decided status")
    applicable = serializers.IntegerField(help_text="(host, control) pairs that apply")
    failing = serializers.DictField(child=serializers.IntegerField(),
                                    help_text=f"failing results by severity ({', '.join(SEVERITY_ORDER)}, "
                                              f"{UNRATED} for retired checks)")


class HostFrameworkSerializer(serializers.Serializer):
    framework = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(allow_null=True)
    assessed = serializers.IntegerField()
    applicable = serializers.IntegerField()
    controls = serializers.DictField(child=serializers.IntegerField(), help_text="controls per status")


class HostPostureSerializer(serializers.Serializer):
    """One host at the moment asked: its current scan then (null: none yet), its scores and
    coverage per framework, and its failing results by severity."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    scan = serializers.IntegerField(allow_null=True)
    scanned_at = serializers.DateTimeField(allow_null=True)
    frameworks = HostFrameworkSerializer(many=True)
    failing = serializers.DictField(child=serializers.IntegerField())


class PosturePagination(RollupPagination):
    """Hosts page by page, and `summary`: every framework over all the hosts asked."""

    summary_component = "PostureFramework"
    summary_serializer = "posture.api.fleet.PostureFrameworkSerializer"


def _pairs(tally: dict[str, int]) -> dict[str, int]:
    """Assessed and applicable among (host, control) pairs per status (scores.coverage's terms)."""
    return {"assessed": sum(tally.get(s, 0) for s in ASSESSED),
            "applicable": sum(n for s, n in tally.items() if s != "not_applicable")}


def _severities(counts: dict[str | None, int]) -> dict[str, int]:
    out = {s: counts.get(s, 0) for s in SEVERITY_ORDER}
    if counts.get(None):
        out[UNRATED] = counts[None]
    return out


class PostureViewSet(_Listing):
    """The posture summary, now or at `?at=` any past moment: `summary` holds each
    framework's score (pass / (pass + fail)) and coverage (assessed / applicable) over
    (host, control) pairs with failing results by severity, for the fleet or `?host=`;
    `results` the hosts, page by page, each with its own scores. `?framework=` narrows
    both to one framework. A host registered after `at` is not listed."""

    serializer_class = HostPostureSerializer
    pagination_class = PosturePagination

    @extend_schema(parameters=filter_parameters(PostureFilterSet), responses=HostPostureSerializer(many=True))
    @conditional(ignore=without_summary_moment)
    def list(self, request):
        data = _valid(PostureFilterSet(request.query_params, request=request)).form.cleaned_data
        at = data.get("at")
        _not_future("at", at)
        frameworks = [data["framework"]] if data.get("framework") else [slug for slug, _ in framework_choices()]
        hosts = fleet_hosts(at, host_rows(data.get("host")))
        # Now: the read model (hosts, no moment); at a moment: the stored results of its scans.
        scans = current_scan_ids(hosts, at) if at is not None else None
        # The fleet's rollups and every host's tallies from one computation (the page's hosts
        # are among them).
        state = read(hosts if scans is None else None, at, scans)  # the key of the cached answers
        # The whole page is cached on what it shows: the hosts' result sets, names and scans,
        # the exceptions applied, the hosts listed (a host not scanned yet is listed too) and
        # the URL (with ?page=, ?host=, ?framework=).
        listed = tuple(hosts.order_by("pk").values_list("pk", "name"))
        body = cached("posture", (request.build_absolute_uri(), listed), state,
                      lambda: self._page(frameworks, hosts, at, scans, state, data.get("framework")), rows=True)
        if state.now:  # a cached answer about now says the moment it is read at
            moment = serializers.DateTimeField().to_representation(state.at)
            body = {**body, "summary": [{**row, "at": moment} for row in body["summary"]]}
        return Response(body)

    def _page(self, frameworks, hosts, at, scans, state, framework) -> dict:
        fleet, tallies = fleet_and_hosts(frameworks, hosts if scans is None else None, at, scans=scans, state=state)
        failures = failing(hosts if scans is None else None, at, scans=scans, state=state)
        summary = [{**fleet[f].summary(), **_pairs(fleet[f].pair_tally),
                    "failing": _severities(failures.by_severity(framework=f))} for f in frameworks]
        page = self.paginate_queryset(hosts.order_by("name", "pk"))
        ids = [h.pk for h in page]
        per_host = {h: tallies[h] for h in ids if h in tallies}
        rows = [{"id": h.pk, "name": h.name, "scan": h.current_scan_id, "scanned_at": h.scanned_at,
                 "failing": _severities(failures.by_severity(framework=framework, host=h.pk)),
                 "frameworks": [{"framework": f, "score": score(t), "coverage": coverage(t), "controls": t,
                                 **_pairs(t)} for f, t in per_host.get(h.pk, {}).items()]}
                for h in page]
        response = self.get_paginated_response(HostPostureSerializer(rows, many=True).data)
        response.data["summary"] = PostureFrameworkSerializer(summary, many=True).data
        return response.data


# --- history -----------------------------------------------------------------------------------

class HostRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class FailureWindowSerializer(serializers.Serializer):
    """A failure window: from the scan that first saw the failure to the one where it passed,
    no longer applied or was gone (`closed_*` null: still failing). `duration` (seconds)
    is the part inside the period asked (without one: up to now)."""

    id = serializers.IntegerField()
    host = serializers.SerializerMethodField()
    check = serializers.CharField(source="check_id")
    resource_type = serializers.CharField()
    resource = serializers.CharField()
    opened_at = serializers.DateTimeField()
    opened_scan = serializers.IntegerField(source="opened_scan_id")
    closed_at = serializers.DateTimeField(allow_null=True)
    closed_scan = serializers.IntegerField(source="closed_scan_id", allow_null=True)
    open = serializers.SerializerMethodField()
    duration = serializers.SerializerMethodField()

    @extend_schema_field(HostRefSerializer)
    def get_host(self, row) -> dict:
        return {"id": row.host_id, "name": row.host.name}

    def get_open(self, row) -> bool:
        return row.closed_at is None

    def get_duration(self, row) -> float:
        return row.duration.total_seconds()


class FailureWindowViewSet(_Listing):
    """Failure windows (`posture.queries.history.failure_windows`): filter by `host`,
    `check`, `resource_type`, `resource`, `state` (open, closed), `open_at` a
    moment, and `from`/`to` (windows overlapping the period, clipped to it); ordered by
    opening time."""

    serializer_class = FailureWindowSerializer

    @extend_schema(parameters=filter_parameters(FailureWindowFilterSet), responses=FailureWindowSerializer(many=True))
    def list(self, request):
        filterset = _valid(FailureWindowFilterSet(request.query_params, request=request))
        data = filterset.form.cleaned_data
        state = data.get("state")
        rows = failure_windows(host_rows(data.get("host")), data.get("check") or None, data.get("resource") or None,
                               filterset.period(required=False), data.get("open_at"),
                               resource_type=data.get("resource_type") or None,
                               closed=None if not state else state == "closed")
        page = self.paginate_queryset(rows.select_related("host").defer("host__tls_key", "host__tls_cert"))
        return self.get_paginated_response(FailureWindowSerializer(page, many=True).data)


class GapSerializer(serializers.Serializer):
    """A stretch without collected evidence (never counted as passing): from when the next
    scan was due to the succeeded scan that ended it (null: not ended by the period's end),
    clipped to the period."""

    host = HostRefSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration = serializers.FloatField(help_text="seconds")
    last_scan = serializers.IntegerField(allow_null=True, help_text="the succeeded scan before it")
    next_scan = serializers.IntegerField(allow_null=True, help_text="the succeeded scan that ended it")


class GapViewSet(_Listing):
    """Collection gaps of every host (or `?host=`) within `from`..`to` (default: the
    last 30 days), by host and start (`posture.queries.history.collection_gaps`)."""

    serializer_class = GapSerializer

    @extend_schema(parameters=filter_parameters(GapFilterSet), responses=GapSerializer(many=True))
    def list(self, request):
        filterset = _valid(GapFilterSet(request.query_params, request=request))
        gaps = collection_gaps(filterset.period(), host_rows(filterset.form.cleaned_data.get("host")))
        page = self.paginate_queryset(gaps)
        names = host_names({g.host_id for g in page})
        rows = [{"host": {"id": g.host_id, "name": names.get(g.host_id, "")}, "start": g.start, "end": g.end,
                 "duration": g.duration.total_seconds(), "last_scan": g.last_scan_id, "next_scan": g.next_scan_id}
                for g in page]
        return self.get_paginated_response(GapSerializer(rows, many=True).data)


class TrendPointSerializer(serializers.Serializer):
    day = serializers.DateField()
    hosts = serializers.IntegerField(help_text="hosts with a daily row (0: a collection gap for every host)")
    gap = serializers.BooleanField()
    score = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(allow_null=True)
    result_score = serializers.FloatField(allow_null=True, help_text="the score over results (check x resource)")
    controls = serializers.DictField(child=serializers.IntegerField(), help_text="controls per status, summed")


class TrendSerializer(serializers.Serializer):
    framework = serializers.CharField()
    host = serializers.CharField(allow_null=True, help_text="the host asked (null: the fleet)")
    days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField()
    points = TrendPointSerializer(many=True)


class TrendView(APIView):
    """A framework's daily score and coverage over the last `days` days (30, 90 or 365,
    today included), fleet-wide or for one `host`, from the daily rows
    (`posture.queries.trends`); one point per day, days without data marked as gaps."""

    permission_classes = [RolePermission]
    basename = "history-trends"

    @extend_schema(parameters=filter_parameters(TrendFilterSet), responses=TrendSerializer)
    @conditional
    def get(self, request):
        data = _valid(TrendFilterSet(request.query_params, request=request)).form.cleaned_data
        framework, days = data.get("framework") or DEFAULT_FRAMEWORK, int(data.get("days") or 30)
        start, end = last_days(days)
        points = _domain(fleet_trend, framework, start, end, host_rows(data.get("host")))
        return Response(TrendSerializer({
            "framework": framework, "host": data.get("host") or None, "days": days, "start": start, "end": end,
            "points": [{"day": p.day, "hosts": p.hosts, "gap": p.gap, "score": p.score, "coverage": p.coverage,
                        "result_score": p.result_score, "controls": p.controls} for p in points]}).data)


class StretchSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    ongoing = serializers.BooleanField(help_text="still failing when the period (or the host's coverage) ended")


class ControlEffectivenessSerializer(serializers.Serializer):
    """One control over the period. Times in seconds: `assessed` = `expected` - `gaps` -
    `not_assessed` (a gap, or a scan that left the control not assessed, is never
    passing); `passing` = `assessed` - `failing` - `excepted`; `share` = passing /
    assessed (null: no check measures the control, or it was never assessed in the
    period); `coverage` = assessed / expected."""

    ref = serializers.CharField()
    title = serializers.CharField()
    checks = serializers.ListField(child=serializers.CharField())
    automated = serializers.BooleanField()
    share = serializers.FloatField(allow_null=True)
    coverage = serializers.FloatField(allow_null=True, help_text="assessed / expected time")
    expected = serializers.FloatField()
    assessed = serializers.FloatField()
    passing = serializers.FloatField()
    failing = serializers.FloatField()
    excepted = serializers.FloatField()
    gaps = serializers.FloatField()
    not_assessed = serializers.FloatField(help_text="time the scan in force left the control not assessed")
    hosts_failing = serializers.IntegerField(help_text="fleet: hosts with a failure in the period")
    windows = serializers.IntegerField(help_text="failure stretches, summed over hosts (one host: listed in stretches)")
    stretches = StretchSerializer(many=True, help_text="one host's failure stretches (the fleet: empty)")


class EffectivenessSerializer(serializers.Serializer):
    framework = serializers.CharField()
    host = serializers.CharField(allow_null=True)
    start = serializers.DateTimeField(source="from")
    end = serializers.DateTimeField(source="to")
    hosts = serializers.IntegerField(help_text="hosts expected to be observed in the period")
    gaps = serializers.FloatField(help_text="seconds of collection gaps, summed over those hosts")
    controls = ControlEffectivenessSerializer(many=True)


class EffectivenessView(APIView):
    """Operating effectiveness of a framework's controls (or `control`) over `from`..
    `to` (default: the last 30 days), fleet-wide (times summed over hosts) or for one
    `host` (with its failure stretches): `posture.queries.effectiveness`."""

    permission_classes = [RolePermission]
    basename = "history-effectiveness"

    @extend_schema(parameters=filter_parameters(EffectivenessFilterSet), responses=EffectivenessSerializer)
    def get(self, request):
        filterset = _valid(EffectivenessFilterSet(request.query_params, request=request))
        data = filterset.form.cleaned_data
        framework = data.get("framework") or DEFAULT_FRAMEWORK
        hosts = host_rows(data.get("host"))
        eff = _domain(operating_effectiveness, framework, filterset.period(), hosts,
                      [data["control"]] if data.get("control") else None)
        rows = eff.controls
        windows = [sum(len(per_host[i].windows) for per_host in eff.hosts.values()) for i in range(len(rows))]
        if hosts is not None:
            rows = next(iter(eff.hosts.values()), rows)  # the one host (the fleet's zeros if it expected nothing)
        controls = [{"ref": r.ref, "title": r.title, "checks": r.checks, "automated": r.automated, "share": r.share,
                     "coverage": r.coverage, "expected": _seconds(r.expected), "assessed": _seconds(r.assessed),
                     "passing": _seconds(r.passing), "failing": _seconds(r.failing),
                     "excepted": _seconds(r.excepted), "gaps": _seconds(r.gaps),
                     "not_assessed": _seconds(r.not_assessed), "windows": windows[i],
                     "hosts_failing": r.hosts_failing if hosts is None else int(bool(r.windows)),
                     "stretches": [{"start": w.start, "end": w.end, "ongoing": w.ongoing} for w in r.windows]}
                    for i, r in enumerate(rows)]
        return Response(EffectivenessSerializer({
            "framework": framework, "host": data.get("host") or None, "from": eff.start, "to": eff.end,
            "hosts": len(eff.coverage), "gaps": sum(c.gap_time.total_seconds() for c in eff.coverage.values()),
            "controls": controls}).data)


# --- frameworks --------------------------------------------------------------------------------

class FrameworkSerializer(serializers.ModelSerializer):
    """A framework of the catalog. Its controls' rollups are `/api/v1/controls/?framework=`
    (`controls_url`); the detail lists every control with the checks mapped to it."""

    slug = serializers.CharField(help_text="e.g. cis-docker-1.8.0, soc2-2017")
    controls = serializers.IntegerField(source="control_count", help_text="controls in the framework")
    automated = serializers.IntegerField(source="automated_count", help_text="controls decided by checks")
    controls_url = serializers.SerializerMethodField()

    class Meta:
        model = Framework
        fields = ["slug", "name", "version", "derived_from", "controls", "automated", "controls_url"]

    def get_controls_url(self, framework: Framework) -> str:
        request = self.context.get("request")
        path = f"/api/v1/controls/?framework={framework.slug}"
        return request.build_absolute_uri(path) if request is not None else path


class MappedCheckSerializer(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    severity = serializers.CharField()
    automated = serializers.BooleanField()


class MappedControlSerializer(serializers.Serializer):
    """A control, the checks mapped to it (worst severity first) and its rationale: why it is
    or is not supportable by container evidence, or the limits of that support."""

    id = serializers.IntegerField(help_text="its id under /api/v1/controls/{id}/ (status, counts)")
    ref = serializers.CharField()
    title = serializers.CharField()
    section = serializers.CharField()
    section_name = serializers.CharField()
    level = serializers.IntegerField(allow_null=True)
    assess = serializers.CharField(help_text="automated (checks decide) or manual (an attestation)")
    supportable = serializers.BooleanField()
    rationale = serializers.CharField(source="note")
    checks = MappedCheckSerializer(many=True, source="checks_sorted")


class FrameworkDetailSerializer(FrameworkSerializer):
    control_list = MappedControlSerializer(many=True, source="mapped_controls")

    class Meta(FrameworkSerializer.Meta):
        fields = [*FrameworkSerializer.Meta.fields, "control_list"]


_SLUG = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="the framework's slug, e.g. soc2-2017")


class FrameworkViewSet(viewsets.ReadOnlyModelViewSet):
    """Frameworks of the catalog (`posture.queries.catalog`), by slug."""

    permission_classes = [RolePermission]
    serializer_class = FrameworkSerializer
    filter_backends: list = []
    lookup_field = "slug"
    lookup_value_regex = r"[^/]+"

    def get_queryset(self):
        return catalog_queries.frameworks()

    def get_serializer_class(self):
        return FrameworkDetailSerializer if self.action == "retrieve" else FrameworkSerializer

    @extend_schema(parameters=[_SLUG])
    def retrieve(self, request, *args, **kwargs):
        framework = self.get_object()
        framework.mapped_controls = catalog_queries.mapped_controls(framework)
        return Response(FrameworkDetailSerializer(framework, context=self.get_serializer_context()).data)

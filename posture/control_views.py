"""Frameworks and controls: a framework's sections and controls with their rolled-up status
at ``?at=`` (``ControlFilterSet``, ``posture.queries.rollups``), and a control's page: our
title and note, the checks that support it with their remediation, the resources failing
them (``FindingFilterSet`` narrowed to the control), the evidence that decided one of them
as pretty JSON with the deciding field marked, the exceptions and attestations in force,
and the failure windows of its checks over the last 90 days per host.

Every attacker-controlled string (resource names, evidence) is auto-escaped; nothing here or
in the templates marks evidence safe."""

from __future__ import annotations

import re
from typing import ClassVar

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from posture.evidence_display import evidence_lines
from posture.filtersets import (
    AttestationFilterSet,
    ControlExceptionFilterSet,
    ControlFilterSet,
    FindingFilterSet,
    MomentFilter,
    StrictFilterSet,
    _Keep,
    framework_choices,
)
from posture.finding_views import with_placeholders
from posture.models import Attestation, ControlException
from posture.queries import controls as control_queries
from posture.views import PAGE_SIZE, reader_required

DEFAULT_FRAMEWORK = "cis-docker-1.8.0"
#: The verdicts a control page lists as "failing": failures, and those an exception covers.
FAILING = "fail,error,excepted"
_EVIDENCE = re.compile(r"^(\d{1,18})-(\d{1,18})$")


@reader_required
def controls(request: HttpRequest) -> HttpResponse:
    """A framework's controls (default CIS Docker 1.8.0) by section, each with its status,
    counts and hosts failing at ``?at=``; filters as the API's ``/controls/``."""
    filterset = with_placeholders(ControlFilterSet(request.GET, default_framework=DEFAULT_FRAMEWORK))
    valid = filterset.is_valid()
    context: dict = {"filterset": filterset, "valid": valid, "frameworks": [s for s, _ in framework_choices()]}
    if not valid:
        return render(request, "posture/controls.html", context, status=400)
    framework = filterset.frameworks()[0]
    summary = filterset.rollups()[framework]
    rows = filterset.rows()
    names = control_queries.section_names(framework)
    sections: list[dict] = []
    for row in rows:
        if not sections or sections[-1]["section"] != row.section:
            sections.append({"section": row.section, "name": names.get(row.section, ""), "rows": []})
        sections[-1]["rows"].append(row)
    context.update(framework=framework, summary=summary, sections=sections, moment=filterset.moment,
                   count=len(rows))
    return render(request, "posture/controls.html", context)


class ControlPageParams(StrictFilterSet):
    """The control page's parameters: ``at`` (ISO 8601), ``page`` and ``evidence``
    (``<scan id>-<result id>`` of a finding listed on the page); anything else is refused."""

    extra_params: ClassVar[tuple[str, ...]] = ("page",)
    at = MomentFilter(method="keep", label="At", help_text="ISO 8601 moment")
    evidence = _Keep(label="Evidence", help_text="scan id-result id")

    class Meta:
        model = ControlException
        fields: ClassVar[list[str]] = []

    def keep(self, queryset, name, value):
        return queryset

    def clean_filters(self, cleaned) -> None:
        from django import forms

        value = cleaned.get("evidence") or ""
        if value and not _EVIDENCE.match(value):
            raise forms.ValidationError({"evidence": "give <scan id>-<result id> of a finding on this page"})


@reader_required
def control_detail(request: HttpRequest, framework: str, ref: str) -> HttpResponse:
    control = control_queries.control(framework, ref)
    if control is None:
        raise Http404(f"no control {ref!r} in framework {framework!r}")
    params = ControlPageParams(request.GET, queryset=ControlException.objects.none())
    context: dict = {"control": control, "params": params, "valid": params.is_valid()}
    if not context["valid"]:
        return render(request, "posture/control_detail.html", context, status=400)
    at = params.form.cleaned_data.get("at")
    checks = control_queries.checks_of(control)
    check_ids = [c.id for c in checks]
    query = {"framework": framework, "control": ref, "status": FAILING}
    if at:
        query["at"] = at.isoformat()
    failing = FindingFilterSet(query)
    failing.is_valid()
    moment = failing.moment
    rollup = ControlFilterSet({"framework": framework, "ref": ref, **({"at": query["at"]} if at else {})})
    rollup.is_valid()
    row = rollup.rollups()[framework].by_ref.get(ref)
    page = Paginator(failing.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    for r in rows:
        r.evidence_ref = f"{r.scan_id}-{r.result_id}"
    chosen = _chosen(rows, params.form.cleaned_data.get("evidence") or "", failing.qs)
    evidence = control_queries.deciding_evidence(chosen) if chosen is not None else None
    stamp = moment.isoformat()
    exceptions = ControlExceptionFilterSet(
        {"in_force_at": stamp}, queryset=ControlException.objects.filter(check_id__in=check_ids)
        .select_related("host", "proposed_by", "decided_by").order_by("expires_at", "pk")).qs
    attestations = AttestationFilterSet(
        {"valid_at": stamp}, queryset=Attestation.objects.filter(check_id__in=check_ids)
        .select_related("host", "attested_by").order_by("valid_until", "pk")).qs
    timeline = control_queries.timeline(check_ids, end=moment)
    context.update(
        framework=framework, checks=checks, rollup=row, moment=moment, page=page, rows=rows, chosen=chosen,
        evidence=evidence, lines=evidence_lines(evidence.payload, chosen.detail) if evidence else None,
        exceptions=list(exceptions), attestations=list(attestations), timeline=timeline,
        at_given=bool(at))
    return render(request, "posture/control_detail.html", context)


def _chosen(rows: list, wanted: str, failing=None):
    """The finding whose evidence is shown: the one asked for (on this page, else, one more
    query, among the control's failing findings: a host page links here for any of them),
    else the first failure on the page, else none."""
    if wanted:
        scan_id, result_id = (int(x) for x in wanted.split("-"))
        for row in rows:
            if row.scan_id == scan_id and row.result_id == result_id:
                return row
        return failing.filter(result_id=result_id, scan_id=scan_id).first() if failing is not None else None
    return next((row for row in rows if row.verdict == "fail"), rows[0] if rows else None)

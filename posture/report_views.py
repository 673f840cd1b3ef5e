"""The Reports page: every report (filtered with ``ReportFilterSet``, newest first) with its
state and progress, sha256, a Download link and a Verify button; the request form (prefilled
by the Export buttons of the overview, control and findings pages); the authenticated
download; and a small JSON status for the live progress.

Roles mirror the reports API (posture/api/permissions.py): every posture role (admin,
operator, auditor: "read and export") may list, request, download and verify reports;
an account without a role gets 403, a visitor the login page. Requests go through
``posture.jobs.reports.request_report`` (the API's path too); verification through
``posture.jobs.integrity.record_report_verification``.

Progressive JS (static/posture/reports.js): rows queued or running poll ``status/`` and
update in place; Verify posts through fetch and shows the answer in its row. Without script
every action is a form or a link, and a reload shows the latest state."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture.api.filters import strict_filterset
from posture.filtersets import ReportFilterSet
from posture.jobs.integrity import record_report_verification
from posture.jobs.reports import ReportRefused, report_file_response, request_report
from posture.models import Report, ReportState
from posture.queries import reports as queries
from posture.report_forms import PERIOD_DAYS, ReportRequestForm, presets, today
from posture.views import PAGE_SIZE, reader_required

#: Content types of the files, by kind (as the API's download).
FINISHED = (ReportState.SUCCEEDED, ReportState.FAILED)


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _report_or_404(pk: int) -> Report:
    report = queries.report(pk)
    if report is None:
        raise Http404(f"no report #{pk}")
    return report


def report_json(report: Report) -> dict[str, Any]:
    """A report's state for the live row (its note and error are shown as text)."""
    done = report.state == ReportState.SUCCEEDED
    return {
        "id": report.pk, "state": report.state, "state_label": report.get_state_display(),
        "finished": report.state in FINISHED, "progress": report.progress, "progress_note": report.progress_note,
        "error": report.error, "sha256": report.sha256, "size": report.size,
        "download_url": reverse("report-download-page", args=[report.pk]) if done else None,
        "status_url": reverse("report-status", args=[report.pk]),
    }


@reader_required
@require_safe
def reports_page(request: HttpRequest) -> HttpResponse:
    filterset = strict_filterset(ReportFilterSet, request.GET, queries.reports())
    valid = filterset.is_valid()
    page = Paginator(filterset.qs if valid else Report.objects.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    checks = queries.last_verifications(page)
    rows = [(r, checks.get(r.pk)) for r in page]
    return render(request, "posture/reports.html",
                  {"filterset": filterset, "valid": valid, "page": page, "rows": rows},
                  status=200 if valid else 400)


@reader_required
@require_http_methods(["GET", "HEAD", "POST"])
def report_new(request: HttpRequest) -> HttpResponse:
    """GET: the form, preset from the query (an Export button's link). POST: queue the
    report and follow it on the Reports page; bad input re-shows the form with the messages
    beside the fields, status 400, and queues nothing."""
    if request.method != "POST":
        initial, problems = presets(request.GET)
        return _form(request, ReportRequestForm(initial=initial), problems, status=400 if problems else 200)
    form = ReportRequestForm(request.POST)
    if form.is_valid():
        try:
            report = request_report(request.user, **form.arguments())
        except ReportRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Report #{report.pk} queued: its progress shows below.")
            return redirect(reverse("reports-page") + f"#report-{report.pk}")
    return _form(request, form, [], status=400)


def _form(request: HttpRequest, form: ReportRequestForm, problems: list[str], status: int) -> HttpResponse:
    return render(request, "posture/report_form.html", {
        "form": form, "problems": problems, "today": today().isoformat(), "period_days": PERIOD_DAYS,
    }, status=status)


@reader_required
@require_safe
@never_cache
def report_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse({"report": report_json(_report_or_404(pk))})


@reader_required
@require_safe
def report_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The report's file as an attachment, read from storage (MEDIA_ROOT is served by no URL)."""
    report = _report_or_404(pk)
    if report.state != ReportState.SUCCEEDED:
        messages.error(request, f"Report #{report.pk} is {report.get_state_display().lower()}: "
                                "it can be downloaded once it has succeeded.")
        return redirect(reverse("reports-page") + f"#report-{report.pk}")
    return report_file_response(report)


@reader_required
@require_POST
def report_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-hash the file against its recorded sha256; the answer is kept in the audit trail."""
    report = _report_or_404(pk)
    try:
        event = record_report_verification(request.user, report)
    except ValueError as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc)}, status=409)
        messages.error(request, str(exc))
        return redirect(reverse("reports-page") + f"#report-{report.pk}")
    ok, problem = event.detail["ok"], event.detail["problem"]
    if wants_json(request):
        return JsonResponse({"id": report.pk, "ok": ok, "problem": problem,
                             "label": "verified" if ok else "tampered"})
    if ok:
        messages.success(request, f"Report #{report.pk}: the file matches its recorded sha256.")
    else:
        messages.error(request, f"Report #{report.pk} is tampered: {problem}")
    return redirect(reverse("reports-page") + f"#report-{report.pk}")

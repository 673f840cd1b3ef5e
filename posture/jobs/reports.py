"""Reports: requested (validated, a queued row), rendered by a worker (posture.render_report),
stored under MEDIA_ROOT/reports/ with their sha256. Kinds: ``csv`` (one export), ``pdf`` (the
audit report, posture/reports/pdf.py) and ``zip`` (the evidence package: every CSV and the PDF).

Rendering claims the row with a conditional UPDATE (queued -> running), so a redelivered
task never renders a report twice; the file is written beside its final name and renamed
once complete, so a crash leaves no half file under a report's name. A failure is recorded
as ``failed`` with a one-line reason; nothing else is touched.

A report whose worker died while rendering it (killed, out of memory, the machine lost) stays
``running``: the redelivered message finds it taken. ``recover_stale_reports`` (beat, every
minute, beside the scans' recovery) marks failed every report still running past the task's
own hard time limit (``POSTURE_REPORT_TIMEOUT`` + 60 s) plus ``STALE_GRACE``: no live worker
can still be rendering it then."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from posture.models import Report, ReportKind, ReportState
from posture.models.audit import record
from posture.reports import csv as exports
from posture.reports import pdf
from posture.reports.package import PDF_NAME, build_package

log = logging.getLogger("posture.reports")


class ReportRefused(ValueError):
    """The request cannot become a report (unknown framework, host or kind, bad period)."""


def spec_of(report: Report) -> exports.ExportSpec:
    return exports.ExportSpec(report.framework, report.period_start, report.period_end,
                              tuple(report.hosts) if report.hosts is not None else None)


def request_report(user, kind: str, framework: str, start: datetime, end: datetime,
                   hosts: list[str] | None = None, csv_kind: str = "") -> Report:
    """Validate and queue a report; the task is sent once the row is committed."""
    if kind not in ReportKind.values:
        raise ReportRefused(f"unknown kind {kind[:20]!r}; valid: {', '.join(ReportKind.values)}")
    if kind == ReportKind.CSV and csv_kind not in exports.KINDS:
        raise ReportRefused(f"a CSV report needs csv_kind, one of: {', '.join(exports.KINDS)}")
    if kind != ReportKind.CSV and csv_kind:
        raise ReportRefused("csv_kind is only for CSV reports (a package holds every CSV and the PDF)")
    spec = exports.ExportSpec(framework, start, end, tuple(hosts) if hosts is not None else None)
    try:
        spec.check()
    except ValueError as exc:
        raise ReportRefused(str(exc)) from None
    report = Report.objects.create(kind=kind, csv_kind=csv_kind, framework=framework, period_start=start,
                                   period_end=end, hosts=list(hosts) if hosts is not None else None,
                                   requested_by=user if getattr(user, "pk", None) else None)
    record("report.requested", f"report #{report.pk}", actor=report.requested_by, kind=kind, csv_kind=csv_kind,
           framework=framework, start=start.isoformat(), end=end.isoformat(), hosts=report.hosts)
    from posture.tasks import send_report

    send_report(report.pk)
    return report


def _progress(report_id: int, percent: int, note: str) -> None:
    Report.objects.filter(pk=report_id, state=ReportState.RUNNING).update(progress=min(percent, 99), progress_note=note[:200])


def _paths(report: Report, when: datetime) -> tuple[Path, Path, Path]:
    """(name under MEDIA_ROOT, final file, partial file) of a report rendered in ``when``'s year."""
    relative = Path("reports") / f"{when:%Y}" / (
        f"report-{report.pk}-{report.framework}-{report.kind}"
        f"{'-' + report.csv_kind if report.csv_kind else ''}.{report.kind}")
    final = Path(settings.MEDIA_ROOT) / relative
    return relative, final, final.with_name(final.name + ".part")


def render_report(report_id: int) -> str:
    """Render a queued report into its file. Returns the final state (or "skipped" when the
    row is not queued: already taken by another delivery)."""
    claimed = Report.objects.filter(pk=report_id, state=ReportState.QUEUED).update(
        state=ReportState.RUNNING, started_at=timezone.now(), progress=0)
    if not claimed:
        return "skipped"
    report = Report.objects.get(pk=report_id)
    spec = spec_of(report)
    relative, final, partial = _paths(report, report.started_at)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            by = report.requested_by.username if report.requested_by else ""
            if report.kind == ReportKind.CSV:
                exports.write(report.csv_kind, spec, out,
                              progress=lambda n: _progress(report_id, 50, f"{report.csv_kind}: {n} rows"))
            elif report.kind == ReportKind.PDF:
                pdf.write(spec, out, generated_by=by, progress=lambda percent, note: _progress(report_id, percent, note))
            else:
                steps = [PDF_NAME, *exports.KINDS]

                def package_progress(kind: str, n: int) -> None:
                    note = PDF_NAME if kind == PDF_NAME else f"{kind}.csv: {n} rows"
                    _progress(report_id, int(100 * steps.index(kind) / len(steps)), note)

                build_package(spec, out, generated_by=by, progress=package_progress)
        sha, size = hashlib.sha256(), 0
        with open(partial, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                sha.update(block)
                size += len(block)
        os.replace(partial, final)
    except Exception as exc:  # recorded on the row: the requester sees why
        with contextlib.suppress(OSError):  # the storage may be what failed (its folder a file, gone, read-only)
            partial.unlink(missing_ok=True)
        log.exception("report #%s failed", report_id)
        Report.objects.filter(pk=report_id).update(state=ReportState.FAILED, finished_at=timezone.now(),
                                                   error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
        return ReportState.FAILED
    with transaction.atomic():
        Report.objects.filter(pk=report_id).update(state=ReportState.SUCCEEDED, finished_at=timezone.now(),
                                                   progress=100, progress_note="", file=str(relative),
                                                   sha256=sha.hexdigest(), size=size)
    return ReportState.SUCCEEDED


#: Seconds past the task's hard time limit before a running report is taken for abandoned.
STALE_GRACE = 60
_ABANDONED = ("abandoned: its worker stopped without finishing it (killed or lost); still running {}s after it "
              "started, past the time limit (POSTURE_REPORT_TIMEOUT={}s): request it again")


def stale_after() -> timedelta:
    """How long a report may be running before it is taken for abandoned: the render task's
    hard limit (POSTURE_REPORT_TIMEOUT + 60 s, posture.tasks) plus ``STALE_GRACE``."""
    return timedelta(seconds=settings.POSTURE_REPORT_TIMEOUT + 60 + STALE_GRACE)


def recover_stale_reports(now: datetime | None = None) -> list[int]:
    """Mark failed, with the reason, every report still running longer than ``stale_after``
    (its worker is gone: a live one would have stopped it at its time limit and recorded
    why), and remove its partial file. Returns their ids. A late delivery of one finds it
    no longer queued and does nothing."""
    now = now or timezone.now()
    limit = stale_after()
    recovered = []
    for report in Report.objects.filter(state=ReportState.RUNNING, started_at__lt=now - limit).order_by("pk"):
        if not Report.objects.filter(pk=report.pk, state=ReportState.RUNNING).update(
                state=ReportState.FAILED, finished_at=now,
                error=_ABANDONED.format(int(limit.total_seconds()), settings.POSTURE_REPORT_TIMEOUT)):
            continue  # it finished meanwhile
        with contextlib.suppress(OSError):
            _paths(report, report.started_at)[2].unlink(missing_ok=True)
        log.warning("report #%s abandoned by its worker: marked failed", report.pk)
        recovered.append(report.pk)
    return recovered


#: What a report's file is served as.
CONTENT_TYPES = {ReportKind.CSV: "text/csv; charset=utf-8", ReportKind.ZIP: "application/zip",
                 ReportKind.PDF: "application/pdf"}


def report_file_response(report: Report):
    """A succeeded report's file as an attachment read from storage (MEDIA_ROOT is served by no
    URL), with its sha256 as ``Digest``; ``Http404`` when the file is missing. The page and the
    API both answer with it."""
    from django.http import FileResponse, Http404

    try:
        handle = report.file.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404(f"the file of report #{report.pk} is missing from storage") from None
    response = FileResponse(handle, as_attachment=True, filename=os.path.basename(report.file.name),
                            content_type=CONTENT_TYPES.get(report.kind, "application/octet-stream"))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["Digest"] = f"sha-256={report.sha256}"
    return response

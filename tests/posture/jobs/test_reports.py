"""Rendering a report (posture.jobs.reports.render_report): a failure is recorded on the row
with a one-line reason, whatever failed, so the page never shows it running forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from posture.jobs.reports import render_report
from posture.models import Report


@pytest.mark.django_db
def test_it_records_a_storage_failure_as_failed_with_its_reason(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / f"{timezone.now():%Y}").write_text("a file where the year's folder goes")
    now = timezone.now()
    report = Report.objects.create(kind="csv", csv_kind="scans", framework="cis-docker-1.8.0",
                                   period_start=now - timedelta(days=7), period_end=now)
    assert render_report(report.pk) == "failed"
    report.refresh_from_db()
    assert report.state == "failed" and report.finished_at is not None and not report.file
    assert report.error.startswith("FileExistsError: [Errno 17] File exists: ") and "\n" not in report.error


@pytest.mark.django_db(transaction=True)
def test_a_report_whose_worker_died_is_marked_failed_once_past_its_time_limit(settings, tmp_path):
    """A real worker process claims the report, starts writing, and is killed (SIGKILL): the
    row stays ``running`` until the recovery, which beat runs beside the scans' one."""
    import os
    import signal
    import time

    from django.db import connections

    from posture.celery import app
    from posture.jobs.reports import recover_stale_reports, stale_after
    from posture.reports import csv as exports

    settings.MEDIA_ROOT = tmp_path
    settings.POSTURE_REPORT_TIMEOUT = 10
    now = timezone.now()
    report = Report.objects.create(kind="csv", csv_kind="scans", framework="cis-docker-1.8.0",
                                   period_start=now - timedelta(days=7), period_end=now)
    connections.close_all()  # the child opens its own connection
    pid = os.fork()
    if pid == 0:  # the worker: renders until killed
        try:
            exports.write = lambda *args, **kwargs: time.sleep(600)
            render_report(report.pk)
        finally:
            os._exit(1)
    try:
        deadline = time.monotonic() + 30
        # claimed, and its partial file opened (the claim commits first: wait for both)
        while Report.objects.get(pk=report.pk).state != "running" or not list(tmp_path.glob("reports/*/*.part")):
            assert time.monotonic() < deadline, "the worker never claimed the report and began writing it"
            time.sleep(0.05)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    report.refresh_from_db()
    partials = list(tmp_path.glob("reports/*/*.part"))
    assert report.state == "running" and len(partials) == 1

    assert recover_stale_reports() == []  # within its time limit: a live worker may still hold it
    later = report.started_at + stale_after() + timedelta(seconds=1)
    assert stale_after() == timedelta(seconds=10 + 60 + 60)
    assert recover_stale_reports(later) == [report.pk]
    report.refresh_from_db()
    assert report.state == "failed" and report.finished_at == later and not report.file
    assert report.error.startswith("abandoned: its worker stopped without finishing it") and "\n" not in report.error
    assert "POSTURE_REPORT_TIMEOUT=10s" in report.error
    assert not partials[0].exists()
    assert recover_stale_reports(later) == []  # done once
    assert render_report(report.pk) == "skipped"  # a late redelivery of its message does nothing

    entry = app.conf.beat_schedule["recover-stale-reports"]
    assert entry == {"task": "posture.recover_stale_reports", "schedule": 60.0}
    from posture.tasks import recover_stale_reports as task

    assert task.name == entry["task"] and task.run() == 0  # the task beat sends: nothing left to recover

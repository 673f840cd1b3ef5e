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

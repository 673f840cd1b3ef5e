"""Report: one rendered export (CSV, evidence package, or later a PDF), a row with a state
like a scan (queued -> running -> succeeded | failed) and the file it produced.

The file lives under MEDIA_ROOT/reports/, which no URL serves: it is downloaded through the
authenticated /api/v1/reports/{id}/download/. Its sha256 and size are recorded when it is
written, and ``manage.py verify`` checks every stored file against them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReportKind(models.TextChoices):
    CSV = "csv", "CSV"
    ZIP = "zip", "Evidence package (zip)"
    PDF = "pdf", "PDF report"


class ReportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Report(models.Model):
    kind = models.CharField(max_length=8, choices=ReportKind.choices)
    csv_kind = models.CharField(max_length=16, blank=True, help_text="which CSV (kind csv): findings, controls, ...")
    framework = models.CharField(max_length=64, help_text="framework slug")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    hosts = models.JSONField(null=True, blank=True, help_text="host names in scope; null: every host of the period")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=ReportState.choices, default=ReportState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="percent done")
    progress_note = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    file = models.FileField(upload_to="reports/%Y/", blank=True, max_length=300)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="one-line reason when failed")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["state", "requested_at"], name="report_state_requested")]

    def __str__(self) -> str:
        return f"report #{self.pk} {self.kind} {self.framework} ({self.state})"

"""History derived from verdicts at evaluation time, so the read side never replays results.

Both tables are derived data: ``evaluate_scan`` maintains them as scans are scored, and
``manage.py reevaluate`` rebuilds them for every host it touched (posture/jobs/history.py).
Deleting them loses nothing that a rebuild cannot restore.

- ``FailureWindow``: one row per stretch during which a (host, check, resource) failed:
  opened by the first failing scan, closed by the first later scan where it passes, no longer
  applies, or the resource (or check) is gone. ``error`` and ``not_assessed`` neither open nor
  close a window: missing evidence is not a fix. "Failing since", time to remediate and
  operating effectiveness are indexed reads of these rows.
- ``DailyPosture``: per host, framework and day, the control counts of the day's last
  succeeded scan after the exceptions and attestations in force when that scan finished
  (trends are SUMs grouped by day). A day without a succeeded scan has no row: a collection
  gap is never counted as passing."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import MD5


class FailureWindow(models.Model):
    host = models.ForeignKey("posture.DockerHost", on_delete=models.CASCADE, related_name="+", db_index=False)
    check_id = models.CharField(max_length=100)
    catalog_check = models.ForeignObject(
        "posture.Check", on_delete=models.DO_NOTHING, from_fields=["check_id"], to_fields=["id"], related_name="+",
    )
    resource_type = models.CharField(max_length=16)
    resource = models.TextField()
    opened_scan = models.ForeignKey("posture.ScanRun", on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField(help_text="finished_at of the scan that first saw the failure")
    closed_scan = models.ForeignKey("posture.ScanRun", null=True, blank=True, on_delete=models.CASCADE,
                                    related_name="+", help_text="empty: still failing")
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open window per (host, check, resource). The resource is an unbounded,
            # attacker-chosen name: its md5 keeps the index entry small whatever its length.
            models.UniqueConstraint("host", "check_id", "resource_type", MD5("resource"),
                                    condition=Q(closed_scan__isnull=True), name="failure_window_one_open"),
        ]
        indexes = [
            # Windows of a host overlapping a period, and its open ones (closed_at null).
            models.Index(fields=["host", "opened_at"], name="failure_window_host_opened"),
            models.Index(fields=["host", "closed_at"], name="failure_window_host_closed"),
            models.Index(fields=["check_id", "opened_at"], name="failure_window_check"),
        ]

    def __str__(self) -> str:
        until = f"scan #{self.closed_scan_id}" if self.closed_scan_id else "open"
        return f"{self.check_id} {self.resource}: scan #{self.opened_scan_id} .. {until}"


class DailyPosture(models.Model):
    """Counts of controls per status (after exceptions/attestations in force at ``scan``'s
    finish) and of results passing/failing, for one host, framework and day (UTC)."""

    host = models.ForeignKey("posture.DockerHost", on_delete=models.CASCADE, related_name="+", db_index=False)
    framework = models.CharField(max_length=64, help_text="framework slug")
    day = models.DateField()
    # No index of its own (rows are read by framework and day); only a purge deletes by scan.
    scan = models.ForeignKey("posture.ScanRun", on_delete=models.CASCADE, related_name="+", db_index=False,
                             help_text="the day's last succeeded (and evaluated) scan")
    controls_pass = models.PositiveSmallIntegerField(default=0)
    controls_fail = models.PositiveSmallIntegerField(default=0)
    controls_excepted = models.PositiveSmallIntegerField(default=0)
    controls_manual = models.PositiveSmallIntegerField(default=0)
    controls_not_assessed = models.PositiveSmallIntegerField(default=0)
    controls_error = models.PositiveSmallIntegerField(default=0)
    controls_not_applicable = models.PositiveSmallIntegerField(default=0)
    results_pass = models.PositiveIntegerField(default=0)
    results_fail = models.PositiveIntegerField(default=0, help_text="failures not excepted")

    class Meta:
        # One index serves the upsert, fleet trends (a framework over a range of days) and a
        # host's trend (the same range, filtered by host): every byte counts on a host-day.
        constraints = [
            models.UniqueConstraint(fields=["framework", "day", "host"], name="daily_posture_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.host_id} {self.framework} {self.day}"

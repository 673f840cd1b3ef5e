"""Verdicts, stored as cheaply as evidence.

Evaluation is a pure function of a scan's evidence set and the check versions, so its
output is content-addressed too: a ``ResultSet`` (sha256 over its findings) holds the
``CheckResult`` rows (check × resource) and the raw ``ControlResult`` counts per framework
control. An unchanged host rescanned daily points every ``Evaluation`` at the same set: a year
of scans adds one small row per scan. ``reevaluate`` adds a new Evaluation and keeps the old
ones (``current`` marks the one in force).

Exceptions and attestations are applied when results are read, as of a moment (see
posture.jobs.rollup): an exception approved today does not rewrite what a scan said last
month, and "posture at T" uses the exceptions that were active at T."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ResultSet(models.Model):
    digest = models.CharField(max_length=64, primary_key=True)
    finding_count = models.PositiveIntegerField()
    counts = models.JSONField(default=dict, help_text="findings per status")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"results {self.digest[:12]} ({self.finding_count})"


class CheckResult(models.Model):
    """One check's verdict on one resource, before exceptions."""

    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="results")
    check_id = models.CharField(max_length=100, db_index=True)
    check_version = models.PositiveIntegerField()
    resource_type = models.CharField(max_length=16)
    # Container and image names are attacker-controlled and unbounded: never truncated, so a
    # long look-alike name cannot collide with (and hide behind) another resource's result.
    resource = models.TextField()
    status = models.CharField(max_length=16)
    detail = models.TextField()
    evidence_kind = models.CharField(max_length=32, blank=True)
    evidence_key = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["result_set", "status"], name="check_result_set_status"),
            models.Index(fields=["result_set", "check_id"], name="check_result_set_check"),
        ]

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource}: {self.status}"


class ControlResult(models.Model):
    """Counts of the checks behind one framework control, per result set (before exceptions)."""

    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="control_results")
    control = models.ForeignKey("posture.Control", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, help_text="worst status of its results")
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    not_applicable = models.PositiveIntegerField(default=0)
    manual = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    not_assessed = models.PositiveIntegerField(default=0, help_text="evidence to decide was not collected")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["result_set", "control"], name="control_result_unique")]

    def __str__(self) -> str:
        return f"control {self.control_id}: {self.status}"


class Evaluation(models.Model):
    """One scoring of one scan's evidence. Re-evaluation adds a row; old ones are kept."""

    scan = models.ForeignKey("posture.ScanRun", on_delete=models.CASCADE, related_name="evaluations")
    result_set = models.ForeignKey(ResultSet, on_delete=models.PROTECT, related_name="evaluations")
    created_at = models.DateTimeField(auto_now_add=True)
    engine_version = models.CharField(max_length=64, help_text="digest of the check ids and versions used")
    current = models.BooleanField(default=True)
    # Delta against the host's previous succeeded scan: failing check × resource pairs.
    new_failures = models.PositiveIntegerField(default=0)
    fixed = models.PositiveIntegerField(default=0)
    unchanged_failures = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["scan"], condition=Q(current=True), name="one_current_evaluation_per_scan"),
        ]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of scan #{self.scan_id}{' (current)' if self.current else ''}"

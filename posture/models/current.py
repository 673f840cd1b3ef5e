"""The read model of posture *now*: one row per verdict of every host's current scan.

Derived data, like failure windows: ``posture.jobs.current`` keeps it in step with the
evaluations (a host's rows are replaced by difference when its current scan's result set
changes: a changed host-day rewrites the rows of the resources that changed, an unchanged
one writes nothing) and re-applies the exceptions and attestations in force whenever that
set changes or one of them lapses. ``CurrentState`` says until when the applied set holds.

Why it exists: "the fleet's verdicts now, worst first, page N" over the normalised results
touches every result of every current scan (200,000 rows on 100 hosts) to sort them. Here the
sort keys are columns (the rank after exceptions, the catalog severity's rank, check, host),
so a page is an index range read whatever the fleet's size. Reads at a past moment, and reads
of given scans, use the normalised results (``posture.queries.verdicts``): both paths answer
the same rows in the same order, which the tests hold them to."""

from __future__ import annotations

from django.db import models


class CurrentFinding(models.Model):
    host = models.ForeignKey("posture.DockerHost", on_delete=models.CASCADE, related_name="+", db_index=False)
    result = models.ForeignKey("posture.CheckResult", on_delete=models.CASCADE, related_name="current_rows")
    check_id = models.CharField(max_length=100)
    catalog_check = models.ForeignObject(
        "posture.Check", on_delete=models.DO_NOTHING, from_fields=["check_id"], to_fields=["id"], related_name="+",
    )
    current = models.ForeignObject(
        "posture.CurrentScan", on_delete=models.DO_NOTHING, from_fields=["host"], to_fields=["host"],
        related_name="+", help_text="the host's current scan (one row per host)")
    resource_type = models.CharField(max_length=16)
    resource = models.TextField()
    status = models.CharField(max_length=16, help_text="the stored verdict")
    severity_rank = models.PositiveSmallIntegerField(help_text="the catalog severity's rank, worst first")
    verdict_rank = models.PositiveSmallIntegerField(
        help_text="rank of the verdict after the exceptions and attestations in force (CurrentState)")
    exception_id = models.BigIntegerField(null=True)
    attestation_id = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "result"], name="current_finding_host_result")]
        indexes = [
            # The default order (worst verdict, severity, check; host and resource sort within
            # those groups). The resource is left out: an unbounded, attacker-chosen name.
            models.Index(fields=["verdict_rank", "severity_rank", "check_id"], name="current_finding_order"),
            models.Index(fields=["check_id", "verdict_rank"], name="current_finding_check"),
        ]

    def __str__(self) -> str:
        return f"host #{self.host_id} {self.check_id} {self.resource}: {self.status}"


class CurrentScan(models.Model):
    """Per host: the current scan the rows stand for (updated every scan; the rows only when
    its result set changes)."""

    host = models.OneToOneField("posture.DockerHost", on_delete=models.CASCADE, primary_key=True, related_name="+")
    scan = models.ForeignKey("posture.ScanRun", on_delete=models.CASCADE, related_name="+")
    finished_at = models.DateTimeField()
    result_set_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"host #{self.host_id}: scan #{self.scan_id}"


class CurrentState(models.Model):
    """One row: the exceptions and attestations applied to ``CurrentFinding`` (as they were at
    ``applied_at``, ``digest`` of them) hold until ``valid_until`` (the next lapse, revocation
    or expiry; null: none is due). No row: rebuild everything on the next read."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    applied_at = models.DateTimeField()
    valid_until = models.DateTimeField(null=True)
    exception_checks = models.JSONField(default=list, help_text="checks with an exception or attestation applied")
    digest = models.CharField(max_length=32, help_text="md5 of the exceptions and attestations when applied")

    def __str__(self) -> str:
        return f"applied at {self.applied_at}, until {self.valid_until or 'changed'}"

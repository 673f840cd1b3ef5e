"""Verdicts, stored as cheaply as evidence.

Evaluation is a pure function of a scan's evidence set and the check versions, so its
output is content-addressed, at two levels:

- a ``ResultChunk`` holds the verdicts of ONE resource (every check on one container, one
  image, the daemon, the host) in one evaluation, keyed by the sha256 of its sorted rows.
  An unchanged container keeps its chunk forever, and two hosts running an identical
  container share it;
- a ``ResultSet`` is a scan's verdicts: the sorted list of its chunk digests (hashed into its
  own digest), with the membership rows ``ResultSetChunk`` (one per resource, like
  ``EvidenceSetItem``) and the per-control counts ``control_counts`` (before exceptions).

A daily rescan of an unchanged host points its ``Evaluation`` at the same set (one small row
per scan); a host where one container changed adds one chunk (that container's rows) and one
set with one membership row per resource, not a copy of every verdict of the host.

``ControlResult`` (one row per set and control) is gone: nothing read it, and at ~275 rows
per changed host-day it cost more than the verdicts; ``ResultSet.control_counts`` holds the
same counts in one JSON value.

Exceptions and attestations are applied when results are read, as of a moment: an exception
approved today does not rewrite what a scan said last month, and "posture at T" uses the
exceptions that were in force at T. History derived at evaluation (``FailureWindow``,
``DailyPosture``) lives in posture/models/history.py."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ResultChunk(models.Model):
    """The verdicts of one resource in one evaluation, stored once however many scans and
    hosts produced exactly them. Immutable once written (its rows commit with it).

    Keyed by its digest, but referenced by a bigint id: a membership or a verdict row then
    carries 8 bytes instead of 64 hex characters (and so do their indexes)."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of its sorted rows")
    resource_type = models.CharField(max_length=16)
    resource = models.TextField()
    finding_count = models.PositiveIntegerField()
    counts = models.JSONField(default=dict, help_text="findings per status")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"chunk {self.digest[:12]} {self.resource_type}:{self.resource[:40]} ({self.finding_count})"


class ResultSet(models.Model):
    """A scan's verdicts: the set of its chunks, content-addressed over their digests (and,
    like chunks, referenced by a bigint id)."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of its sorted chunk digests")
    finding_count = models.PositiveIntegerField()
    counts = models.JSONField(default=dict, help_text="findings per status")
    control_counts = models.JSONField(
        default=dict, help_text='before exceptions: {framework slug: {control ref: {status: n}}}')
    assessed = models.JSONField(
        default=dict, help_text="{framework slug: [control refs with counts, none not_assessed or error]} "
                                "(from control_counts: posture.jobs.evaluate.assessed_refs)")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"results {self.digest[:12]} ({self.finding_count})"


class ResultSetChunk(models.Model):
    """Membership: the set holds the chunk (one row per resource of the scan, ~60 bytes with
    its indexes: the bulk of what a changed host-day adds). The (set, chunk) pair is the
    primary key, so there is no id column and no second unique index."""

    pk = models.CompositePrimaryKey("result_set", "chunk")
    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    chunk = models.ForeignKey(ResultChunk, on_delete=models.PROTECT, related_name="memberships")

    def __str__(self) -> str:
        return f"set {self.result_set_id} > chunk {self.chunk_id}"


class CheckResult(models.Model):
    """One check's verdict on one resource, before exceptions; belongs to its resource's chunk.

    ``resource_type``/``resource`` repeat the chunk's (rows are deduplicated, so this costs
    little) so filters need no join. ``catalog_check`` joins the catalog's ``Check`` row on
    ``check_id`` (severity, title, frameworks in SQL); it has no database constraint, so a
    check retired from the code (and from the catalog by ``load_catalog``) never touches the
    history that mentions it. (A field cannot be named ``check``: Django models have a
    ``check()`` class method.)"""

    chunk = models.ForeignKey(ResultChunk, on_delete=models.CASCADE, related_name="results", db_index=False)
    check_id = models.CharField(max_length=100)
    catalog_check = models.ForeignObject(
        "posture.Check", on_delete=models.DO_NOTHING, from_fields=["check_id"], to_fields=["id"], related_name="+",
    )
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
            models.Index(fields=["chunk", "status"], name="check_result_chunk_status"),
            models.Index(fields=["check_id", "status"], name="check_result_check_status"),
        ]

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource}: {self.status}"


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

"""ScanRun: one collection of one host, a row with a state machine.

queued → running → succeeded | failed | errored. A worker *claims* a scan with a
conditional UPDATE (queued, or running with an expired heartbeat lease) that bumps
``attempts``; every later write is fenced on that attempt number, so a redelivered or
zombie task can never finish a scan twice. A partial unique index allows one running scan
per host, so two scans of one host never overlap, whichever workers hold them.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from posture.choices import ScanState, Trigger


class ScanRun(models.Model):
    # PROTECT: a host with history is archived, never deleted with its scans (see jobs/hosts.py).
    host = models.ForeignKey("posture.DockerHost", on_delete=models.PROTECT, related_name="scans")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    state = models.CharField(max_length=16, choices=ScanState.choices, default=ScanState.QUEUED)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="claims so far; fences every write")
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True, help_text="one-line reason when failed or errored")
    # Every progress line (at most 30) while running and when a scan fails or errors; a
    # succeeded scan keeps its milestones only (posture.jobs.scans.kept_log).
    log = models.JSONField(default=list, blank=True, help_text="progress lines (a succeeded scan keeps its milestones)")
    scanner_version = models.CharField(max_length=20, blank=True)
    evidence_set = models.ForeignKey(
        "posture.EvidenceSet", null=True, blank=True, on_delete=models.PROTECT, related_name="scans"
    )
    counts = models.JSONField(default=dict, blank=True, help_text='{"images": N, "containers": N, ...}')
    warnings = models.JSONField(default=list, blank=True)
    # Tamper evidence: chain_digest = sha256(previous chain_digest, this scan's manifest).
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    chain_digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["host"], condition=Q(state="running"), name="one_running_scan_per_host"),
        ]
        indexes = [
            # "current posture" and "posture at T": latest succeeded scan per host, bounded by T,
            # ties by id (posture.queries.scans): one index probe per host.
            models.Index(fields=["host", "state", "-finished_at", "-id"], name="scan_host_state_finished_id"),
            models.Index(fields=["state", "heartbeat_at"], name="scan_state_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"scan #{self.pk} of {self.host_id} ({self.state})"

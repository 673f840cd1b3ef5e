"""Content-addressed evidence.

A payload (one daemon document, one image, one container, one probe result) is stored
once, keyed by the sha256 of its canonical JSON. A scan points at an *evidence set*: the
sorted list of (kind, key, digest) it saw, itself content-addressed. Rescanning an
unchanged host therefore adds one ScanRun row and nothing else: the payloads and the set
already exist. A host where one container changed adds that container's payload and a new
set (one row per item). "Which scans saw this payload" is a join through the set.

Payloads and sets are *named* by their digests (unique keys: what auditors, the API and the
hash chain see) but *referenced* by bigint ids: a membership row carries two 8-byte ids
instead of two 64-character digests, and so do its indexes. The hash chain and the set
digests are computed over digests only, never ids, so tamper evidence does not depend on
them (see ``posture.jobs.ingest.verify_chain``).
"""

from __future__ import annotations

from django.db import models


class Evidence(models.Model):
    """One evidence document, stored once however many scans saw it."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the canonical JSON")
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    size = models.PositiveIntegerField(help_text="bytes of canonical JSON")
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.kind} {self.digest[:12]}"


class EvidenceSet(models.Model):
    """The manifest of one collection: which evidence items a scan saw, by digest."""

    digest = models.CharField(max_length=64, unique=True, help_text="sha256 of the sorted manifest lines")
    item_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"set {self.digest[:12]} ({self.item_count} items)"


class EvidenceSetItem(models.Model):
    """Links a set to one evidence payload under its resource key (image id, container id...).

    (set, kind, key) is the primary key: one item per resource in a set, no id column, no
    second unique index; reading a set's items walks that index. ``evidence`` keeps its own
    index: "which sets saw this payload" (and the purge of a host's unshared payloads)."""

    pk = models.CompositePrimaryKey("evidence_set", "kind", "key")
    evidence_set = models.ForeignKey(EvidenceSet, on_delete=models.CASCADE, related_name="items", db_index=False)
    evidence = models.ForeignKey(Evidence, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=32)
    key = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"

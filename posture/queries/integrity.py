"""The evidence-integrity facts of hosts: how many succeeded scans each chain holds, its
head (the latest link: chain digest and manifest digest), and the last time someone verified
it (``posture.jobs.ingest.verify_chain``, recorded as an ``evidence.verified`` audit event).

Verifying recomputes every payload digest of a host's history, so it runs on request, one
host at a time (the page's "Verify now"); listing the fleet only reads what is stored, in a
fixed number of queries whatever the number of hosts or scans."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from posture.choices import ScanState
from posture.models import AuditEvent, DockerHost, ScanRun
from posture.queries.scans import current_scans

VERIFIED_ACTION = "evidence.verified"


def verification_target(host: DockerHost) -> str:
    """The audit target of a host's verifications (by id: a host may be renamed)."""
    return f"host #{host.pk}"


@dataclass
class ChainFacts:
    host: DockerHost
    succeeded: int
    head: ScanRun | None
    last_check: AuditEvent | None

    @property
    def status(self) -> str:
        """verified / broken from the last verification; unverified when never verified or
        when a scan was added to the chain after it."""
        if self.last_check is None:
            return "unverified"
        if self.last_check.detail.get("problems"):
            return "broken"
        if self.head is not None and self.last_check.detail.get("head_scan") != self.head.pk:
            return "unverified"
        return "verified"


def chain_facts(hosts: Iterable[DockerHost] | QuerySet[DockerHost]) -> list[ChainFacts]:
    """Facts for ``hosts`` (in their order) in three queries: succeeded counts, head scans
    with their manifest digest, and the last verification of each."""
    hosts = list(hosts)
    ids = [h.pk for h in hosts]
    counts = dict(DockerHost.objects.filter(pk__in=ids).annotate(
        n=Count("scans", filter=Q(scans__state=ScanState.SUCCEEDED))).values_list("pk", "n"))
    heads = {s.host_id: s for s in current_scans(ids).select_related("evidence_set").defer("log", "warnings")}
    checks = {e.target: e for e in AuditEvent.objects.filter(
        action=VERIFIED_ACTION, target__in=[verification_target(h) for h in hosts])
        .order_by("target", "-at", "-id").distinct("target")}
    return [ChainFacts(h, counts.get(h.pk, 0), heads.get(h.pk), checks.get(verification_target(h))) for h in hosts]


def verifications(host: DockerHost, limit: int = 20) -> QuerySet[AuditEvent]:
    """The host's latest verifications, newest first."""
    return AuditEvent.objects.filter(action=VERIFIED_ACTION, target=verification_target(host)).order_by("-at", "-id")[:limit]

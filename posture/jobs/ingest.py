"""Store a snapshot as content-addressed evidence, and load it back.

Writes are idempotent: payloads and sets are keyed by their sha256, inserted only when
missing (``ignore_conflicts`` covers two workers racing on the same payload, and inserting
in digest order keeps two such workers from deadlocking), so storing the same snapshot
twice adds nothing, and a half-finished store is finished by a retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from posture.models import Evidence, EvidenceSet, EvidenceSetItem, ScanRun
from scanners import snapshot as snap

CHAIN_GENESIS = "0" * 64


def canonical_json(payload: Any) -> str:
    """The one serialisation digests are computed over (sorted keys, no spaces, UTF-8)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_lines(entries: list[tuple[str, str, str]]) -> str:
    """(kind, key, digest) entries as the sorted text whose sha256 is the set digest."""
    return "".join(f"{kind}\t{key}\t{digest}\n" for kind, key, digest in sorted(entries))


def chain_digest(previous: str, scan_id: int, host_id: int, finished_at_iso: str, manifest: str) -> str:
    """Links a scan to its host's previous succeeded scan; altering any stored scan or payload
    breaks every later link (see ``verify_chain``)."""
    return sha256_hex(f"posture-chain-v1\n{previous}\n{scan_id}\n{host_id}\n{finished_at_iso}\n{manifest}")


@dataclass
class Stored:
    evidence_set: EvidenceSet
    new_payloads: int
    new_bytes: int


def store_snapshot(snapshot: snap.Snapshot) -> Stored:
    """Store every evidence item of a snapshot once; return its (possibly existing) set."""
    items = snap.split(snapshot)
    docs: dict[str, tuple[str, Any, int]] = {}
    entries: list[tuple[str, str, str]] = []
    for kind, key, payload in items:
        text = canonical_json(payload)
        digest = sha256_hex(text)
        docs.setdefault(digest, (kind, payload, len(text.encode("utf-8"))))
        entries.append((kind, key, digest))
    set_digest = sha256_hex(manifest_lines(entries))

    ids = dict(Evidence.objects.filter(digest__in=list(docs)).values_list("digest", "id"))
    # In digest order: two workers storing payloads both need (hosts sharing images) insert
    # them in one order, so the second waits for the first instead of each holding a row the
    # other waits for (a deadlock, one scan killed). tests/posture/test_ingest.py proves it.
    missing = [
        Evidence(digest=d, kind=kind, payload=payload, size=size)
        for d, (kind, payload, size) in sorted(docs.items())
        if d not in ids
    ]
    with transaction.atomic():
        Evidence.objects.bulk_create(missing, batch_size=200, ignore_conflicts=True)
        if missing:  # ignore_conflicts sets no ids: read them (a racing worker's rows too)
            ids.update(Evidence.objects.filter(digest__in=[m.digest for m in missing]).values_list("digest", "id"))
        evidence_set = EvidenceSet.objects.filter(digest=set_digest).first()
        if evidence_set is None:
            EvidenceSet.objects.bulk_create([EvidenceSet(digest=set_digest, item_count=len(entries))], ignore_conflicts=True)
            evidence_set = EvidenceSet.objects.get(digest=set_digest)
            EvidenceSetItem.objects.bulk_create(
                [EvidenceSetItem(evidence_set=evidence_set, evidence_id=ids[d], kind=k, key=key) for k, key, d in entries],
                batch_size=500,
                ignore_conflicts=True,
            )
    return Stored(evidence_set, len(missing), sum(m.size for m in missing))


def load_snapshot(scan: ScanRun) -> snap.Snapshot:
    """The snapshot a succeeded scan saw, rebuilt from storage (checks read only this)."""
    if scan.evidence_set_id is None:
        raise ValueError(f"scan #{scan.pk} has no stored evidence (state {scan.state})")
    rows = EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id).values_list(
        "kind", "key", "evidence__payload"
    )
    return snap.join(list(rows), warnings=scan.warnings)


def verify_chain(host_id: int) -> list[str]:
    """Recompute every payload digest, set digest and chain link of a host's succeeded scans.

    Returns the problems found (empty when the history is intact)."""
    from posture.choices import ScanState

    problems: list[str] = []
    previous = CHAIN_GENESIS
    scans = (ScanRun.objects.filter(host_id=host_id, state=ScanState.SUCCEEDED).select_related("evidence_set")
             .order_by("finished_at", "id"))
    checked_sets: set[int] = set()
    for scan in scans:
        # Digests, never ids: the chain and the manifest are computed over what auditors see.
        manifest = scan.evidence_set.digest if scan.evidence_set_id else ""
        if manifest and scan.evidence_set_id not in checked_sets:
            rows = EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id).values_list(
                "kind", "key", "evidence__digest", "evidence__payload"
            )
            entries = []
            for kind, key, digest, payload in rows:
                if sha256_hex(canonical_json(payload)) != digest:
                    problems.append(f"scan #{scan.pk}: payload {digest[:12]} ({kind} {key}) does not match its digest")
                entries.append((kind, key, digest))
            if sha256_hex(manifest_lines(entries)) != manifest:
                problems.append(f"scan #{scan.pk}: evidence set {manifest[:12]} does not match its items")
            checked_sets.add(scan.evidence_set_id)
        expected = chain_digest(previous, scan.pk, host_id, scan.finished_at.isoformat(), manifest)
        if scan.chain_digest != expected:
            problems.append(f"scan #{scan.pk}: chain link broken")
        previous = scan.chain_digest
    return problems

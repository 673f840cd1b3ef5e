"""Migration 0007: evidence stored the 0006 way (payloads, sets and memberships keyed by their
sha256 digests) is carried over to bigint ids with the same digests: every scan loads the same
snapshot, the hash chain still verifies, payloads stay shared across hosts, new scans reuse
the migrated rows; succeeded scans keep the milestones of their log, failed ones every line.
On PostgreSQL here, and on SQLite (the embedded default) in a subprocess running the same
scenario."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import migrations
from tests.support.migrations import roundtrip, run_on_sqlite

BEFORE = [("posture", "0006_api_tokens")]

#: A succeeded scan's log as a worker wrote it before 0007: every progress line.
FULL_LOG = ["10:00:00 attempt 1 on w1: connecting to unix:///old.sock", "10:00:01 inspecting images 0/2",
            "10:00:01 inspecting images 1/2", "10:00:01 inspecting images 2/2", "10:00:02 inspecting containers 0/2",
            "10:00:02 inspecting containers 1/2", "10:00:03 inspecting containers 2/2",
            "10:00:03 collected 2 images, 2 containers; storing"]
MILESTONES = [FULL_LOG[0], FULL_LOG[3], FULL_LOG[6], FULL_LOG[7]]


def changed(snapshot: dict) -> dict:
    other = copy.deepcopy(snapshot)
    other["containers"][0]["inspect"]["HostConfig"]["Privileged"] = True
    return other


def fewer_containers(snapshot: dict) -> dict:
    fewer = copy.deepcopy(snapshot)
    fewer["containers"] = fewer["containers"][1:]
    return fewer


def store_the_old_way(apps, host_name: str, snapshot: dict, day: int, previous=None):
    """What 0006's store_snapshot and _store_success wrote for one succeeded scan: payloads and
    sets keyed by digest, items pointing at both digests, the chain link over the set digest."""
    from posture.jobs.ingest import CHAIN_GENESIS, canonical_json, chain_digest, manifest_lines, sha256_hex
    from scanners import snapshot as snap

    Host, Scan = apps.get_model("posture", "DockerHost"), apps.get_model("posture", "ScanRun")
    Evidence, EvidenceSet = apps.get_model("posture", "Evidence"), apps.get_model("posture", "EvidenceSet")
    Item = apps.get_model("posture", "EvidenceSetItem")
    host, _ = Host.objects.get_or_create(name=host_name, defaults={"url": "unix:///old.sock"})
    entries = []
    for kind, key, payload in snap.split(snapshot):
        text = canonical_json(payload)
        digest = sha256_hex(text)
        Evidence.objects.get_or_create(digest=digest, defaults={"kind": kind, "payload": payload,
                                                                "size": len(text.encode())})
        entries.append((kind, key, digest))
    set_digest = sha256_hex(manifest_lines(entries))
    ev_set, created = EvidenceSet.objects.get_or_create(digest=set_digest, defaults={"item_count": len(entries)})
    if created:
        Item.objects.bulk_create([Item(evidence_set_id=set_digest, evidence_id=d, kind=k, key=key)
                                  for k, key, d in entries])
    finished = timezone.now() - timedelta(days=30 - day)
    scan = Scan.objects.create(host=host, state="succeeded", started_at=finished, finished_at=finished,
                               evidence_set=ev_set, previous=previous, log=FULL_LOG)
    scan.chain_digest = chain_digest(previous.chain_digest if previous else CHAIN_GENESIS, scan.pk, host.pk,
                                     finished.isoformat(), set_digest)
    scan.save(update_fields=["chain_digest"])
    return scan


def scenario_before(apps) -> dict:
    from tests.posture.conftest import SNAPSHOT

    a1 = store_the_old_way(apps, "old-a", SNAPSHOT, 1)
    a2 = store_the_old_way(apps, "old-a", SNAPSHOT, 2, previous=a1)  # unchanged: the same set
    a3 = store_the_old_way(apps, "old-a", changed(SNAPSHOT), 3, previous=a2)
    b1 = store_the_old_way(apps, "old-b", fewer_containers(SNAPSHOT), 1)  # shares a1's payloads
    failed = apps.get_model("posture", "ScanRun").objects.create(
        host=a1.host, state="failed", error="connection refused", log=FULL_LOG + ["10:00:04 failed: boom"])
    Evidence, Item = apps.get_model("posture", "Evidence"), apps.get_model("posture", "EvidenceSetItem")
    return {
        "snapshots": {a1.pk: SNAPSHOT, a2.pk: SNAPSHOT, a3.pk: changed(SNAPSHOT), b1.pk: fewer_containers(SNAPSHOT)},
        "set_digests": {s.pk: s.evidence_set_id for s in (a1, a2, a3, b1)},
        "chains": {s.pk: s.chain_digest for s in (a1, a2, a3, b1)},
        "evidence": set(Evidence.objects.values_list("digest", flat=True)),
        "items": set(Item.objects.values_list("evidence_set_id", "kind", "key", "evidence_id")),
        "failed": failed.pk,
        "hosts": [a1.host_id, b1.host_id],
    }


def check_after(before: dict) -> None:
    from posture.jobs import ingest
    from posture.models import Evidence, EvidenceSet, EvidenceSetItem, ScanRun
    from scanners import snapshot as snap
    from tests.posture.conftest import SNAPSHOT

    assert set(Evidence.objects.values_list("digest", flat=True)) == before["evidence"]
    assert set(EvidenceSetItem.objects.values_list("evidence_set__digest", "kind", "key", "evidence__digest")) == \
        before["items"]
    for scan_id, snapshot in before["snapshots"].items():
        scan = ScanRun.objects.get(pk=scan_id)
        assert isinstance(scan.evidence_set_id, int)
        assert scan.evidence_set.digest == before["set_digests"][scan_id]
        assert scan.chain_digest == before["chains"][scan_id]
        assert ingest.load_snapshot(scan) == snap.join(snap.split(snapshot))
        assert scan.log == MILESTONES
    for host_id in before["hosts"]:
        assert ingest.verify_chain(host_id) == []
    assert ScanRun.objects.get(pk=before["failed"]).log == FULL_LOG + ["10:00:04 failed: boom"]
    # a1 and a2 share one set; b1's payloads are a1's: each stored once, referenced by id.
    a1, a2 = sorted(before["snapshots"])[:2]
    assert ScanRun.objects.get(pk=a1).evidence_set_id == ScanRun.objects.get(pk=a2).evidence_set_id
    assert Evidence.objects.count() == len(SNAPSHOT["containers"]) + len(SNAPSHOT["images"]) + 2 + 1
    # New scans find the migrated rows by digest and add rows after them.
    again = ingest.store_snapshot(SNAPSHOT)
    assert again.new_payloads == 0 and again.evidence_set.pk == ScanRun.objects.get(pk=a1).evidence_set_id
    sets = EvidenceSet.objects.count()
    fresh = copy.deepcopy(SNAPSHOT)
    fresh["containers"][0]["inspect"]["HostConfig"]["Memory"] = 123456789
    assert ingest.store_snapshot(fresh).new_payloads == 1 and EvidenceSet.objects.count() == sets + 1


@pytest.mark.django_db(transaction=True)
def test_it_carries_evidence_keyed_by_digest_over_to_ids_on_postgresql():
    roundtrip(BEFORE, scenario_before, check_after)


def sqlite_roundtrip() -> None:  # pragma: no cover - runs in the subprocess below
    migrations.sqlite_roundtrip(BEFORE, scenario_before, check_after)


def test_it_carries_evidence_keyed_by_digest_over_to_ids_on_sqlite(tmp_path):
    run_on_sqlite("tests.posture.test_migration_evidence_compact", tmp_path)

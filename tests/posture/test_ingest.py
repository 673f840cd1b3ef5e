"""Content-addressed storage: payloads once, sets once, the hash chain verifiable."""

from __future__ import annotations

import copy
import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from posture.jobs import ingest
from posture.models import Evidence, EvidenceSet, EvidenceSetItem
from scanners import snapshot as snap


def make_snapshot(n_containers: int = 3) -> snap.Snapshot:
    return {
        "scanner_version": snap.SCANNER_VERSION,
        "daemon": {"info": {"ID": "abc", "DockerRootDir": "/var/lib/docker"}, "version": {"Version": "20.10.24"}},
        "images": [{"id": "sha256:" + "1" * 64, "tags": ["app:1"], "inspect": {"Config": {"User": ""}}, "history": []}],
        "containers": [
            {"id": f"{i:064x}", "name": f"c{i}", "inspect": {"Name": f"/c{i}", "HostConfig": {"Privileged": False}}}
            for i in range(n_containers)
        ],
        "host": None,
        "warnings": [],
    }


@pytest.mark.django_db
def test_it_stores_each_payload_once_and_reuses_the_set_for_an_unchanged_snapshot():
    first = ingest.store_snapshot(make_snapshot())
    again = ingest.store_snapshot(make_snapshot())
    assert first.new_payloads == 6  # info, version, 1 image, 3 containers
    assert again.new_payloads == 0 and again.new_bytes == 0
    assert again.evidence_set.digest == first.evidence_set.digest
    assert Evidence.objects.count() == 6
    assert EvidenceSet.objects.count() == 1
    assert EvidenceSetItem.objects.count() == 6


@pytest.mark.django_db
def test_it_adds_only_the_changed_payload_and_a_new_set_when_one_container_changes():
    base = make_snapshot()
    ingest.store_snapshot(base)
    changed = copy.deepcopy(base)
    changed["containers"][1]["inspect"]["HostConfig"]["Privileged"] = True
    stored = ingest.store_snapshot(changed)
    assert stored.new_payloads == 1
    assert EvidenceSet.objects.count() == 2
    assert Evidence.objects.filter(kind="container").count() == 4


@pytest.mark.django_db
def test_it_stores_payloads_as_jsonb_on_postgresql():
    ingest.store_snapshot(make_snapshot(1))
    with connection.cursor() as cur:
        cur.execute("SELECT jsonb_typeof(payload) FROM posture_evidence LIMIT 1")
        assert cur.fetchone()[0] == "object"


def test_it_digests_canonical_json_independent_of_key_order():
    a = {"b": 1, "a": [1, {"y": 2, "x": "é"}]}
    b = json.loads('{"a": [1, {"x": "é", "y": 2}], "b": 1}')
    assert ingest.sha256_hex(ingest.canonical_json(a)) == ingest.sha256_hex(ingest.canonical_json(b))


# --- Evidence referenced by id, named by digest; the chain over digests -------------------

def chained_scan(host, snapshot: dict, lines: list[str] | None = None):
    """A succeeded scan written by the worker's own success path (chain link, counts, log)."""
    from posture.jobs.scans import _store_success
    from posture.models import ScanRun

    scan = ScanRun.objects.create(host=host, state="running", attempts=1, started_at=timezone.now())
    assert _store_success(scan, snapshot, lines or [])
    scan.refresh_from_db()
    return scan


@pytest.fixture
def host(db):
    from posture.models import DockerHost

    return DockerHost.objects.create(name="chained", url="unix:///chained.sock")


@pytest.mark.django_db
def test_it_references_payloads_and_sets_by_id_and_names_them_by_digest():
    stored = ingest.store_snapshot(make_snapshot())
    ev_set = stored.evidence_set
    assert isinstance(ev_set.pk, int) and len(ev_set.digest) == 64
    assert EvidenceSet.objects.get(digest=ev_set.digest) == ev_set
    items = list(EvidenceSetItem.objects.filter(evidence_set=ev_set).values_list("evidence_set_id", "evidence_id"))
    assert len(items) == 6 and all(isinstance(s, int) and isinstance(e, int) for s, e in items)
    first = Evidence.objects.order_by("id").first()
    with pytest.raises(IntegrityError), transaction.atomic():  # a digest names one payload
        Evidence.objects.create(digest=first.digest, kind=first.kind, payload={}, size=2)
    with pytest.raises(IntegrityError), transaction.atomic():  # one item per (set, kind, key)
        EvidenceSetItem.objects.create(evidence_set=ev_set, evidence=first, kind="container", key=f"{0:064x}")


@pytest.mark.django_db
def test_it_loads_a_stored_snapshot_back_identically(host):
    from tests.posture.conftest import SNAPSHOT

    scan = chained_scan(host, SNAPSHOT)
    loaded = ingest.load_snapshot(scan)
    assert loaded == snap.join(snap.split(SNAPSHOT))
    assert {c["id"] for c in loaded["containers"]} == {c["id"] for c in SNAPSHOT["containers"]}
    assert json.dumps(loaded["containers"], sort_keys=True) == json.dumps(
        sorted(SNAPSHOT["containers"], key=lambda c: c["name"]), sort_keys=True)


@pytest.mark.django_db
def test_it_stores_a_payload_once_for_every_host_that_saw_it():
    from posture.models import DockerHost
    from tests.posture.conftest import SNAPSHOT

    a = chained_scan(DockerHost.objects.create(name="a", url="unix:///a.sock"), SNAPSHOT)
    fewer = copy.deepcopy(SNAPSHOT)
    fewer["containers"] = fewer["containers"][1:]
    b = chained_scan(DockerHost.objects.create(name="b", url="unix:///b.sock"), fewer)
    assert b.counts["new_payloads"] == 0 and a.evidence_set_id != b.evidence_set_id
    a_ids = set(EvidenceSetItem.objects.filter(evidence_set_id=a.evidence_set_id).values_list("evidence_id", flat=True))
    b_ids = set(EvidenceSetItem.objects.filter(evidence_set_id=b.evidence_set_id).values_list("evidence_id", flat=True))
    assert b_ids < a_ids and Evidence.objects.count() == len(a_ids)


@pytest.fixture
def chain(host):
    """Three chained scans of one host: unchanged, unchanged, one container changed."""
    base = make_snapshot()
    other = copy.deepcopy(base)
    other["containers"][1]["inspect"]["HostConfig"]["Privileged"] = True
    scans = [chained_scan(host, base), chained_scan(host, base), chained_scan(host, other)]
    assert ingest.verify_chain(host.pk) == []
    assert scans[0].evidence_set_id == scans[1].evidence_set_id != scans[2].evidence_set_id
    assert scans[2].chain_digest == ingest.chain_digest(
        scans[1].chain_digest, scans[2].pk, host.pk, scans[2].finished_at.isoformat(), scans[2].evidence_set.digest)
    return host, scans


def test_it_detects_a_tampered_payload(chain):
    host, scans = chain
    victim = EvidenceSetItem.objects.get(evidence_set_id=scans[2].evidence_set_id, kind="container", key=f"{1:064x}")
    Evidence.objects.filter(pk=victim.evidence_id).update(payload={"id": f"{1:064x}", "name": "forged"})
    problems = ingest.verify_chain(host.pk)
    assert problems == [f"scan #{scans[2].pk}: payload {victim.evidence.digest[:12]} (container {1:064x}) "
                        "does not match its digest"]


def test_it_detects_a_payload_whose_digest_was_rewritten_to_match(chain):
    host, scans = chain
    victim = EvidenceSetItem.objects.get(evidence_set_id=scans[2].evidence_set_id, kind="container", key=f"{1:064x}")
    forged = {"id": f"{1:064x}", "name": "forged"}
    Evidence.objects.filter(pk=victim.evidence_id).update(
        payload=forged, digest=ingest.sha256_hex(ingest.canonical_json(forged)))
    assert ingest.verify_chain(host.pk) == [
        f"scan #{scans[2].pk}: evidence set {scans[2].evidence_set.digest[:12]} does not match its items"]


@pytest.mark.parametrize("tamper", ["repoint", "remove", "rekey"])
def test_it_detects_a_tampered_set(chain, tamper):
    host, scans = chain
    items = EvidenceSetItem.objects.filter(evidence_set_id=scans[0].evidence_set_id)
    if tamper == "repoint":  # the item now names another (intact) payload
        other = items.get(kind="container", key=f"{2:064x}").evidence_id
        items.filter(kind="container", key=f"{0:064x}").update(evidence_id=other)
    elif tamper == "remove":
        items.filter(kind="container", key=f"{0:064x}").delete()
    else:
        items.filter(kind="container", key=f"{0:064x}").update(key="f" * 64)
    problems = ingest.verify_chain(host.pk)
    digest = scans[0].evidence_set.digest[:12]
    # Reported once per set (scans 1 and 2 share it); the links themselves still hold.
    assert problems == [f"scan #{scans[0].pk}: evidence set {digest} does not match its items"]


@pytest.mark.parametrize("tamper", ["repoint", "set digest", "chain digest"])
def test_it_detects_a_tampered_link(chain, tamper):
    from posture.models import ScanRun

    host, scans = chain
    if tamper == "repoint":  # scan 2 now claims to have seen scan 3's (intact) evidence
        ScanRun.objects.filter(pk=scans[1].pk).update(evidence_set_id=scans[2].evidence_set_id)
    elif tamper == "set digest":  # a set renamed: its items no longer hash to its name
        EvidenceSet.objects.filter(pk=scans[2].evidence_set_id).update(digest="0" * 64)
    else:
        ScanRun.objects.filter(pk=scans[1].pk).update(chain_digest="0" * 64)
    problems = ingest.verify_chain(host.pk)
    assert problems and any("chain link broken" in p for p in problems)
    if tamper == "set digest":
        assert problems[0] == f"scan #{scans[2].pk}: evidence set {'0' * 12} does not match its items"


@pytest.mark.django_db(transaction=True)
def test_it_lets_two_workers_store_shared_payloads_at_once_without_deadlocking():
    """Two real transactions store payloads both need. Worker B (this thread) stores in
    digest order and holds the lower payload, uncommitted, when worker A (a thread, its own
    connection) stores a snapshot listing the higher one first. In listing order A took the
    higher payload, then waited for B's lower one, and B's next insert waited for A: a
    deadlock, one worker killed by PostgreSQL. In digest order A waits for B holding nothing
    B needs, and both stores finish."""
    import threading

    from django.db import connections

    images = [{"id": f"sha256:{i:064x}", "tags": [f"app:{i}"], "inspect": {"Config": {"User": ""}}, "history": []}
              for i in range(2)]
    digest = {img["id"]: ingest.sha256_hex(ingest.canonical_json(img)) for img in images}
    low, high = sorted(images, key=lambda img: digest[img["id"]])
    errors: list[BaseException] = []

    def worker_a() -> None:
        try:
            ingest.store_snapshot({**make_snapshot(0), "images": [high, low]})
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    def evidence(img: dict) -> Evidence:
        text = ingest.canonical_json(img)
        return Evidence(digest=digest[img["id"]], kind=snap.KIND_IMAGE, payload=img, size=len(text))

    with transaction.atomic():  # worker B, mid-way through its own store
        Evidence.objects.bulk_create([evidence(low)], ignore_conflicts=True)
        a = threading.Thread(target=worker_a)
        a.start()
        _wait_until_another_session_waits_for_a_lock(errors)
        try:
            Evidence.objects.bulk_create([evidence(high)], ignore_conflicts=True)
        except Exception as exc:  # noqa: BLE001 (the deadlock, when it happens here)
            errors.append(exc)
            raise
    a.join(timeout=30)
    assert not errors, errors
    assert Evidence.objects.filter(kind=snap.KIND_IMAGE).count() == 2 and EvidenceSet.objects.count() == 1


def _wait_until_another_session_waits_for_a_lock(errors: list, timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction caches the statistics
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND pid <> pg_backend_pid() AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"worker A never waited for worker B's uncommitted payload ({errors})")

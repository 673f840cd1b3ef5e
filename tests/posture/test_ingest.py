"""Content-addressed storage: payloads once, sets once, the hash chain verifiable."""

from __future__ import annotations

import copy
import json

import pytest
from django.db import connection

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

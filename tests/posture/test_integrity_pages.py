"""The evidence-integrity pages: per host the chain's succeeded scans, head chain and manifest
digests, and the answer of the last "Verify now" (verify_chain), which names the first
broken scan when a payload was altered in the database; listing reads stored facts only,
in a number of queries that does not grow with hosts."""

from __future__ import annotations

import copy

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from posture.models import AuditEvent, DockerHost, Evidence, EvidenceSetItem
from tests.posture.conftest import SNAPSHOT
from tests.posture.test_ingest import chained_scan

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def chain():
    host = DockerHost.objects.create(name="chained", url="unix:///chained.sock")
    other = copy.deepcopy(SNAPSHOT)
    other["containers"] = other["containers"][1:]
    return host, [chained_scan(host, SNAPSHOT), chained_scan(host, SNAPSHOT), chained_scan(host, other)]


def test_it_lists_each_hosts_scans_and_head_digests_unverified_until_verified(auditor, chain):
    host, scans = chain
    body = as_user(auditor).get("/integrity/").content.decode()
    head = scans[-1]
    assert f'title="{head.chain_digest}"' in body and f'title="{head.evidence_set.digest}"' in body
    assert ">3</td>" in body and "state-unverified" in body and "never" in body


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
def test_it_verifies_an_intact_chain_on_request_and_keeps_the_answer(personas, chain, role):
    host, scans = chain
    client = as_user(personas[role])
    response = client.post(f"/integrity/{host.pk}/verify/", follow=True)
    body = response.content.decode()
    assert response.status_code == 200 and "3 scans verified, the chain is intact" in body
    event = AuditEvent.objects.get(action="evidence.verified")
    assert event.target == f"host #{host.pk}" and event.actor == personas[role]
    assert event.detail["problems"] == [] and event.detail["head_scan"] == scans[-1].pk
    assert 'class="state state-verified"' in client.get("/integrity/").content.decode()


def test_it_detects_a_tampered_payload_and_names_the_scan(auditor, chain):
    host, scans = chain
    victim = EvidenceSetItem.objects.filter(evidence_set_id=scans[2].evidence_set_id, kind="container").first()
    Evidence.objects.filter(pk=victim.evidence_id).update(payload={"name": "forged"})
    client = as_user(auditor)
    body = client.post(f"/integrity/{host.pk}/verify/", follow=True).content.decode()
    # The payload is shared by every scan that saw it: the first scan holding it is named.
    first = min(s.pk for s in scans if EvidenceSetItem.objects.filter(
        evidence_set_id=s.evidence_set_id, evidence_id=victim.evidence_id).exists())
    assert "the evidence chain is broken" in body and f"scan #{first}: payload" in body
    listing = client.get("/integrity/").content.decode()
    assert 'class="state state-broken"' in listing and f"scan #{first}: payload" in listing


def test_it_marks_a_chain_unverified_again_when_a_scan_is_added(auditor, chain):
    host, _ = chain
    client = as_user(auditor)
    client.post(f"/integrity/{host.pk}/verify/")
    chained_scan(host, SNAPSHOT)
    assert "state-unverified" in client.get(f"/integrity/{host.pk}/").content.decode()


def test_it_lists_the_fleet_in_queries_that_do_not_grow_with_hosts(auditor, chain):
    client = as_user(auditor)
    client.post(f"/integrity/{chain[0].pk}/verify/")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/integrity/").status_code == 200
        return len(queries)

    few = count()
    for i in range(4):
        h = DockerHost.objects.create(name=f"more-{i}", url="unix:///x.sock")
        chained_scan(h, SNAPSHOT)
    assert count() == few


def test_it_refuses_to_verify_for_an_account_without_a_role(outsider, chain):
    response = as_user(outsider).post(f"/integrity/{chain[0].pk}/verify/")
    assert response.status_code == 403 and not AuditEvent.objects.exists()

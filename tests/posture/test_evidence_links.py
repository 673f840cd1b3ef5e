"""Scans name their evidence by its digest everywhere a person or a tool reads it (the API, the
scan page, ``scan --json``), never by the row id the database joins on."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from posture.management.commands.scan import scan_json
from posture.models import DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def scan():
    host = DockerHost.objects.create(name="linked", url="unix:///linked.sock")
    stored = stored_scan(host, SNAPSHOT)
    stored.refresh_from_db()
    return stored


def test_it_gives_the_manifest_digest_in_the_api(auditor, scan, django_assert_max_num_queries):
    client = APIClient()
    client.force_authenticate(auditor)
    digest = scan.evidence_set.digest
    assert len(digest) == 64 and str(scan.evidence_set_id) != digest
    assert client.get(f"/api/v1/scans/{scan.pk}/").json()["manifest_digest"] == digest
    for _ in range(5):
        stored_scan(scan.host, SNAPSHOT)
    with django_assert_max_num_queries(4):  # the digest comes with the scans, not one query each
        listed = client.get("/api/v1/scans/").json()["results"]
    assert {row["manifest_digest"] for row in listed} == {digest}
    queued = ScanRun.objects.create(host=scan.host)
    assert client.get(f"/api/v1/scans/{queued.pk}/").json()["manifest_digest"] is None


def test_it_shows_the_manifest_digest_on_the_scan_page(client, auditor, scan):
    client.force_login(auditor)
    page = client.get(f"/scans/{scan.pk}/").content.decode()
    assert f"Manifest <code>{scan.evidence_set.digest}</code>" in page


def test_it_prints_the_manifest_digest_in_scan_json(scan):
    assert scan_json(scan)["manifest_digest"] == scan.evidence_set.digest
    assert scan_json(ScanRun.objects.create(host=scan.host))["manifest_digest"] is None

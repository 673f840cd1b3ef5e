"""`manage.py purge_host`: the one way to delete a host's history, a deliberate, audited
second step after archiving; shared content-addressed evidence stays."""

from __future__ import annotations

import copy
import io

import pytest
from django.core.management import CommandError, call_command

from posture.jobs.evaluate import evaluate_scan
from posture.jobs.hosts import archive_host
from posture.jobs.ingest import load_snapshot
from posture.models import AuditEvent, DockerHost, Evidence, EvidenceSet, EvidenceSetItem, ResultSet, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_host", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def fleet():
    """Host "gone" with two scans (one shared with host "kept", one of its own), evaluated."""
    gone = DockerHost.objects.create(name="gone", url="unix:///gone.sock")
    kept = DockerHost.objects.create(name="kept", url="unix:///kept.sock")
    own = copy.deepcopy(SNAPSHOT)
    own["containers"][0]["name"] = "only-on-gone"
    first = stored_scan(gone, SNAPSHOT)
    second = stored_scan(gone, own, previous=first)
    shared = stored_scan(kept, SNAPSHOT)
    for scan in (first, second, shared):
        evaluate_scan(scan)
    return gone, kept, second, shared


def second_only_container(scan: ScanRun) -> str:
    return next(c["id"] for c in load_snapshot(scan)["containers"] if c["name"] == "only-on-gone")


def test_it_refuses_to_purge_a_host_that_is_not_archived(fleet):
    with pytest.raises(CommandError, match="^host 'gone' is not archived; archive it first, then purge$"):
        purge("gone", "--confirm")
    assert ScanRun.objects.filter(host__name="gone").count() == 2


def test_it_only_reports_without_confirm(fleet, admin):
    archive_host(fleet[0], actor=admin)
    assert "would delete host gone and its 2 scans" in purge("gone")
    assert ScanRun.objects.filter(host__name="gone").count() == 2


def test_it_purges_an_archived_host_keeping_what_other_scans_share(fleet, admin):
    gone, kept, second, shared = fleet
    archive_host(gone, actor=admin)
    own_set = second.evidence_set_id
    only_on_gone = EvidenceSetItem.objects.get(evidence_set_id=own_set, key=second_only_container(second)).evidence_id
    shared_snapshot = load_snapshot(shared)
    assert "purged host gone: 2 scans" in purge("gone", "--confirm")
    assert not DockerHost.objects.filter(name="gone").exists()
    assert not ScanRun.objects.filter(host_id=gone.pk).exists()
    assert not EvidenceSet.objects.filter(pk=own_set).exists()
    assert EvidenceSet.objects.filter(pk=shared.evidence_set_id).exists()
    assert all(ResultSet.objects.filter(pk=e.result_set_id).exists() for e in shared.evaluations.all())
    assert Evidence.objects.exists() and ScanRun.objects.filter(pk=shared.pk).exists()
    event = AuditEvent.objects.get(action="host.purged")
    assert event.target == "gone" and event.actor_label == "cli"
    assert event.detail["scans"] == 2 and event.detail["evidence_sets"] == 1 and event.detail["evidence"] >= 1
    assert AuditEvent.objects.filter(action="host.archived", target="gone").exists()  # the trail stays
    assert not Evidence.objects.filter(pk=only_on_gone).exists()  # the payload no other scan saw
    assert load_snapshot(shared) == shared_snapshot  # the shared payloads, whole


def test_it_says_which_host_is_unknown():
    with pytest.raises(CommandError, match="no host named 'nobody'"):
        purge("nobody")

"""The scan state machine: conditional claims, attempt fencing, one running scan per host."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from posture.choices import ScanState
from posture.jobs import scans
from posture.models import DockerHost, ScanRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock")


def test_it_claims_a_queued_scan_once(host):
    scan = ScanRun.objects.create(host=host)
    first = scans.claim(scan.pk, "w1")
    second = scans.claim(scan.pk, "w2")
    assert first.outcome is scans.Outcome.FINISHED and first.scan.state == ScanState.RUNNING
    assert first.scan.attempts == 1 and first.scan.worker == "w1"
    assert second.outcome is scans.Outcome.BUSY  # w1's lease is fresh


def test_it_takes_over_a_scan_whose_heartbeat_lapsed_and_fences_the_old_attempt(host, settings):
    scan = ScanRun.objects.create(host=host)
    old = scans.claim(scan.pk, "w1").scan
    ScanRun.objects.filter(pk=scan.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.POSTURE_SCAN_LEASE + 1))
    new = scans.claim(scan.pk, "w2")
    assert new.outcome is scans.Outcome.FINISHED and new.scan.attempts == 2
    # The zombie's final write matches no row: it can never finish the scan.
    assert scans._finish(old, ScanState.FAILED, error="late") is False
    assert scans._finish(new.scan, ScanState.FAILED, error="daemon gone") is True
    assert ScanRun.objects.get(pk=scan.pk).error == "daemon gone"


def test_it_does_nothing_for_a_finished_scan(host):
    scan = ScanRun.objects.create(host=host, state=ScanState.SUCCEEDED)
    assert scans.claim(scan.pk, "w1").outcome is scans.Outcome.ALREADY_DONE
    assert ScanRun.objects.get(pk=scan.pk).attempts == 0


def test_it_never_runs_two_scans_of_one_host_at_once(host):
    a = ScanRun.objects.create(host=host)
    b = ScanRun.objects.create(host=host)
    assert scans.claim(a.pk, "w1").outcome is scans.Outcome.FINISHED
    busy = scans.claim(b.pk, "w2")
    assert busy.outcome is scans.Outcome.BUSY and busy.retry_after > 0
    assert ScanRun.objects.get(pk=b.pk).state == ScanState.QUEUED


def test_it_reuses_the_active_scan_when_one_is_requested_twice(host):
    first, created = scans.request_scan(host)
    again, created_again = scans.request_scan(host)
    assert created and not created_again and again.pk == first.pk


def test_it_reports_a_missing_scan():
    assert scans.claim(999999, "w1").outcome is scans.Outcome.MISSING


def test_it_frees_a_host_whose_running_scan_was_abandoned(host, settings):
    """A `scan` interrupted with its worker gone must not block the host forever."""
    dead = ScanRun.objects.create(host=host)
    scans.claim(dead.pk, "killed-cli")
    ScanRun.objects.filter(pk=dead.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.POSTURE_SCAN_LEASE + 1))
    fresh = ScanRun.objects.create(host=host)
    result = scans.claim(fresh.pk, "cli")
    assert result.outcome is scans.Outcome.FINISHED and result.scan.pk == fresh.pk
    dead.refresh_from_db()
    assert dead.state == ScanState.ERRORED and "abandoned" in dead.error
    assert scans.claim(dead.pk, "redelivered").outcome is scans.Outcome.ALREADY_DONE


def test_it_keeps_waiting_for_a_live_scan_of_the_same_host(host):
    live = ScanRun.objects.create(host=host)
    scans.claim(live.pk, "w1")
    other = ScanRun.objects.create(host=host)
    assert scans.claim(other.pk, "w2").outcome is scans.Outcome.BUSY
    assert ScanRun.objects.get(pk=live.pk).state == ScanState.RUNNING

"""Beat's jobs: due hosts are enqueued once; lost scans are found again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from posture.choices import ScanState
from posture.jobs import schedule
from posture.models import DockerHost, ScanRun

pytestmark = pytest.mark.django_db


def test_it_enqueues_due_hosts_once_and_moves_their_next_scan():
    now = timezone.now()
    due = DockerHost.objects.create(name="due", url="unix:///a.sock", scan_interval_minutes=60)
    DockerHost.objects.create(name="later", url="unix:///b.sock", next_scan_at=now + timedelta(minutes=5))
    DockerHost.objects.create(name="off", url="unix:///c.sock", enabled=False)
    ids = schedule.enqueue_due_scans(now)
    assert [ScanRun.objects.get(pk=i).host.name for i in ids] == ["due"]
    due.refresh_from_db()
    assert due.next_scan_at == now + timedelta(minutes=60)
    assert schedule.enqueue_due_scans(now) == []  # second beat at the same instant: nothing


def test_it_does_not_stack_a_scan_on_a_host_that_already_has_one_queued():
    host = DockerHost.objects.create(name="busy", url="unix:///a.sock")
    ScanRun.objects.create(host=host)
    assert schedule.enqueue_due_scans() == []
    assert host.scans.count() == 1


def test_it_finds_running_scans_whose_worker_vanished(settings):
    host = DockerHost.objects.create(name="h", url="unix:///a.sock")
    now = timezone.now()
    stale = ScanRun.objects.create(host=host, state=ScanState.RUNNING,
                                   heartbeat_at=now - timedelta(seconds=settings.POSTURE_SCAN_LEASE + 5))
    other = DockerHost.objects.create(name="h2", url="unix:///b.sock")
    ScanRun.objects.create(host=other, state=ScanState.RUNNING, heartbeat_at=now)
    assert schedule.stale_scans(now) == [stale.pk]

"""Beat's jobs: due hosts are enqueued once; lost scans are found again; a scan asked for by\nhand (API, dashboard, CLI, start-up) moves the schedule, so beat does not queue a duplicate."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from posture.choices import ScanState, Trigger
from posture.jobs import scans, schedule
from posture.jobs.hosts import archive_host
from posture.models import AuditEvent, DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

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


# --- scheduling truths: a scan asked for by hand moves the schedule ---------------------------


def _finish_all(host: DockerHost) -> None:
    """As if a worker had run the host's queued scans to the end (seconds, not an interval)."""
    now = timezone.now()
    host.scans.filter(state=ScanState.QUEUED).update(state=ScanState.SUCCEEDED, started_at=now, finished_at=now)


def _via_api(host, operator) -> None:
    client = APIClient()
    client.force_authenticate(operator)
    assert client.post("/api/v1/scans/", {"host": host.name}, format="json").status_code == 201


def _via_dashboard(host, operator) -> None:  # what a "Scan now" button calls
    scans.queue_scan(host, Trigger.MANUAL, operator)


def _via_bootstrap(host, operator) -> None:
    call_command("bootstrap", stdout=StringIO())


@pytest.mark.parametrize("ask", [_via_api, _via_dashboard, _via_bootstrap], ids=["api", "dashboard", "bootstrap"])
def test_it_does_not_queue_a_scheduled_scan_right_after_one_asked_for(ask, operator, django_capture_on_commit_callbacks):
    host = DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock", scan_interval_minutes=60)
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=False) as sent:
        ask(host, operator)
    assert len(sent) == 1 and host.scans.count() == 1
    host.refresh_from_db()
    assert before + timedelta(minutes=60) <= host.next_scan_at <= timezone.now() + timedelta(minutes=60)
    _finish_all(host)  # the asked-for scan is over before beat's next tick
    assert schedule.enqueue_due_scans() == []
    assert schedule.enqueue_due_scans(timezone.now() + timedelta(minutes=59)) == []
    assert len(schedule.enqueue_due_scans(timezone.now() + timedelta(minutes=61))) == 1  # then the schedule resumes


def test_it_moves_a_due_schedule_when_a_scan_is_asked_for(operator):
    host = DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock", scan_interval_minutes=30,
                                     next_scan_at=timezone.now() - timedelta(minutes=5))
    scans.queue_scan(host, Trigger.API, operator)
    _finish_all(host)
    assert schedule.enqueue_due_scans() == []
    assert host.scans.count() == 1


def test_it_queues_one_scan_sends_one_task_and_audits_who_asked(operator, django_capture_on_commit_callbacks):
    host = DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock")
    with django_capture_on_commit_callbacks(execute=False) as sent:
        first, created = scans.queue_scan(host, Trigger.MANUAL, operator)
        again, created_again = scans.queue_scan(host, Trigger.API, operator)
    assert created and not created_again and again.pk == first.pk and len(sent) == 1
    event = AuditEvent.objects.get(action="scan.requested")
    assert (event.actor, event.actor_label, event.target) == (operator, "olive", "h1")
    assert event.detail == {"scan": first.pk, "trigger": "manual"}


def test_it_refuses_to_queue_a_scan_of_an_archived_host(operator):
    host = DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock")
    archive_host(host, actor_label="test")
    with pytest.raises(scans.ScanRefused, match="archived"):
        scans.queue_scan(host, Trigger.API, operator)
    assert not ScanRun.objects.exists() and not AuditEvent.objects.filter(action="scan.requested").exists()


@pytest.mark.django_db(transaction=True)  # the scan runs in this process, its heartbeat on another connection
def test_it_does_not_queue_a_scheduled_scan_right_after_a_cli_scan():
    host = DockerHost.objects.create(name="h1", url="unix:///nonexistent.sock", probe_enabled=False)
    with pytest.raises(SystemExit):  # the socket does not answer: the scan fails, but it happened
        call_command("scan", "h1", stdout=StringIO(), stderr=StringIO())
    host.refresh_from_db()
    assert host.scans.get().trigger == Trigger.CLI and host.next_scan_at > timezone.now()
    assert schedule.enqueue_due_scans() == []
    assert AuditEvent.objects.get(action="scan.requested").actor_label == "cli"


def test_it_does_not_rescan_hosts_with_a_history_at_start_up():
    scanned = DockerHost.objects.create(name="scanned", url="unix:///a.sock")
    stored_scan(scanned, SNAPSHOT)
    due = DockerHost.objects.create(name="due", url="unix:///b.sock", next_scan_at=timezone.now() - timedelta(hours=1))
    stored_scan(due, SNAPSHOT)
    call_command("bootstrap", stdout=StringIO())
    assert ScanRun.objects.count() == 2  # the due one is beat's to queue, on its schedule
    assert not AuditEvent.objects.filter(action="scan.requested").exists()

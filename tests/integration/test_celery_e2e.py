"""End to end with a real Celery worker (and beat) on Redis and PostgreSQL, and a real dockerd."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from posture.choices import ScanState, Trigger
from posture.jobs.tokens import create_token
from posture.models import DockerHost, EvidenceSet, ScanRun
from tests.support.services import wait_until
from tests.support.slowproxy import SlowProxy

pytestmark = [pytest.mark.docker, pytest.mark.redis]



def test_it_collects_a_scan_queued_through_the_api(start_celery, dockerd, make_container):
    make_container("api-e2e")
    worker = start_celery("worker", "--concurrency", "1", "--loglevel", "INFO")
    worker.wait_for("ready", timeout=60)
    admin = User.objects.create_superuser("admin", "", "pw-not-used")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_token(admin, 'e2e').token}")
    assert client.post("/api/v1/hosts/", {"name": "d1", "url": dockerd.url}, format="json").status_code == 201
    response = client.post("/api/v1/scans/", {"host": "d1"}, format="json")
    assert response.status_code == 201, response.content
    scan_id = response.json()["id"]
    scan = wait_until(
        lambda: ScanRun.objects.filter(pk=scan_id, state__in=[ScanState.SUCCEEDED, ScanState.FAILED, ScanState.ERRORED]).first(),
        60, "the worker to finish the scan", [worker],
    )
    assert scan.state == ScanState.SUCCEEDED, scan.error
    assert scan.trigger == Trigger.API and scan.counts["containers"] >= 1 and scan.evidence_set_id
    assert client.get(f"/api/v1/scans/{scan_id}/").json()["state"] == "succeeded"


def test_it_scans_due_hosts_from_beat(start_celery, dockerd):
    host = DockerHost.objects.create(name="scheduled", url=dockerd.url, scan_interval_minutes=60)
    worker = start_celery("worker", "--concurrency", "1")
    beat = start_celery("beat", "--loglevel", "INFO")
    scan = wait_until(
        lambda: ScanRun.objects.filter(host=host, state=ScanState.SUCCEEDED).first(), 60,
        "beat to enqueue and the worker to run a scheduled scan", [worker, beat],
    )
    assert scan.trigger == Trigger.SCHEDULE
    host.refresh_from_db()
    assert host.next_scan_at is not None
    time.sleep(2.5)  # a few more beats: the host is not due again, nothing more is queued
    assert ScanRun.objects.filter(host=host).count() == 1


def test_it_does_not_queue_a_scheduled_scan_seconds_after_an_api_scan(start_celery, dockerd):
    """Seen: scan #1 manual at 17:55:12, #2 scheduled at 17:55:46. Beat starts only after the
    API scan has ended, the worst case: a host that was never scheduled looks due."""
    host = DockerHost.objects.create(name="asked", url=dockerd.url, scan_interval_minutes=60)
    worker = start_celery("worker", "--concurrency", "1")
    worker.wait_for("ready", timeout=60)
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("admin", "", "pw-not-used"))
    assert client.post("/api/v1/scans/", {"host": "asked"}, format="json").status_code == 201
    wait_until(lambda: ScanRun.objects.filter(host=host, state=ScanState.SUCCEEDED).first(), 60,
               "the worker to run the API scan", [worker])
    beat = start_celery("beat", "--loglevel", "INFO")
    beat.wait_for("Sending due task enqueue-due-scans", timeout=30)
    time.sleep(2.5)  # a few more beats (POSTURE_BEAT_SECONDS=1 in tests)
    assert ScanRun.objects.filter(host=host).count() == 1, beat.log()[-2000:]


def test_it_finishes_a_scan_exactly_once_when_the_worker_is_killed_mid_scan(start_celery, dockerd, make_container, tmp_path):
    for i in range(4):
        make_container(f"slow-{i}")
    proxy = SlowProxy(dockerd.url.removeprefix("unix://"), str(tmp_path / "slow.sock"), delay=0.6)
    try:
        host = DockerHost.objects.create(name="slow", url=proxy.url)
        first = start_celery("worker", "--concurrency", "1", "-n", "first@%h")
        first.wait_for("ready", timeout=60)
        scan = ScanRun.objects.create(host=host, trigger=Trigger.API)
        from posture.tasks import run_scan

        run_scan.delay(scan.pk)
        wait_until(lambda: ScanRun.objects.filter(pk=scan.pk, state=ScanState.RUNNING).exists(), 30,
                   "the first worker to claim the scan", [first])
        time.sleep(1.0)  # well inside the scan: the proxy makes every Docker call take 0.6 s
        first.kill()
        assert ScanRun.objects.get(pk=scan.pk).state == ScanState.RUNNING  # left behind by the dead worker

        second = start_celery("worker", "--concurrency", "1", "-n", "second@%h")
        done = wait_until(
            lambda: ScanRun.objects.filter(pk=scan.pk).exclude(state__in=[ScanState.QUEUED, ScanState.RUNNING]).first(),
            90, "the redelivered scan to finish on the second worker", [first, second],
        )
        time.sleep(3)  # any duplicate delivery would show up now
    finally:
        proxy.close()
    done.refresh_from_db()
    assert done.state == ScanState.SUCCEEDED, done.error
    assert done.attempts == 2 and done.worker.startswith("second@")
    assert ScanRun.objects.filter(host=host).count() == 1
    assert EvidenceSet.objects.count() == 1
    assert done.counts["containers"] == 4

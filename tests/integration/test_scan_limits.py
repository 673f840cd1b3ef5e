"""A scan's time limit holds whatever the Docker host does, in the CLI and in a real worker.

The hostile host is tests.support.fake_docker: it answers ``/_ping`` like Docker, then sends
``/info`` one byte per second, so no read ever idles long enough for a read timeout. Before
the fix the CLI sat at "reading docker info" until killed and a worker scan outlived its
Celery limits. Bounds here are generous: they prove that a deadline holds, not how fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posture.choices import ScanState, Trigger
from posture.models import DockerHost, ScanRun
from tests.support.fake_docker import FakeDocker, Trickle
from tests.support.services import database_url_of_test_db, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCAN_TIMEOUT = 10  # the smallest POSTURE_SCAN_TIMEOUT the settings accept
FINISHED = [ScanState.SUCCEEDED, ScanState.FAILED, ScanState.ERRORED]



@pytest.mark.parametrize("tcp", [False, True], ids=["unix", "tcp"])
def test_it_ends_a_cli_scan_of_a_trickling_host_at_its_time_limit(transactional_db, tcp):
    with FakeDocker({"/info": Trickle(interval=1.0)}, tcp=tcp) as fake:
        DockerHost.objects.create(name="trickle", url=fake.url)
        env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), "POSTURE_SCAN_TIMEOUT": str(SCAN_TIMEOUT),
               "POSTURE_DOCKER_TIMEOUT": "30"}
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "manage.py", "scan", "trickle"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=SCAN_TIMEOUT + 60)
        elapsed = time.monotonic() - t0
    assert done.returncode == 1, done.stderr
    assert elapsed < SCAN_TIMEOUT + 15, f"the scan took {elapsed:.0f}s"
    assert "time limit" in done.stderr and "while reading docker info" in done.stderr, done.stderr
    scan = ScanRun.objects.get(host__name="trickle")
    assert scan.state == ScanState.FAILED and "time limit" in scan.error and scan.finished_at
    assert (scan.finished_at - scan.started_at).total_seconds() < SCAN_TIMEOUT + 10


@pytest.mark.docker
@pytest.mark.redis
def test_it_fails_a_trickling_host_in_a_worker_without_holding_up_another_host(start_celery, dockerd):
    with FakeDocker({"/info": Trickle(interval=1.0)}) as fake:
        bad = DockerHost.objects.create(name="trickle", url=fake.url)
        good = DockerHost.objects.create(name="good", url=dockerd.url)
        worker = start_celery("worker", "--concurrency", "2", env={"POSTURE_SCAN_TIMEOUT": str(SCAN_TIMEOUT)})
        worker.wait_for("ready", timeout=60)
        from posture.tasks import run_scan

        bad_scan = ScanRun.objects.create(host=bad, trigger=Trigger.API)
        run_scan.delay(bad_scan.pk)
        wait_until(lambda: fake.requests.count("/info"), 30, "the worker to start reading /info", [worker])
        good_scan = ScanRun.objects.create(host=good, trigger=Trigger.API)
        run_scan.delay(good_scan.pk)
        good_scan = wait_until(lambda: ScanRun.objects.filter(pk=good_scan.pk, state__in=FINISHED).first(),
                               60, "the good host's scan", [worker])
        bad_scan = wait_until(lambda: ScanRun.objects.filter(pk=bad_scan.pk, state__in=FINISHED).first(),
                              SCAN_TIMEOUT + 60, "the trickling host's scan to end", [worker])
    assert good_scan.state == ScanState.SUCCEEDED, good_scan.error
    assert good_scan.finished_at < bad_scan.finished_at  # it did not wait behind the bad host
    assert bad_scan.state == ScanState.FAILED
    assert "time limit" in bad_scan.error and "while reading docker info" in bad_scan.error, bad_scan.error
    assert (bad_scan.finished_at - bad_scan.started_at).total_seconds() < SCAN_TIMEOUT + 10
    assert bad_scan.attempts == 1

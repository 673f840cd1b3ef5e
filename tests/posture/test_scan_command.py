"""``manage.py scan``: a peer's garbage fails the scan, posture's bugs error it, and a scan
that cannot run because the host is already being scanned is not recorded as anything.

The Docker host is :class:`~tests.support.fake_docker.FakeDocker` (a real HTTP endpoint on
a unix socket), so each answer is chosen by the test; storage is the real PostgreSQL.
"""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection

from posture.choices import ScanState, Trigger
from posture.management.commands.scan import EXIT_BUSY
from posture.models import DockerHost, ScanRun
from tests.support.commands import run_command as run
from tests.support.fake_docker import Answer, FakeDocker

pytestmark = pytest.mark.django_db(transaction=True)

CID = "c" * 64
CONTAINER = {"Id": CID, "Name": "/web", "Config": {"Env": ["A=1"]}, "HostConfig": {}, "State": {"Running": True}}



def host_for(fake: FakeDocker, name: str = "fake") -> DockerHost:
    return DockerHost.objects.create(name=name, url=fake.url, probe_enabled=False)


@pytest.mark.parametrize(
    "routes,reason",
    [
        ({"/info": Answer.json(["not", "an", "object"])},
         "the daemon answered /info with malformed data: expected an object, got a list"),
        ({"/info": Answer.json({"Containers": "x"})},
         "the daemon answered /info with malformed data: Containers: expected an integer, got a string"),
        ({"/containers/json": Answer.json({"Id": CID})},
         "the daemon answered /containers/json with malformed data: expected a list, got an object"),
        ({"/containers/json": Answer.json([{"Id": CID}]), "/containers/*/json": Answer.json({**CONTAINER, "State": 1})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: State: expected an object, got an integer"),
        ({"/version": Answer.raw(b"\xff\xfe not json")}, "the daemon answered /version with malformed data: not valid JSON"),
    ],
)
def test_it_fails_a_scan_whose_daemon_answers_malformed_data(routes, reason):
    with FakeDocker(routes) as fake:
        host_for(fake)
        code, out, err = run("scan", "fake")
    scan = ScanRun.objects.get()
    assert code == 1
    assert scan.state == ScanState.FAILED and scan.error == reason
    assert scan.started_at is not None and scan.finished_at is not None and scan.evidence_set_id is None
    assert err.strip() == f"scan #{scan.pk} of fake failed: {reason}"
    assert "Traceback" not in out + err


def test_it_still_errors_a_scan_when_posture_itself_breaks(monkeypatch):
    """The shape check must not hide our own bugs: one in processing a valid answer errors."""

    def broken(inspect):
        raise TypeError("a bug in posture")

    monkeypatch.setattr("scanners.collectors.containers.container_evidence", broken)
    routes = {"/containers/json": Answer.json([{"Id": CID}]), "/containers/*/json": Answer.json(CONTAINER)}
    with FakeDocker(routes) as fake:
        host_for(fake)
        code, _, err = run("scan", "fake")
    scan = ScanRun.objects.get()
    assert code == 1 and scan.state == ScanState.ERRORED
    assert scan.error == "internal error: TypeError: a bug in posture"


def test_it_scans_the_fake_host_when_its_answers_are_valid():
    routes = {"/containers/json": Answer.json([{"Id": CID}]), "/containers/*/json": Answer.json(CONTAINER)}
    with FakeDocker(routes) as fake:
        host_for(fake)
        code, out, err = run("scan", "fake")
    assert code == 0, err
    assert ScanRun.objects.get().state == ScanState.SUCCEEDED and "1 containers (1 running)" in out


def _scan_in_thread(results: list) -> threading.Thread:
    def target() -> None:
        try:
            results.append(run("scan", "fake"))
        finally:
            connection.close()

    thread = threading.Thread(target=target, name="first-scan")
    thread.start()
    return thread


def _wait_for_running(timeout: float = 30.0) -> ScanRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = ScanRun.objects.filter(state=ScanState.RUNNING).first()
        if running is not None:
            return running
        time.sleep(0.05)
    raise AssertionError("the first scan never started running")


def test_it_refuses_a_second_cli_scan_of_a_host_being_scanned_and_records_nothing():
    # /info takes 3 s: the first `scan` holds the host's running slot meanwhile.
    with FakeDocker({"/info": Answer.json({"Containers": 0}, delay=3)}) as fake:
        host_for(fake)
        first: list = []
        thread = _scan_in_thread(first)
        try:
            running = _wait_for_running()
            code, out, err = run("scan", "fake")
        finally:
            thread.join(timeout=60)
    assert code == EXIT_BUSY and out == ""
    assert err.strip() == f"host fake is already being scanned (scan #{running.pk}); try again when it has finished"
    # Only the first scan exists, and it ran to success: the refused one left no row at all.
    assert list(ScanRun.objects.values_list("pk", "state")) == [(running.pk, ScanState.SUCCEEDED)]
    assert first and first[0][0] == 0


def test_it_runs_the_scan_already_queued_for_the_host_instead_of_queuing_another():
    with FakeDocker() as fake:
        host = host_for(fake)
        queued = ScanRun.objects.create(host=host, trigger=Trigger.API)
        code, out, err = run("scan", "fake")
    assert code == 0, err
    assert list(ScanRun.objects.values_list("pk", "state")) == [(queued.pk, ScanState.SUCCEEDED)]
    assert out.startswith(f"scan #{queued.pk} of fake succeeded")


def test_it_refuses_to_scan_an_archived_host_and_records_nothing():
    from django.core.management.base import CommandError

    from posture.jobs.hosts import archive_host

    host = DockerHost.objects.create(name="old", url="unix:///nonexistent.sock", probe_enabled=False)
    archive_host(host, actor_label="test")
    with pytest.raises(CommandError, match="archived"):
        call_command("scan", "old", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no host named"):
        call_command("scan", "bad\x00name", stdout=io.StringIO(), stderr=io.StringIO())
    assert not ScanRun.objects.filter(host=host).exists()

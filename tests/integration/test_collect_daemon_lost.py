"""A daemon that dies in the middle of a scan gives DaemonLost, not a half snapshot.

Uses its own PrivateDaemon (the shared one must survive). It is SIGKILLed from the
progress callback at the moment container inspection starts, so the kill lands mid-scan
deterministically. Containers are only created, never started: no shim outlives the kill.
"""

from __future__ import annotations

import contextlib

import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.errors import DaemonLost, HostUnreachable
from tests.support.docker_fixtures import ContainerFactory, require_docker
from tests.support.dockerd import PrivateDaemon, make_base_image

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def doomed_daemon():
    require_docker()
    daemon = PrivateDaemon()
    try:
        daemon.start()
        with contextlib.closing(daemon.client()) as client:
            make_base_image(client)
            make = ContainerFactory(client)
            for i in range(12):
                make(f"h1-lost-{i:02d}", start=False, command=["true"])
        yield daemon
    finally:
        daemon.stop()


def test_it_reports_daemon_lost_when_dockerd_dies_mid_scan(doomed_daemon):
    seen: list[str] = []

    def progress(msg: str) -> None:
        seen.append(msg)
        if msg.startswith("inspecting containers 0/"):
            doomed_daemon.kill()

    with open_client(HostConfig(url=doomed_daemon.url, timeout=10)) as client:
        with pytest.raises(DaemonLost) as err:
            collect(client, progress=progress)
    assert "inspecting containers 0/12" in seen
    assert "during the scan" in str(err.value) and "\n" not in str(err.value)


def test_a_dead_daemon_is_unreachable_before_the_scan(doomed_daemon):
    doomed_daemon.kill()
    with pytest.raises(HostUnreachable, match="connection refused"):
        with open_client(HostConfig(url=doomed_daemon.url, timeout=5)):
            pass

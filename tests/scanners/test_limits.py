"""Peer I/O is bounded whatever a Docker host sends: time per call and per scan, bytes per answer.

The hostile hosts are tests.support.fake_docker endpoints on unix sockets and 127.0.0.1
(tcp, tcp+TLS, and ssh through tests.support.ssh_gateway). Bounds are generous: they prove
a limit holds, not how fast it is.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.collectors.probe import Prober
from scanners.errors import ResponseTooLarge, ScanError, ScanTimeout
from scanners.limits import api_call, read_multiplexed
from tests.support.certs import make_bundle
from tests.support.fake_docker import Answer, FakeDocker, Huge, Trickle, frame
from tests.support.scan_once import scan_once
from tests.support.ssh_gateway import SSHGateway

MB = 1024 * 1024


@pytest.fixture(scope="module")
def bundle():
    return make_bundle()


def _collect(cfg: HostConfig, scan_seconds: float) -> float:
    """Run a scan against cfg with a deadline; return how long it took before it raised."""
    t0 = time.monotonic()
    deadline = t0 + scan_seconds
    with open_client(cfg, deadline=deadline) as client:
        collect(client, deadline=deadline)
    return time.monotonic() - t0


@pytest.mark.parametrize("transport", ["unix", "tcp", "tls"])
def test_it_ends_a_trickled_answer_at_the_scan_deadline(transport, bundle):
    fake = FakeDocker({"/info": Trickle(interval=0.5)}, tcp=transport == "tcp",
                      tls=bundle if transport == "tls" else None)
    with fake:
        t0 = time.monotonic()
        with pytest.raises(ScanTimeout, match="scan time limit reached while reading docker info"):
            _collect(fake.host_config(timeout=30), scan_seconds=2)
        assert time.monotonic() - t0 < 8
        assert fake.requests.count("/info") == 1


def test_it_ends_a_trickled_answer_over_ssh(tmp_path, monkeypatch):
    with FakeDocker({"/info": Trickle(interval=0.5)}) as fake, SSHGateway(fake.path) as gateway:
        gateway.write_client_files(tmp_path / ".ssh")
        monkeypatch.setenv("HOME", str(tmp_path))
        t0 = time.monotonic()
        with pytest.raises(ScanTimeout, match="time limit .* while reading docker info"):
            _collect(HostConfig(url=gateway.url, timeout=30), scan_seconds=3)
        assert time.monotonic() - t0 < 10


def test_it_ends_trickled_headers_at_the_per_call_limit():
    with FakeDocker({"/info": Trickle(interval=0.2, headers_too=True)}, tcp=True) as fake:
        t0 = time.monotonic()
        with pytest.raises(ScanTimeout, match="time limit of 2s per Docker API call reached while reading docker info"):
            _collect(fake.host_config(timeout=2), scan_seconds=60)
        assert time.monotonic() - t0 < 7


def test_it_bounds_the_ping_by_the_scan_deadline():
    with FakeDocker({"/_ping": Trickle(interval=0.3, body=b"O" * 1000)}) as fake:
        t0 = time.monotonic()
        with pytest.raises(ScanTimeout, match="while pinging the Docker API"):
            with open_client(fake.host_config(timeout=30), deadline=time.monotonic() + 2):
                pass
        assert time.monotonic() - t0 < 7


def test_it_still_scans_a_healthy_fake_host():
    with FakeDocker() as fake:
        with open_client(fake.host_config()) as client:
            snap = collect(client, deadline=time.monotonic() + 30)
    assert snap["daemon"]["info"]["Name"] == "fake-docker" and snap["containers"] == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_it_refuses_a_huge_ping_without_reading_it(chunked):
    with FakeDocker({"/_ping": Huge(400, chunked=chunked)}) as fake:
        report = scan_once(fake.url)
    assert report["error_type"] == "ResponseTooLarge", report
    assert "pinging the Docker API" in report["error"] and "64 KiB" in report["error"], report
    assert report["growth_kb"] < 100 * 1024, report


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_it_refuses_a_huge_info_with_bounded_memory(chunked):
    with FakeDocker({"/info": Huge(400, chunked=chunked)}, tcp=True) as fake:
        report = scan_once(fake.url)
    assert report["error_type"] == "ResponseTooLarge", report
    assert "reading docker info" in report["error"] and "16 MiB" in report["error"], report
    assert report["growth_kb"] < 100 * 1024, report


def test_it_applies_a_configured_size_limit_to_every_call():
    with FakeDocker({"/containers/json": Huge(2, chunked=True)}) as fake:
        cfg = fake.host_config(max_response_bytes=1 * MB)
        with pytest.raises(ResponseTooLarge, match="while listing containers exceeded the limit of 1 MiB"):
            _collect(cfg, scan_seconds=30)


def test_it_never_follows_a_redirect():
    moved = Answer(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
    with FakeDocker({"/info": moved}) as fake:
        with pytest.raises(ScanError, match="redirect .*while reading docker info"):
            _collect(fake.host_config(), scan_seconds=30)
        assert fake.requests == ["/_ping", "/info"]


def test_it_asks_for_uncompressed_answers():
    """A compressed answer could expand past the cap: we never ask for one, never decode one."""
    with FakeDocker() as fake:
        with open_client(fake.host_config()) as client:
            assert client.api.headers["Accept-Encoding"] == "identity"


# --------------------------------------------------------------------------- probe exec output


def _exec_routes(start) -> dict:
    return {
        "/containers/probe/exec": Answer(201, {"Id": "e1"}),
        "/exec/e1/start": start,
        "/exec/e1/json": Answer(200, {"ExitCode": 0}),
    }


def test_it_reads_probe_exec_output_through_the_bounded_reader():
    out = frame(1, b"hello ") + frame(2, b"warn") + frame(1, b"world")
    with FakeDocker(_exec_routes(Trickle(interval=0.0, body=out, upgrade=True))) as fake:
        with open_client(fake.host_config()) as client:
            prober = Prober(client.api, "probe", time.monotonic() + 30)
            assert prober.execute(["true"], "reading host files") == (0, b"hello world", b"warn")


def test_it_ends_trickled_probe_output_at_the_deadline():
    slow = Trickle(interval=0.3, body=frame(1, b"x" * 5000), upgrade=True)
    with FakeDocker(_exec_routes(slow)) as fake:
        with open_client(fake.host_config(timeout=30)) as client:
            t0 = time.monotonic()
            prober = Prober(client.api, "probe", time.monotonic() + 2)
            with pytest.raises(ScanTimeout, match="time limit reached while reading host files"):
                prober.execute(["true"], "reading host files")
            assert time.monotonic() - t0 < 7


def test_it_caps_huge_probe_output():
    with FakeDocker(_exec_routes(Huge(64, upgrade=True))) as fake:
        with open_client(fake.host_config(max_response_bytes=4 * MB)) as client:
            prober = Prober(client.api, "probe", time.monotonic() + 30)
            with pytest.raises(ResponseTooLarge, match="while reading host files exceeded the limit of 4 MiB"):
                prober.execute(["true"], "reading host files")


def test_it_parses_frames_only_after_the_stream_ends():
    a, b = socket.socketpair()
    forged = bytes([1, 0, 0, 0]) + (2**32 - 1).to_bytes(4, "big") + b"short"
    threading.Thread(target=lambda: (a.sendall(frame(2, b"err") + forged), a.close()), daemon=True).start()
    with api_call("reading a stream"):
        assert read_multiplexed(b, max_bytes=MB, doing="reading a stream") == (b"short", b"err")
    b.close()

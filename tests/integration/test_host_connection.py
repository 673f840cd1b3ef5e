"""The host form's "Test connection" against real daemons: a private dockerd on a unix socket
and one on tcp+TLS (files uploaded as a person would), an unreachable address, a peer that
never answers (the short deadline holds), and never anything saved."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import docker
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from posture.jobs.connection import check_connection
from posture.models import AuditEvent, DockerHost, ScanRun
from scanners.client import HostConfig
from tests.posture.conftest import member

pytestmark = [pytest.mark.docker, pytest.mark.django_db]
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def operator_client(client):
    client.force_login(member("olive", "operator"))
    return client


def form(url: str, **extra) -> dict:
    return {"name": "new-1", "url": url, "scan_interval_minutes": "60", "enabled": "on", "action": "test", **extra}


def nothing_saved() -> bool:
    return not DockerHost.objects.exists() and not ScanRun.objects.exists() and not AuditEvent.objects.exists()


def daemon_version(url: str) -> dict:
    with contextlib.closing(docker.DockerClient(base_url=url, version="auto")) as client:
        return client.version()


def test_it_reports_ping_api_and_server_version_of_a_real_daemon_without_saving(operator_client, dockerd):
    response = operator_client.post("/hosts/new/", form(dockerd.url), **JSON)
    report = response.json()["report"]
    assert response.status_code == 200 and report["ok"] is True, report
    version = daemon_version(dockerd.url)
    assert report["server_version"] == version["Version"] and report["server_api_version"] == version["ApiVersion"]
    assert report["api_version"] and report["os"] and report["containers"] is not None
    assert nothing_saved()


def test_it_reports_on_the_page_without_javascript_and_keeps_the_typed_values(operator_client, dockerd):
    response = operator_client.post("/hosts/new/", form(dockerd.url))
    body = response.content.decode()
    assert response.status_code == 200 and "state-pass\">connected</span>" in body
    assert daemon_version(dockerd.url)["Version"] in body
    assert f'value="{dockerd.url}"' in body and 'value="new-1"' in body  # the form is still filled in
    assert nothing_saved()


def test_it_tests_tls_files_that_are_uploaded_but_not_saved(operator_client, dockerd_tls):
    bundle = dockerd_tls.bundle
    files = {name: SimpleUploadedFile(f"{name}.pem", pem.encode()) for name, pem in (
        ("tls_ca_file", bundle.ca.cert_pem), ("tls_cert_file", bundle.client.cert_pem),
        ("tls_key_file", bundle.client.key_pem))}
    response = operator_client.post("/hosts/new/", {**form(dockerd_tls.url), **files}, **JSON)
    report = response.json()["report"]
    assert report["ok"] is True and report["server_version"], report
    assert nothing_saved()


def test_it_uses_the_stored_tls_material_when_an_edit_leaves_it_empty(operator_client, dockerd_tls):
    bundle = dockerd_tls.bundle
    host = DockerHost.objects.create(name="tls-1", url="tcp://127.0.0.1:1", tls_ca=bundle.ca.cert_pem,
                                     tls_cert=bundle.client.cert_pem, tls_key=bundle.client.key_pem)
    response = operator_client.post(f"/hosts/{host.pk}/edit/", form(dockerd_tls.url, name="tls-1"), **JSON)
    assert response.json()["report"]["ok"] is True
    host.refresh_from_db()
    assert host.url == "tcp://127.0.0.1:1" and not AuditEvent.objects.exists()  # tested, not saved


def test_it_classifies_a_tls_daemon_reached_without_certificates(operator_client, dockerd_tls):
    report = operator_client.post("/hosts/new/", form(dockerd_tls.url), **JSON).json()["report"]
    assert report["ok"] is False and report["error_kind"] == "tls", report
    assert nothing_saved()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:{port}"])
def test_it_reports_an_unreachable_daemon_with_its_reason(operator_client, url):
    url = url.format(port=free_port())
    report = operator_client.post("/hosts/new/", form(url), **JSON).json()["report"]
    assert report["ok"] is False and report["error_kind"] == "unreachable", report
    assert report["error"] and report["hint"]
    assert nothing_saved()


def test_it_ends_within_its_deadline_when_the_peer_never_answers(settings):
    """A listener that accepts and never says a word: the test gives up at its limit."""
    settings.POSTURE_DOCKER_TIMEOUT = 2
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        report = check_connection(HostConfig(url=f"tcp://127.0.0.1:{server.getsockname()[1]}"))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()
    assert report.ok is False and report.error_kind == "timeout", report
    assert elapsed < 10  # POSTURE_DOCKER_TIMEOUT=2 caps the test; generous bound


def test_the_api_tests_a_saved_hosts_connection_and_writes_nothing(dockerd):
    """``POST /api/v1/hosts/{id or name}/test/``: the same report for a saved host, operators
    and admins only; a host that does not answer is a 200 saying why, not an error."""
    from rest_framework.test import APIClient

    live = DockerHost.objects.create(name="live", url=dockerd.url)
    dead = DockerHost.objects.create(name="dead", url="unix:///nonexistent/docker.sock")
    api = APIClient()
    api.force_authenticate(member("olive", "operator"))
    report = api.post("/api/v1/hosts/live/test/").json()
    assert report["ok"] is True and report["server_version"] == daemon_version(dockerd.url)["Version"]
    failed = api.post(f"/api/v1/hosts/{dead.pk}/test/")
    assert failed.status_code == 200 and failed.json()["ok"] is False
    assert failed.json()["error_kind"] == "unreachable" and failed.json()["hint"]
    assert not ScanRun.objects.exists() and not AuditEvent.objects.exists() and live.pk
    api.force_authenticate(member("audrey", "auditor"))
    refused = api.post("/api/v1/hosts/live/test/")
    assert refused.status_code == 403 and "operator" in refused.json()["error"]["message"]

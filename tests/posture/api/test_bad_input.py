"""Hostile or malformed API input gets a 400 (never a 500) with a clear message, and
nothing is saved when it fails. Each test reproduces an input that used to give a 500."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from posture.choices import ScanState
from posture.models import AuditEvent, ControlException, DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, api_error, stored_scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(operator) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def scan() -> ScanRun:
    return stored_scan(DockerHost.objects.create(name="h1", url="unix:///var/run/docker.sock"), SNAPSHOT)


@pytest.mark.parametrize("page", ["results", "controls"])
@pytest.mark.parametrize("at", ["2026-02-30T10:00:00Z", "2026-13-45T00:00:00Z", "2026-01-01T25:61:00Z",
                                "2026-01-01T00:00:00+25:00", "0000-01-01T00:00:00Z", "\x00", "now"])
def test_it_refuses_an_impossible_date_in_at(client, scan, page, at):
    response = client.get(f"/api/v1/scans/{scan.pk}/{page}/", {"at": at})
    assert response.status_code == 400
    assert "not a valid ISO 8601 date-time" in api_error(response)["fields"]["at"][0]


@pytest.mark.parametrize("page", ["results", "controls"])
@pytest.mark.parametrize("at", ["2026-01-01T10:00:00", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
                                "2026-02-28"])
def test_it_answers_extreme_or_naive_dates_in_at(client, scan, page, at):
    assert client.get(f"/api/v1/scans/{scan.pk}/{page}/", {"at": at}).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/scans/{pk}/controls/", "/api/v1/controls/"])
@pytest.mark.parametrize("framework", ["\x00", "cis\x00docker", "x" * 300])
def test_it_refuses_a_malformed_framework_slug(client, scan, path, framework):
    response = client.get(path.format(pk=scan.pk), {"framework": framework})
    assert response.status_code == 400
    assert "not a framework slug" in api_error(response)["fields"]["framework"][0]


def test_it_still_says_404_for_an_unknown_framework(client, scan):
    assert client.get(f"/api/v1/scans/{scan.pk}/controls/", {"framework": "nist-800-53"}).status_code == 404


@pytest.mark.parametrize("path, param", [
    ("/api/v1/scans/", "host"), ("/api/v1/scans/", "state"), ("/api/v1/scans/", "trigger"),
    ("/api/v1/hosts/", "enabled"), ("/api/v1/hosts/", "archived"), ("/api/v1/hosts/", "name"),
    ("/api/v1/hosts/", "name_contains"), ("/api/v1/controls/", "framework__slug"),
    ("/api/v1/exceptions/", "check"), ("/api/v1/exceptions/", "host"), ("/api/v1/attestations/", "host"),
])
def test_it_never_gives_a_500_for_nul_in_list_filters(client, scan, path, param):
    """Text filters refuse NUL, choice filters (true/false included) refuse what is not a choice: 400."""
    response = client.get(path, {param: "a\x00b"})
    assert response.status_code == 400
    assert "unknown parameter" not in api_error(response)["message"]


def deeply_nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_it_refuses_json_nested_100000_deep_on_hosts(client):
    body = '{"name": "deep", "url": "unix:///x.sock", "probe_enabled": ' + deeply_nested(100_000) + "}"
    response = client.post("/api/v1/hosts/", body, content_type="application/json")
    assert response.status_code == 400
    assert api_error(response) == {"status": 400, "code": "parse_error", "message": "JSON nested deeper than 64 levels"}
    assert not DockerHost.objects.filter(name="deep").exists()


def test_it_refuses_json_nested_100000_deep_on_exceptions(client):
    body = '{"check_id": "container.privileged_disabled", "justification": ' + deeply_nested(100_000) + "}"
    response = client.post("/api/v1/exceptions/", body, content_type="application/json")
    assert response.status_code == 400 and "nested deeper than 64" in api_error(response)["message"]
    assert not ControlException.objects.exists()


@pytest.mark.parametrize("url, message", [
    ("unix:///var/run/docker.sock\nX-Injected: 1", "the URL contains a space or a control character"),
    ("tcp://127.0.0.1:2376\r\nSet-Cookie: a=b", "the URL contains a space or a control character"),
    (" unix:///var/run/docker.sock", "the URL contains a space or a control character"),
    ("unix:///var/run/docker.sock\t", "the URL contains a space or a control character"),
    ("unix:///var/run/docker.sock\u2028", "the URL contains a space or a control character"),
    ("unix:///var/run/docker.sock\x00", "Null characters are not allowed."),  # DRF's and Django forms' own words
])
def test_it_refuses_a_url_with_control_characters_and_saves_nothing(client, url, message):
    response = client.post("/api/v1/hosts/", {"name": "nl", "url": url}, format="json")
    assert response.status_code == 400
    assert api_error(response)["fields"]["url"] == [message]
    assert not DockerHost.objects.filter(name="nl").exists()
    assert not AuditEvent.objects.filter(action="host.created").exists()


def test_it_answers_a_created_host_with_its_api_location(client):
    response = client.post("/api/v1/hosts/", {"name": "loc", "url": "unix:///var/run/docker.sock"}, format="json")
    assert response.status_code == 201
    host = DockerHost.objects.get(name="loc")
    assert response["Location"] == f"http://testserver/api/v1/hosts/{host.pk}/"


def test_it_archives_on_delete_a_host_with_two_succeeded_scans(client, scan):
    host = scan.host
    second = stored_scan(host, SNAPSHOT, previous=scan)
    response = client.delete(f"/api/v1/hosts/{host.pk}/")
    assert response.status_code == 200 and response.json()["archived"] is True
    assert set(ScanRun.objects.filter(host=host, state=ScanState.SUCCEEDED).values_list("pk", flat=True)) == {
        scan.pk, second.pk}

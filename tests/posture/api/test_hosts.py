"""Hosts over the API: DELETE archives (history kept), archive/unarchive actions, archived
hosts hidden from the default list, never scanned, their name kept reserved."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from posture.jobs import schedule
from posture.models import AuditEvent, DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, api_error, stored_scan

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def host() -> DockerHost:
    return DockerHost.objects.create(name="h1", url="unix:///var/run/docker.sock")


def test_it_keeps_the_history_of_a_deleted_host(operator, host):
    scan = stored_scan(host, SNAPSHOT)
    response = client_for(operator).delete(f"/api/v1/hosts/{host.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["archived"] is True and body["enabled"] is False and body["archived_at"]
    assert ScanRun.objects.filter(pk=scan.pk, host=host).exists()
    host.refresh_from_db()
    assert host.archived_at is not None and not host.enabled
    event = AuditEvent.objects.get(action="host.archived")
    assert event.target == "h1" and event.actor == operator
    assert not AuditEvent.objects.filter(action="host.deleted").exists()


def test_it_archives_once_when_deleted_twice(operator, host):
    client = client_for(operator)
    assert client.delete(f"/api/v1/hosts/{host.pk}/").status_code == 200
    assert client.delete(f"/api/v1/hosts/{host.pk}/").status_code == 200
    assert AuditEvent.objects.filter(action="host.archived").count() == 1


@pytest.mark.parametrize("who, status", [("auditor", 403), ("outsider", 403), ("operator", 200), ("admin", 200)])
def test_it_lets_only_operators_and_admins_archive(personas, host, who, status):
    assert client_for(personas[who]).post(f"/api/v1/hosts/{host.pk}/archive/").status_code == status
    assert client_for(personas[who]).post(f"/api/v1/hosts/{host.pk}/unarchive/").status_code == status


def test_it_unarchives_a_host_disabled_and_audited(operator, host):
    client = client_for(operator)
    client.post(f"/api/v1/hosts/{host.pk}/archive/")
    response = client.post(f"/api/v1/hosts/{host.pk}/unarchive/")
    assert response.status_code == 200 and response.json()["archived"] is False
    host.refresh_from_db()
    assert host.archived_at is None and host.enabled is False
    assert AuditEvent.objects.filter(action="host.unarchived", target="h1").count() == 1
    assert client.patch(f"/api/v1/hosts/{host.pk}/", {"enabled": True}, format="json").status_code == 200


def test_it_hides_archived_hosts_from_the_default_list(auditor, host):
    DockerHost.objects.create(name="old", url="unix:///old.sock", enabled=False, archived_at="2026-01-01T00:00:00Z")
    client = client_for(auditor)
    names = lambda query: [h["name"] for h in client.get("/api/v1/hosts/", query).json()["results"]]  # noqa: E731
    assert names({}) == ["h1"]
    assert names({"archived": "false"}) == ["h1"]
    assert names({"archived": "true"}) == ["old"]
    assert names({"archived": "all"}) == ["h1", "old"]
    assert client.get("/api/v1/hosts/", {"archived": "maybe"}).status_code == 400
    old = DockerHost.objects.get(name="old")
    assert client.get(f"/api/v1/hosts/{old.pk}/").json()["archived"] is True


def test_it_never_schedules_an_archived_host(operator, host):
    client_for(operator).delete(f"/api/v1/hosts/{host.pk}/")
    assert schedule.enqueue_due_scans() == []


def test_it_refuses_to_scan_an_archived_host(operator, host):
    client = client_for(operator)
    client.post(f"/api/v1/hosts/{host.pk}/archive/")
    response = client.post("/api/v1/scans/", {"host": "h1"}, format="json")
    assert response.status_code == 400 and "archived" in api_error(response)["fields"]["host"][0]
    assert not ScanRun.objects.exists()


def test_it_refuses_to_edit_an_archived_host(operator, host):
    client = client_for(operator)
    client.post(f"/api/v1/hosts/{host.pk}/archive/")
    response = client.patch(f"/api/v1/hosts/{host.pk}/", {"enabled": True}, format="json")
    assert response.status_code == 400 and "unarchive it first" in response.content.decode()
    host.refresh_from_db()
    assert not host.enabled


def test_it_keeps_an_archived_name_reserved(operator, host):
    client = client_for(operator)
    client.post(f"/api/v1/hosts/{host.pk}/archive/")
    response = client.post("/api/v1/hosts/", {"name": "h1", "url": "unix:///other.sock"}, format="json")
    assert response.status_code == 400
    assert api_error(response)["fields"]["name"] == ["a host named 'h1' already exists (archived: its history keeps the name)"]
    assert DockerHost.objects.filter(name="h1").count() == 1

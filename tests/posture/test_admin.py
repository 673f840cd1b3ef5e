"""Admin: hosts are archived, never deleted with their history; scans and evidence cannot be
deleted from the admin either."""

from __future__ import annotations

import pytest
from django.test import Client

from posture.models import AuditEvent, DockerHost, Evidence, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def scan() -> ScanRun:
    return stored_scan(DockerHost.objects.create(name="h1", url="unix:///var/run/docker.sock"), SNAPSHOT)


def test_it_offers_no_delete_of_hosts_scans_or_evidence(admin_client, scan):
    evidence = Evidence.objects.first()
    fresh = DockerHost.objects.create(name="fresh", url="unix:///fresh.sock")  # no scans yet: still kept
    for url in (f"/admin/posture/dockerhost/{fresh.pk}/delete/", f"/admin/posture/dockerhost/{scan.host_id}/delete/", f"/admin/posture/scanrun/{scan.pk}/delete/",
                f"/admin/posture/evidence/{evidence.pk}/delete/"):
        assert admin_client.post(url, {"post": "yes"}).status_code == 403, url
    response = admin_client.post("/admin/posture/dockerhost/", {"action": "delete_selected",
                                                                "_selected_action": [scan.host_id]})
    assert DockerHost.objects.filter(pk__in=[fresh.pk, scan.host_id]).count() == 2 and ScanRun.objects.filter(pk=scan.pk).exists()
    assert response.status_code in (200, 302)


def test_it_archives_and_unarchives_from_the_admin_with_an_audit_event(admin, admin_client, scan):
    host = scan.host
    response = admin_client.post("/admin/posture/dockerhost/", {"action": "archive_hosts", "_selected_action": [host.pk]})
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.archived_at and not host.enabled
    assert AuditEvent.objects.get(action="host.archived").actor == admin
    admin_client.post("/admin/posture/dockerhost/?archived=yes", {"action": "unarchive_hosts", "_selected_action": [host.pk]})
    host.refresh_from_db()
    assert host.archived_at is None
    assert AuditEvent.objects.get(action="host.unarchived").actor == admin
    assert ScanRun.objects.filter(pk=scan.pk).exists()


def test_it_refuses_to_delete_a_host_with_scans_even_outside_the_admin(scan):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        scan.host.delete()
    assert ScanRun.objects.filter(pk=scan.pk).exists()


def test_it_shows_the_host_pages_and_hides_archived_hosts_by_default(admin_client, scan):
    from posture.jobs.hosts import archive_host

    DockerHost.objects.create(name="active", url="unix:///a.sock")
    archive_host(scan.host)
    assert admin_client.get("/admin/posture/dockerhost/add/").status_code == 200
    listing = admin_client.get("/admin/posture/dockerhost/").content.decode()
    assert ">active<" in listing and ">h1<" not in listing
    assert ">h1<" in admin_client.get("/admin/posture/dockerhost/?archived=yes").content.decode()
    assert admin_client.get(f"/admin/posture/dockerhost/{scan.host_id}/change/").status_code == 200


def test_it_refuses_to_edit_an_archived_host_in_the_admin(admin_client, scan):
    from posture.jobs.hosts import archive_host

    archive_host(scan.host)
    response = admin_client.post(f"/admin/posture/dockerhost/{scan.host_id}/change/", {
        "name": "h1", "url": "unix:///other.sock", "tls_ca": "", "tls_cert": "", "tls_key": "",
        "scan_interval_minutes": "60", "enabled": "on"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert "host 'h1' is archived (its history is kept); unarchive it first" in errors
    assert DockerHost.objects.get(pk=scan.host_id).url == "unix:///var/run/docker.sock"

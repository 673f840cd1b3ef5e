"""REST API: who may do what (named personas), TLS material never returned, scan queueing,
the exception workflow over HTTP, and pinned query counts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from posture.choices import ScanState
from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, api_error, stored_scan

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


@pytest.fixture
def host():
    return DockerHost.objects.create(name="h1", url="tcp://127.0.0.1:2376", tls_ca="CA", tls_cert="CERT",
                                     tls_key="-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----")


@pytest.mark.parametrize("who, status", [(None, 401), ("outsider", 403), ("auditor", 200), ("operator", 200), ("admin", 200)])
def test_it_lets_only_roles_read_hosts(personas, host, who, status):
    assert client_for(personas.get(who)).get("/api/v1/hosts/").status_code == status


@pytest.mark.parametrize("who, status", [("outsider", 403), ("auditor", 403), ("operator", 201), ("admin", 201)])
def test_it_lets_operators_and_admins_register_hosts(personas, who, status):
    response = client_for(personas[who]).post("/api/v1/hosts/", {"name": "n1", "url": "unix:///var/run/docker.sock"}, format="json")
    assert response.status_code == status


def test_it_never_returns_tls_material(personas, host):
    body = client_for(personas["admin"]).get(f"/api/v1/hosts/{host.pk}/").content.decode()
    assert "secret" not in body and "tls_key" not in body and '"uses_tls":true' in body


def test_it_rejects_a_bad_url_with_a_clear_message(personas):
    response = client_for(personas["operator"]).post("/api/v1/hosts/", {"name": "bad", "url": "http://x"}, format="json")
    assert response.status_code == 400 and "unix://, tcp:// or ssh://" in api_error(response)["fields"]["url"][0]


@pytest.mark.parametrize("who, status", [("auditor", 403), ("operator", 201)])
def test_it_queues_a_scan_once_for_operators(personas, host, who, status, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(personas[who]).post("/api/v1/scans/", {"host": "h1"}, format="json")
    assert response.status_code == status
    if status == 201:
        assert len(callbacks) == 1  # the task is sent once the row is committed
        again = client_for(personas[who]).post("/api/v1/scans/", {"host": "h1"}, format="json")
        assert again.status_code == 200 and again.json()["id"] == response.json()["id"]


def test_it_lists_scans_in_a_fixed_number_of_queries(personas, host, django_assert_max_num_queries):
    for _ in range(30):
        ScanRun.objects.create(host=host, state=ScanState.FAILED, error="x")
    client = client_for(personas["auditor"])
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/scans/").status_code == 200
    for _ in range(10):
        DockerHost.objects.create(name=f"more-{_}", url="unix:///x.sock")
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/hosts/").status_code == 200


def test_it_serves_results_with_filters_and_the_exception_workflow(personas, host):
    scan = stored_scan(host, SNAPSHOT)
    now = timezone.now()
    evaluate_scan(scan)
    auditor, operator, admin = (client_for(personas[p]) for p in ("auditor", "operator", "admin"))
    failing = auditor.get(f"/api/v1/scans/{scan.pk}/results/?status=fail&check=container.privileged_disabled").json()
    assert [r["resource"] for r in failing["results"]] == ["rec-privileged"]

    proposal = {"check_id": "container.privileged_disabled", "host": "h1", "resource_pattern": "rec-privileged",
                "justification": "vendor agent", "expires_at": (now + timedelta(days=7)).isoformat()}
    assert auditor.post("/api/v1/exceptions/", proposal, format="json").status_code == 403
    created = operator.post("/api/v1/exceptions/", proposal, format="json")
    assert created.status_code == 201 and created.json()["state"] == "proposed"
    exc_id = created.json()["id"]
    assert operator.post(f"/api/v1/exceptions/{exc_id}/approve/").status_code == 403
    approved = admin.post(f"/api/v1/exceptions/{exc_id}/approve/")
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    assert admin.post(f"/api/v1/exceptions/{exc_id}/approve/").status_code == 400  # already decided
    row = auditor.get(f"/api/v1/scans/{scan.pk}/results/?check=container.privileged_disabled&status=excepted").json()
    assert [r["resource"] for r in row["results"]] == ["rec-privileged"]
    assert auditor.get(f"/api/v1/scans/{scan.pk}/results/?at=yesterday").status_code == 400


def test_it_publishes_an_openapi_schema(personas):
    response = client_for(personas["auditor"]).get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    assert "/api/v1/scans/{id}/results/" in paths and "/api/v1/exceptions/{id}/approve/" in paths


@pytest.mark.parametrize("who, status", [("auditor", 403), ("outsider", 403), ("operator", 201)])
def test_it_takes_attestations_with_an_optional_file_from_operators(personas, who, status, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    payload = {"check_id": "manual.host_os_hardened", "statement": "CIS Debian L1 applied",
               "valid_until": (timezone.now() + timedelta(days=90)).isoformat(),
               "file": SimpleUploadedFile("report.txt", b"hardening report")}
    response = client_for(personas[who]).post("/api/v1/attestations/", payload, format="multipart")
    assert response.status_code == status, response.content
    if status == 201:
        body = response.json()
        assert body["attested_by"] == "olive" and body["file"].endswith(f"/api/v1/attestations/{body['id']}/file/")
        assert client_for(personas["auditor"]).get("/api/v1/attestations/").json()["count"] == 1


def test_it_refuses_to_attest_an_automated_check(personas):
    response = client_for(personas["operator"]).post("/api/v1/attestations/", {
        "check_id": "container.privileged_disabled", "statement": "trust me",
        "valid_until": (timezone.now() + timedelta(days=1)).isoformat()}, format="json")
    assert response.status_code == 400 and "manual checks" in response.content.decode()


def test_it_checks_tls_material_before_storing_it(personas):
    from tests.support.certs import make_bundle

    bundle = make_bundle()
    client = client_for(personas["operator"])
    good = {"name": "tls1", "url": "tcp://127.0.0.1:2376", "tls_ca": bundle.ca.cert_pem,
            "tls_cert": bundle.client.cert_pem, "tls_key": bundle.client.key_pem}
    assert client.post("/api/v1/hosts/", good, format="json").status_code == 201
    mismatched = {**good, "name": "tls2", "tls_key": bundle.foreign_client.key_pem}
    response = client.post("/api/v1/hosts/", mismatched, format="json")
    assert response.status_code == 400 and "do not belong together" in response.content.decode()
    expired = {**good, "name": "tls3", "tls_cert": bundle.expired_client.cert_pem, "tls_key": bundle.expired_client.key_pem}
    assert "expired" in client.post("/api/v1/hosts/", expired, format="json").content.decode()
    half = {"name": "tls4", "url": "tcp://127.0.0.1:2376", "tls_cert": bundle.client.cert_pem}
    assert "all three" in client.post("/api/v1/hosts/", half, format="json").content.decode()
    assert not DockerHost.objects.filter(name__in=["tls2", "tls3", "tls4"]).exists()


def test_it_lists_each_soc2_criterion_with_the_checks_that_support_it(personas, django_assert_max_num_queries):
    client = client_for(personas["auditor"])
    # The role, the page, its checks, the framework's name checked, and the fleet rollup now (no
    # host scanned: the read model's freshness, its current scans, the controls).
    with django_assert_max_num_queries(8):
        body = client.get("/api/v1/controls/?framework=soc2-2017&page_size=100").json()
    rows = {r["ref"]: r for r in body["results"]}
    assert "container.privileged_disabled" in rows["CC6.1"]["checks"]
    assert rows["CC1.1"]["supportable"] is False and rows["CC1.1"]["checks"] == [] and rows["CC1.1"]["note"]
    assert body["count"] == len(rows) == 61 and body["next"] is None


def test_it_rolls_a_scan_up_to_framework_controls(personas, host):
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    client = client_for(personas["auditor"])
    body = client.get(f"/api/v1/scans/{scan.pk}/controls/?page_size=500").json()
    cis = {r["ref"]: r for r in body["results"]}
    assert body["count"] == len(cis) == 118 and cis["5.5"]["status"] == "fail" and cis["5.5"]["counts"]["fail"] >= 1
    assert body["summary"][0]["framework"] == "cis-docker-1.8.0" and 0 < body["summary"][0]["score"] < 1
    v160 = {r["ref"]: r for r in client.get(
        f"/api/v1/scans/{scan.pk}/controls/?framework=cis-docker-1.6.0&page_size=500").json()["results"]}
    assert v160["2.7"]["title"] == cis["2.8"]["title"] and v160["2.7"]["status"] == cis["2.8"]["status"]
    soc2 = {r["ref"]: r for r in client.get(
        f"/api/v1/scans/{scan.pk}/controls/?framework=soc2-2017&page_size=500").json()["results"]}
    assert soc2["CC1.1"]["status"] == "not_assessed" and soc2["CC6.1"]["status"] in ("fail", "error")
    # Paginated in pages of 50 by default, in document order.
    first = client.get(f"/api/v1/scans/{scan.pk}/controls/").json()
    assert first["count"] == 118 and [r["ref"] for r in first["results"]] == list(cis)[:50]
    assert client.get(f"/api/v1/scans/{scan.pk}/controls/?framework=nope").status_code == 400

"""Reports over the API: an auditor requests, polls and downloads a report through the
authenticated view, verifies a package by upload, and reads the integrity status; errors
have the API's one shape. The rendering itself runs in a real Celery worker."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from rest_framework.test import APIClient

from posture.jobs.reports import render_report
from posture.models import AuditEvent, CheckResult, Report
from tests.posture.conftest import api_error
from tests.posture.reports.conftest import CIS, PAYLOADS
from tests.posture.reports.test_package import package
from tests.support.services import wait_until

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ask(period, **fields) -> dict:
    return {"kind": "zip", "framework": CIS, "start": period["start"].isoformat(), "end": period["end"].isoformat(),
            "hosts": ["audit1"], **fields}


def test_it_lets_an_auditor_request_poll_and_download_a_report(period, auditor, outsider, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    client = as_user(auditor)
    response = client.post("/api/v1/reports/", ask(period, kind="csv", csv_kind="findings"), format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["state"], body["requested_by"], body["download"]) == ("queued", "audrey", None)
    event = AuditEvent.objects.get(action="report.requested")
    assert (event.actor, event.target, event.detail["hosts"]) == (auditor, f"report #{body['id']}", ["audit1"])
    early = client.get(f"/api/v1/reports/{body['id']}/download/")
    assert early.status_code == 409 and api_error(early)["code"] == "conflict"

    render_report(body["id"])  # what the worker does (a real worker: the test below)
    done = client.get(f"/api/v1/reports/{body['id']}/").json()
    assert done["state"] == "succeeded" and done["progress"] == 100 and done["download"].endswith("/download/")
    download = client.get(f"/api/v1/reports/{body['id']}/download/")
    data = b"".join(download.streaming_content)
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert hashlib.sha256(data).hexdigest() == done["sha256"] and len(data) == done["size"]
    assert data.startswith(b"host,scan,scanned_at,") and ("'" + PAYLOADS[0]).encode() in data
    assert not (settings.MEDIA_ROOT / "reports").as_posix().startswith(str(settings.STATIC_ROOT))

    refused = as_user(outsider).get(f"/api/v1/reports/{body['id']}/download/")
    assert refused.status_code == 403 and api_error(refused)["code"] == "permission_denied"
    assert APIClient().get(f"/api/v1/reports/{body['id']}/download/").status_code in (401, 403)


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "docx"}, "kind"),
    ({"kind": "pdf", "csv_kind": "findings"}, "csv_kind is only for CSV reports"),
    ({"kind": "csv"}, "a CSV report needs csv_kind"),
    ({"framework": "nope"}, "unknown framework 'nope'"),
    ({"hosts": ["ghost"]}, "no host named 'ghost'"),
    ({"end": "2020-01-01T00:00:00Z"}, "the period must start before it ends"),
])
def test_it_refuses_a_bad_request_with_a_clear_error_and_queues_nothing(period, auditor, fields, message):
    response = as_user(auditor).post("/api/v1/reports/", ask(period, **fields), format="json")
    assert response.status_code == 400
    assert message in api_error(response)["message"]
    assert Report.objects.count() == 0


def test_it_verifies_an_uploaded_package_and_names_the_tampered_file(period, auditor):
    data = package(period)
    client = as_user(auditor)
    ok = client.post("/api/v1/reports/verify/", {"file": io.BytesIO(data)}, format="multipart")
    assert ok.status_code == 200 and ok.json() == {"ok": True, "problems": [], "files": 8, "hosts": 1}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            dst.writestr(info.filename, body + b"x\r\n" if info.filename == "scans.csv" else body)
    bad = client.post("/api/v1/reports/verify/", {"file": io.BytesIO(out.getvalue())}, format="multipart").json()
    assert bad["ok"] is False and bad["problems"][0].startswith("scans.csv: sha256 ")
    missing = client.post("/api/v1/reports/verify/", {}, format="multipart")
    assert missing.status_code == 400 and "file" in api_error(missing)["fields"]


def test_it_reports_chain_and_result_integrity(period, auditor):
    client = as_user(auditor)
    body = client.get("/api/v1/integrity/").json()
    assert body["ok"] is True and body["hosts"] == [{"name": "audit1", "scans": 5, "ok": True, "problems": []}]
    CheckResult.objects.filter(resource=PAYLOADS[0], status="fail").update(detail="forged")
    body = client.get("/api/v1/integrity/", {"host": "audit1"}).json()
    assert body["ok"] is False and "a result was altered" in body["hosts"][0]["problems"][0]
    unknown = client.get("/api/v1/integrity/", {"host": "ghost"})
    assert unknown.status_code == 404 and api_error(unknown)["code"] == "not_found"


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_it_renders_a_report_in_a_real_worker(period, auditor, start_celery, celery_env, settings):
    settings.MEDIA_ROOT = f"{celery_env['POSTURE_VAR_DIR']}/media"  # where the worker writes
    worker = start_celery("worker", "--concurrency", "1")
    worker.wait_for("ready", timeout=60)
    response = as_user(auditor).post("/api/v1/reports/", ask(period), format="json")
    assert response.status_code == 202, response.content
    report = wait_until(lambda: Report.objects.filter(pk=response.json()["id"], state__in=["succeeded", "failed"]
                                                      ).first(), 120, "the worker to render the report", [worker])
    assert report.state == "succeeded", report.error
    with report.file.open("rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == report.sha256
    with zipfile.ZipFile(report.file.path) as zf:
        assert "manifest.json" in zf.namelist()

"""Verification: a tampered evidence row, result, report file or file inside a package is
detected and named, by ``manage.py verify`` and over the API."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.db import connection

from posture.jobs.integrity import verify_results
from posture.jobs.reports import render_report, request_report
from posture.models import CheckResult, EvidenceSetItem, Report
from tests.posture.reports.conftest import CIS, PAYLOADS
from tests.posture.reports.test_package import package

pytestmark = pytest.mark.django_db(transaction=True)


def verify(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def rendered(period, auditor, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    report = request_report(auditor, "zip", CIS, period["start"], period["end"], ["audit1"])
    assert render_report(report.pk) == "succeeded"
    report.refresh_from_db()
    return report


def test_it_finds_an_untouched_history_intact(rendered):
    code, out, err = verify()
    assert (code, err) == (0, "") and "audit1: 5 scans intact" in out and "reports: 1 of 1 intact" in out
    assert verify("--host", "audit1")[0] == 0
    code, out, err = verify("--export", str(rendered.file.path))
    assert code == 0 and "intact (8 files, 1 chain heads match the database)" in out


def test_it_names_a_tampered_evidence_row(period):
    scan = period["scans"][2]
    item = EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id, kind="container").first()
    with connection.cursor() as cur:
        cur.execute("UPDATE posture_evidence SET payload = jsonb_set(payload, '{name}', '\"forged\"') WHERE id = %s",
                    [item.evidence_id])
    code, _, err = verify("--host", "audit1")
    assert code == 1
    assert f"audit1: scan #{period['scans'][0].pk}: payload {item.evidence.digest[:12]} (container {item.key}) " \
           "does not match its digest" in err


def test_it_names_a_tampered_result(period):
    victim = CheckResult.objects.get(check_id="container.privileged_disabled", resource=PAYLOADS[0], status="fail",
                                     chunk__memberships__result_set__evaluations__scan=period["scans"][0])
    CheckResult.objects.filter(pk=victim.pk).update(status="pass")
    problems = verify_results(period["host"].pk)
    assert problems == [f"scan #{period['scans'][0].pk}: the verdicts on container {PAYLOADS[0]!r} "
                        f"(chunk {victim.chunk.digest[:12]}) do not match their digest: a result was altered"]
    code, _, err = verify()
    assert code == 1 and "a result was altered" in err and f"container {PAYLOADS[0]!r}" in err


def test_it_names_a_tampered_report_file(rendered):
    path = rendered.file.path
    with open(path, "r+b") as handle:
        handle.seek(40)
        handle.write(b"X")
    code, _, err = verify()
    assert code == 1 and f"report #{rendered.pk}: file {rendered.file.name} sha256" in err
    assert "the file was altered" in err


def _rewrite(data: bytes, name: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == name else src.read(info.filename))
    return out.getvalue()


def test_it_names_a_tampered_file_inside_a_package(period, tmp_path):
    data = package(period)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        original = zf.read("findings.csv")
    forged = tmp_path / "forged.zip"
    forged.write_bytes(_rewrite(data, "findings.csv", original.replace(b",fail,fail,", b",fail,pass,", 1)))
    code, _, err = verify("--export", str(forged))
    assert code == 1
    assert err.splitlines() == [f"{forged}: findings.csv: sha256 " + err.split("sha256 ")[1].split()[0]
                                + " does not match the manifest: the file was altered",
                                f"{forged}: findings.csv: sha256 does not match SHA256SUMS: the file or SHA256SUMS "
                                "was altered"]


def test_it_names_a_chain_head_that_differs_from_the_database(period, tmp_path):
    data = package(period)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["chain_heads"]["audit1"]["chain_digest"] = "f" * 64
    forged = tmp_path / "forged.zip"
    forged.write_bytes(_rewrite(data, "manifest.json", json.dumps(manifest).encode()))
    code, _, err = verify("--export", str(forged))
    assert code == 1
    assert f"host audit1: chain head scan #{period['scans'][-1].pk} digest differs from the database" in err
    assert "manifest.json: sha256 does not match SHA256SUMS" in err


def test_it_reports_an_unreadable_package_in_one_line(db, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    code, _, err = verify("--export", str(bad))
    assert code == 1 and err.startswith(f"{bad}: not a readable zip") and len(err.splitlines()) == 1
    assert Report.objects.count() == 0

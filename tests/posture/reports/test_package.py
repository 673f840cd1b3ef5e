"""The evidence package: every CSV and the PDF report, a manifest with every file's sha256
and each host's chain head, and a SHA256SUMS that ``sha256sum -c`` accepts on the extracted
files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile

import pytest

from posture.reports import csv as exports
from posture.reports.package import MANIFEST, PDF_NAME, SUMS, build_package, posture_version, verify_package
from tests.posture.reports.conftest import CIS

pytestmark = pytest.mark.django_db


def package(period, **options) -> bytes:
    out = io.BytesIO()
    build_package(exports.ExportSpec(CIS, period["start"], period["end"], ("audit1",)), out,
                  generated_by="audrey", **options)
    return out.getvalue()


def test_it_packages_every_csv_with_a_manifest_whose_hashes_match(period, tmp_path):
    data = package(period)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert names == {MANIFEST, SUMS, PDF_NAME, *(k.filename for k in exports.KINDS.values())}
        manifest = json.loads(zf.read(MANIFEST))
        for name, entry in manifest["files"].items():
            body = zf.read(name)
            assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["size"]
            spec = exports.ExportSpec(CIS, period["start"], period["end"], ("audit1",))
            if name == PDF_NAME:
                assert body.startswith(b"%PDF-")
                continue
            assert body == b"".join(exports.stream(name.removesuffix(".csv"), spec))
        zf.extractall(tmp_path)
    last = period["scans"][-1]
    assert manifest["chain_heads"] == {"audit1": {"scan": last.pk, "finished_at": last.finished_at.isoformat(),
                                                  "chain_digest": last.chain_digest}}
    assert manifest["framework"]["slug"] == CIS and manifest["scope"]["hosts"] == ["audit1"]
    assert manifest["period"] == {"start": period["start"].isoformat(), "end": period["end"].isoformat()}
    assert manifest["generated_by"] == "audrey" and manifest["posture_version"] == posture_version() != "unknown"
    assert manifest["files"]["findings.csv"]["rows"] > 50

    sha256sum = shutil.which("sha256sum")
    assert sha256sum, "coreutils sha256sum is needed"
    done = subprocess.run([sha256sum, "-c", SUMS], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{MANIFEST}: OK" in done.stdout and "findings.csv: OK" in done.stdout and f"{PDF_NAME}: OK" in done.stdout
    assert verify_package(io.BytesIO(data)).problems == []

    (tmp_path / "windows.csv").write_bytes(b"forged\r\n")
    done = subprocess.run([sha256sum, "-c", SUMS], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and "windows.csv: FAILED" in done.stdout

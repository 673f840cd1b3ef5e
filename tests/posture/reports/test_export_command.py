"""manage.py export for scripts: a package or one CSV to a file (progress on stderr, the
sha256 on stdout), bad input refused in one line with nothing written; verify_chain still
works as an alias of verify."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from posture.reports.package import verify_package
from tests.posture.reports.conftest import CIS, PAYLOADS

pytestmark = pytest.mark.django_db


def export(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_exports_a_package_and_a_csv_to_files(period, tmp_path):
    target = tmp_path / "q1.zip"
    out, err = export("--framework", CIS, "--from", "2026-03-02", "--to", "2026-03-11", "--hosts", "audit1",
                      "--format", "zip", "--out", str(target))
    assert out.strip().endswith(f"  {target}") and "findings.csv: " in err and "evidence.csv: " in err
    assert verify_package(target).problems == []
    with zipfile.ZipFile(target) as zf:
        assert '"audit1"' in zf.read("manifest.json").decode()

    rows_file = tmp_path / "windows.csv"
    export("--framework", CIS, "--from", "2026-03-02", "--to", "2026-03-11", "--format", "csv", "--kind", "windows",
           "--out", str(rows_file))
    rows = list(csv.reader(io.StringIO(rows_file.read_text(encoding="utf-8"), newline="")))
    assert rows[0][:2] == ["host", "check"] and any(r[4] == "'" + PAYLOADS[0] for r in rows[1:])


@pytest.mark.parametrize(("args", "message"), [
    (["--framework", "nope"], "unknown framework 'nope'"),
    (["--from", "2026-02-30"], "bad date: '2026-02-30' is not a valid ISO 8601 date-time"),
    (["--hosts", "audit1,ghost"], "no host named 'ghost'"),
    (["--format", "csv"], "--format csv needs --kind"),
])
def test_it_refuses_bad_input_in_one_line_and_writes_nothing(period, tmp_path, args, message):
    base = {"--framework": CIS, "--from": "2026-03-02", "--to": "2026-03-11", "--out": str(tmp_path / "x.zip")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError, match="^" + message.replace("(", r"\(")):
        export(*[item for pair in base.items() for item in pair])
    assert list(tmp_path.iterdir()) == []


def test_it_keeps_verify_chain_as_an_alias(period):
    out = io.StringIO()
    call_command("verify_chain", "audit1", stdout=out, stderr=io.StringIO())
    assert "audit1: 5 scans intact" in out.getvalue()

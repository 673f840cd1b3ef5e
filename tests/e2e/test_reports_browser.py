"""Exports in a real browser, end to end: an auditor presses Export on the findings page,
gets the request form preset from the page (framework, host), is told what is wrong with a
bad period (nothing queued), requests an evidence package, watches its row go from queued to
succeeded without a reload (a real Celery worker on Redis renders it), downloads it and finds
the file the row's sha256 names, and verifies it. No CSP violation anywhere.

Screenshots of the Reports page, the form and the Export buttons at 1280 px and 390 px go to
$POSTURE_SCREENSHOTS (default /tmp/posture-shots), to be looked at by a person."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from posture.models import DockerHost, Report
from tests.e2e.conftest import login, shoot, violations
from tests.posture.reports.conftest import CIS, chained_history, day
from tests.support.services import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


@pytest.fixture
def audit_period():
    host = DockerHost.objects.create(name="audit1", url="unix:///audit1.sock", scan_interval_minutes=24 * 60)
    DockerHost.objects.filter(pk=host.pk).update(created_at=day(-1))
    chained_history(host, {0: "fail", 1: "fail", 6: "fail", 7: "fixed", 8: "fixed"})
    auditor = User.objects.create_user("audrey", password="auditor-pass-1")
    auditor.groups.add(Group.objects.get_or_create(name="auditor")[0])
    return host


def test_it_exports_a_package_from_the_export_button_and_downloads_it(watched, audit_period, start_celery,
                                                                      celery_env, settings):
    settings.MEDIA_ROOT = f"{celery_env['POSTURE_VAR_DIR']}/media"  # where the worker writes
    worker = start_celery("worker", "--concurrency", "1")
    page = watched
    login(page, "audrey", "auditor-pass-1")

    page.goto(f"/findings/?framework={CIS}&host=audit1")
    export = page.get_by_role("link", name="Export")
    shoot(page, "findings-export-button", full_page=False)
    export.click()
    page.wait_for_url("**/reports/new/?*")
    assert page.input_value("#id_framework") == CIS
    assert page.is_checked("input[name=scope][value=chosen]") and page.is_checked("input[name=hosts][value=audit1]")
    shoot(page, "report-form")

    page.fill("#id_start", "2026-03-09")  # after the end: refused beside the field, nothing queued
    page.fill("#id_end", "2026-03-02")
    page.get_by_role("button", name="Request the report").click()
    page.wait_for_load_state()
    assert "the period must start before it ends" in page.locator(".field.has-error").inner_text()
    assert not Report.objects.exists()
    shoot(page, "report-form-errors")

    page.get_by_role("link", name="Last 365 days").click()  # in place: the script sets the dates
    today = timezone.localdate()
    assert page.input_value("#id_end") == today.isoformat()
    assert page.input_value("#id_start") == (today - timedelta(days=364)).isoformat()
    page.check("input[name=kind][value=zip]")
    assert not page.locator("#id_csv_kind").is_visible()  # which CSV: only for a CSV report
    worker.wait_for("ready", timeout=60)
    page.get_by_role("button", name="Request the report").click()
    page.wait_for_url("**/reports/#report-*")
    report = Report.objects.get()
    assert (report.kind, report.hosts, report.framework) == ("zip", ["audit1"], CIS)

    page.evaluate("window.__samePage = true")  # gone if the page reloads
    row = page.locator(f"#report-{report.pk}")
    download = row.get_by_role("link", name="Download")
    seen = set()
    for _ in range(1200):  # the row follows the report until it ends (at most ~2 min)
        seen.add(row.get_attribute("data-state"))
        if download.is_visible():
            break
        page.wait_for_timeout(100)
    report.refresh_from_db()
    assert report.state == "succeeded", (report.error, worker.log()[-2000:])
    assert seen & {"queued", "running"}, seen  # it showed the report before it ended
    assert row.locator("[data-field=state]").inner_text() == "Succeeded"
    assert row.locator("[data-field=sha]").get_attribute("title") == report.sha256
    assert page.evaluate("window.__samePage === true")  # live, without a reload
    shoot(page, "reports")

    with page.expect_download() as info:
        download.click()
    data = open(info.value.path(), "rb").read()
    assert info.value.suggested_filename == f"report-{report.pk}-{CIS}-zip.zip"
    assert hashlib.sha256(data).hexdigest() == report.sha256
    with zipfile.ZipFile(info.value.path()) as package:
        manifest = json.loads(package.read("manifest.json"))
        for name, entry in manifest["files"].items():
            assert hashlib.sha256(package.read(name)).hexdigest() == entry["sha256"], name
    assert "findings.csv" in manifest["files"] and manifest["chain_heads"].keys() == {"audit1"}

    row.get_by_role("button", name="Verify").click()
    assert row.locator("[data-field=verified] .state-verified").inner_text(timeout=10000) == "verified"
    assert page.evaluate("window.__samePage === true")
    # For the screenshots: a failed report's reason and a running one's progress beside it.
    Report.objects.create(kind="csv", csv_kind="windows", framework="soc2-2017", period_start=day(0),
                          period_end=day(9), state="failed", error="OperationalError: the database went away")
    Report.objects.create(kind="zip", framework=CIS, period_start=day(0), period_end=day(9), hosts=None,
                          state="running", progress=43, progress_note="windows.csv: 12000 rows")
    page.reload()
    assert "the database went away" in page.locator("table.reports").inner_text()
    shoot(page, "reports-states")

    page.goto("/?at=" + day(8).isoformat().replace("+", "%2B"))
    shoot(page, "overview-export-button", full_page=False)
    page.goto(f"/controls/{CIS}/5.5/")
    shoot(page, "control-export-button", full_page=False)
    page.wait_for_timeout(200)
    assert violations(page) == []


def test_a_report_that_fails_shows_its_one_line_reason_live(watched, audit_period, start_celery, celery_env,
                                                            settings):
    media = Path(celery_env["POSTURE_VAR_DIR"]) / "media"
    settings.MEDIA_ROOT = str(media)
    (media / "reports").mkdir(parents=True)
    (media / "reports" / f"{timezone.now():%Y}").write_text("not a folder")  # the worker cannot store the file
    worker = start_celery("worker", "--concurrency", "1")
    page = watched
    login(page, "audrey", "auditor-pass-1")
    page.goto("/reports/")
    page.get_by_role("link", name="New report").click()
    page.check("input[name=kind][value=csv]")
    page.select_option("#id_csv_kind", "scans")  # shown once CSV is chosen
    worker.wait_for("ready", timeout=60)
    page.get_by_role("button", name="Request the report").click()
    page.wait_for_url("**/reports/#report-*")
    report = Report.objects.get()
    assert (report.kind, report.csv_kind, report.hosts) == ("csv", "scans", None)
    page.evaluate("window.__samePage = true")
    row = page.locator(f"#report-{report.pk}")
    error = row.locator("[data-field=error]")
    wait_until(lambda: Report.objects.filter(pk=report.pk, state__in=["succeeded", "failed"]).exists(), 60,
               "the worker to end the report", [worker])
    error.wait_for(state="visible", timeout=10000)
    report.refresh_from_db()
    assert report.state == "failed" and "\n" not in report.error
    assert error.inner_text() == report.error and report.error.startswith("FileExistsError: ")
    assert row.locator("[data-field=state]").inner_text() == "Failed"
    assert not row.get_by_role("link", name="Download").is_visible()
    assert not row.get_by_role("button", name="Verify").is_visible()
    assert page.evaluate("window.__samePage === true")
    assert violations(page) == []

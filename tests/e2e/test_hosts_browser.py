"""The host pages in a real browser, end to end: log in, add a host pointing at a private
dockerd, test the connection, Scan now and watch it finish live (a real Celery worker on
Redis runs it; the page is not reloaded), open the scan. No CSP violation anywhere.

Screenshots of every page at 1280 px and 390 px go to $POSTURE_SCREENSHOTS (default
/tmp/posture-shots), to be looked at by a person; they are not compared by the test."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from tests.e2e.conftest import login, scan_now_and_watch, shoot, violations

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.docker, pytest.mark.redis]




def test_it_adds_a_host_tests_it_scans_it_live_and_opens_the_scan(watched, live_server, dockerd, make_container,
                                                                  start_celery):
    page = watched
    make_container("e2e-web")
    worker = start_celery("worker", "--concurrency", "1")
    User.objects.create_superuser("ada", "", "admin-pass-1")
    login(page, "ada", "admin-pass-1")

    page.get_by_role("link", name="Hosts", exact=True).click()
    assert page.locator("h1").inner_text() == "Hosts"
    shoot(page, "hosts-empty")
    page.get_by_role("link", name="Add host").click()
    page.fill("#id_name", "lab 1")  # a space: save_host refuses it, and nothing is saved
    page.fill("#id_url", dockerd.url)
    page.get_by_role("button", name="Add host").click()
    page.wait_for_load_state()
    assert "a host name is 1 to 100 characters" in page.locator("#id_name-errors").inner_text()
    assert page.input_value("#id_url") == dockerd.url and not DockerHost.objects.exists()
    shoot(page, "host-form-errors")
    page.fill("#id_name", "lab-1")
    page.fill("#id_url", dockerd.url)
    page.fill("#id_scan_interval_minutes", "60")
    page.evaluate("window.__samePage = true")  # gone if the page reloads
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#connection-result")
    result.locator(".state-pass").wait_for(timeout=20000)
    assert "connected" in result.inner_text() and "Docker" in result.inner_text()
    assert page.evaluate("window.__samePage === true")  # shown in place
    assert not DockerHost.objects.exists()  # tested, not saved
    shoot(page, "host-form-tested")

    page.get_by_role("button", name="Add host").click()
    page.wait_for_url("**/hosts/*/")
    host = DockerHost.objects.get(name="lab-1")
    assert page.locator("h1").inner_text() == "lab-1"
    worker.wait_for("ready", timeout=60)

    page.evaluate("window.__samePage = true")
    seen = scan_now_and_watch(page)  # the panel follows the scan until it ends (at most ~60 s)
    panel = page.locator("#scan-progress")
    scan = ScanRun.objects.get(host=host)
    assert scan.state == ScanState.SUCCEEDED, (scan.error, worker.log()[-2000:])
    assert panel.locator("[data-field=state]").inner_text() == "Succeeded"
    assert seen & {"queued", "running"}, seen  # it showed the scan before it ended
    assert "collected" in panel.locator("[data-field=log]").inner_text()
    assert page.evaluate("window.__samePage === true")  # live, without a reload
    shoot(page, "host-detail-scanned")

    page.get_by_role("link", name="Open the scan").click()
    page.wait_for_url(f"**/scans/{scan.pk}/")
    assert page.locator("h1").inner_text() == f"Scan #{scan.pk} of lab-1"
    shoot(page, "scan-detail")

    page.goto(f"/hosts/{host.pk}/")
    assert page.locator("table.scans tr", has_text=f"#{scan.pk}").count() == 1
    assert dockerd_version_shown(page)
    page.goto(f"/hosts/{host.pk}/edit/")
    shoot(page, "host-edit")
    page.goto("/hosts/")
    assert "lab-1" in page.locator("table.hosts").inner_text()
    shoot(page, "hosts")
    page.wait_for_timeout(200)
    assert violations(page) == []


def dockerd_version_shown(page) -> bool:
    facts = page.locator("section.card", has_text="Daemon").inner_text()
    return "Docker" in facts and "Storage driver" in facts

"""The pages in a real browser: log in, see the fleet, drill into a scan's verdicts, and
attacker-controlled strings stay text (no script runs)."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import Group, User

from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost
from tests.e2e.conftest import login
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db(transaction=True)
XSS = '<img src=x onerror="alert(\'pwned\')">'


@pytest.fixture
def auditor_login():
    user = User.objects.create_user("audrey", password="audit-pass-1")
    user.groups.add(Group.objects.get_or_create(name="auditor")[0])
    return "audrey", "audit-pass-1"


@pytest.fixture
def scan():
    host = DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock")
    snap = copy.deepcopy(SNAPSHOT)
    target = next(c for c in snap["containers"] if c["name"] == "rec-privileged")
    target["name"] = "evil" + XSS
    target["inspect"]["Config"]["Env"] = [{"name": "TOKEN" + XSS, "looks_secret": True}]
    scan = stored_scan(host, snap, counts={"images": 4, "containers": 8})
    evaluate_scan(scan)
    return scan


def test_it_shows_the_fleet_and_a_scans_failures_to_an_auditor(page, auditor_login, scan):
    login(page, *auditor_login)
    assert page.locator("h1").inner_text() == "Overview"
    row = page.locator("table.host-scores tr", has_text="web-1")
    assert "%" in row.inner_text() and "failing checks" in row.inner_text()
    row.get_by_role("link", name=f"#{scan.pk}").click()
    assert page.locator("h1").inner_text() == f"Scan #{scan.pk} of web-1"
    page.get_by_role("link", name="fail", exact=False).first.click()
    statuses = set(page.locator("td span.state").all_inner_texts())
    assert statuses == {"fail"}
    assert page.locator("tr", has_text="container.privileged_disabled").count() >= 1


def test_it_renders_hostile_names_as_text(page, auditor_login, scan):
    login(page, *auditor_login)
    for url in (f"/scans/{scan.pk}/", f"/hosts/{scan.host_id}/", "/findings/?status=fail"):
        page.goto(url)
        assert page.locator("img[src=x]").count() == 0, url  # no element was injected
        assert page.get_by_text("evil" + XSS).count() >= 1, url  # the name is shown, as text
    page.goto(f"/hosts/{scan.host_id}/")
    row = page.locator("table.resources-containers tr", has_text="evil" + XSS)
    row.locator("summary").click()  # its failing checks, unfolded
    assert "Container is not privileged" in row.inner_text()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # a long hostile name wraps
    page.wait_for_timeout(200)
    assert page.dialogs == []  # no script ran


def test_it_refuses_an_account_without_a_role(page):
    User.objects.create_user("otto", password="no-role-1")
    login(page, "otto", "no-role-1")
    assert page.locator("h1").inner_text() == "403 Forbidden"


def test_it_serves_the_api_docs_without_internet(page, auditor_login):
    login(page, *auditor_login)
    page.goto("/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=15000)  # rendered from local assets
    assert page.locator(".opblock-summary-path", has_text="/api/v1/scans/{id}/results/").count() == 1

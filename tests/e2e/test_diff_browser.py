"""The scan diff page in a real browser: hostile container names and label values stay text,
and at phone width long evidence values wrap instead of widening the page.

Set POSTURE_SCREENSHOTS=/some/dir to keep screenshots of the diff and scan pages at 1280 and
390 px wide."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from posture.models import DockerHost
from tests.e2e.conftest import login
from tests.posture.queries.test_diffs import after_snapshot, before_snapshot, container, scan_at

pytestmark = pytest.mark.django_db(transaction=True)
XSS = '<img src=x onerror="alert(\'pwned\')">'
LONG = "x" * 300 + XSS + "y" * 300  # one long word: must wrap


@pytest.fixture
def auditor_login() -> tuple[str, str]:
    user = User.objects.create_user("audrey", password="audit-pass-1")
    user.groups.add(Group.objects.get_or_create(name="auditor")[0])
    return "audrey", "audit-pass-1"


@pytest.fixture
def pair():
    host = DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock")
    after = after_snapshot()
    added = next(c for c in after["containers"] if c["name"].startswith("added"))
    added["name"] = "evil" + XSS
    container(after, "rec-hardened")["inspect"]["Config"]["Labels"] = {"note" + XSS: LONG}
    return scan_at(host, before_snapshot(), 0), scan_at(host, after, 24)


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_it_shows_a_diff_with_hostile_strings_as_text_at_any_width(page, auditor_login, pair):
    before, after = pair
    login(page, *auditor_login)
    page.goto(f"/scans/{after.pk}/")
    page.get_by_role("link", name="See every change").click()
    assert page.locator("h1").inner_text() == f"Changes on web-1: scan #{before.pk} → #{after.pk}"
    added = page.locator("ul.resources li", has_text="added container")
    assert added.locator("strong").inner_text() == "evil" + XSS  # the name is shown, as text
    assert page.locator("img[src=x]").count() == 0  # no element was injected
    assert page.locator("table.changes tr", has_text="HostConfig.Privileged").inner_text().split()[-2:] == ["false", "true"]
    assert page.locator("#flips-error").inner_text().endswith("now error (not a fix)")
    shots = os.environ.get("POSTURE_SCREENSHOTS")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in (("diff", f"/scans/{before.pk}/diff/{after.pk}/"), ("scan", f"/scans/{after.pk}/")):
            page.goto(url)
            assert page_width(page) <= width, f"{name} page wider than {width}px"
            if shots:
                if name == "scan":
                    page.locator("h2", has_text="Changes since the previous scan").scroll_into_view_if_needed()
                page.screenshot(path=str(Path(shots) / f"{name}-{width}.png"))
                if name == "diff":
                    changes = page.locator("h3", has_text="rec-hardened")
                    changes.scroll_into_view_if_needed()
                    page.screenshot(path=str(Path(shots) / f"diff-changes-{width}.png"))
    page.wait_for_timeout(200)
    assert page.dialogs == []  # no script ran

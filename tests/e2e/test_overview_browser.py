"""The Overview in a real browser: the trend chart draws (a canvas, from the JSON data
island, by a static script) with no CSP violation at 1280 and 390 px, the page fits a phone,
hostile host names stay text, and "as of" through the date-time picker shows the banner and
the older state. Screenshots go to $POSTURE_SCREENSHOTS (default /tmp/posture-shots)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from tests.e2e.conftest import login, shoot, violations
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import scan_at, without

pytestmark = pytest.mark.django_db(transaction=True)
XSS = '<img src=x onerror="alert(\'pwned\')">'
DAY = timedelta(days=1)



@pytest.fixture
def history():
    """Two hosts scanned daily for a week (web-1 fixes its privileged container on day 4),
    a hostile-named host whose last scan failed."""
    now = timezone.now()
    web, db = (DockerHost.objects.create(name=n, url=f"unix:///{n}.sock", scan_interval_minutes=24 * 60)
               for n in ("web-1", "db-1"))
    for n in range(7, 0, -1):
        when = now - n * DAY
        for host, snap in ((web, SNAPSHOT if n > 3 else without(SNAPSHOT, "rec-privileged")), (db, SNAPSHOT)):
            scan = scan_at(host, snap, when)
            ScanRun.objects.filter(pk=scan.pk).update(queued_at=when)
    evil = DockerHost.objects.create(name="evil" + XSS, url="unix:///evil.sock", scan_interval_minutes=60)
    ScanRun.objects.create(host=evil, state=ScanState.FAILED, finished_at=now, error="refused " + XSS)
    User.objects.create_user("audrey", password="auditor-pass-1").groups.add(Group.objects.get_or_create(name="auditor")[0])
    return web, db, evil


def test_it_draws_the_trend_chart_under_the_csp_at_desktop_and_phone_width(watched, history):
    page = watched
    login(page, "audrey", "auditor-pass-1")
    page.goto("/")
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/")
        canvas = page.locator("#trend-chart canvas")
        canvas.first.wait_for(state="attached", timeout=10000)
        box = canvas.first.bounding_box()
        assert box and 200 < box["width"] <= width and box["height"] > 100, (width, box)
        frame = page.locator("#trend-chart").bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, (box, frame)  # not clipped
        legend = page.locator("#trend-chart .u-legend").bounding_box()
        assert legend["x"] + legend["width"] <= frame["x"] + frame["width"] + 1, (legend, frame)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.locator(".u-legend").count() == 1  # uPlot's own legend: the chart really ran
    assert page.locator("#trend-chart").get_attribute("role") == "img"
    assert page.locator(".trend-table tbody tr").count() == 30  # the fallback, same days
    assert page.locator("[data-score=cis-docker-1\\.8\\.0]").inner_text().endswith("%")
    assert page.locator("img[src=x]").count() == 0 and page.dialogs == []
    assert page.get_by_text("evil" + XSS).count() >= 1  # shown as text
    shoot(page, "overview")
    page.goto("/?days=365")
    page.locator("#trend-chart canvas").first.wait_for(state="attached", timeout=10000)
    shoot(page, "overview-365")
    assert violations(page) == []


def test_it_shows_the_overview_as_of_a_moment_picked(watched, history):
    page = watched
    web, db, evil = history
    login(page, "audrey", "auditor-pass-1")
    page.goto("/")
    then = timezone.localtime(timezone.now() - 5 * DAY)
    page.fill("input[type=datetime-local][name=at]", f"{then:%Y-%m-%dT%H:%M}")
    page.click("form.asof button[type=submit]")
    page.wait_for_load_state()
    banner = page.locator(".asof-banner")
    assert "Viewing posture as of" in banner.inner_text() and f"{then:%Y-%m-%d %H:%M}" in banner.inner_text()
    # Then: the hostile host's failure had not happened; the chart ends on that day.
    assert page.locator(".attention").count() == 0 or "evil" not in page.locator(".attention").inner_text()
    page.locator("#trend-chart canvas").first.wait_for(state="attached", timeout=10000)
    assert page.locator(".trend-table tbody tr").first.locator("td").first.text_content() == f"{then:%Y-%m-%d}"
    shoot(page, "overview-as-of")
    page.click("text=Back to now")
    page.wait_for_load_state()
    assert page.locator(".asof-banner").count() == 0
    bad = page.goto("/?at=yesterday")
    assert bad.status == 400 and "is not a valid ISO 8601 date-time" in page.locator(".notice-error").inner_text()
    shoot(page, "overview-bad-at")
    assert violations(page) == []

"""The layout in a real browser: every page fits a 390 px phone (long log lines, errors and
names wrap or scroll inside their own box), the navigation is there at both widths, status
badges carry a glyph and text, the vendored chart library loads under the CSP, and error
pages look like the rest. Screenshots go to $POSTURE_SCREENSHOTS (default /tmp/posture-shots)."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from posture.choices import ScanState
from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost, ScanRun
from tests.e2e.conftest import login, shoot, violations
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db(transaction=True)
#: One unbroken 2,000-character token: what made a scan page 2,232 px wide.
LONG = "probe-failed:" + "x" * 2000



@pytest.fixture
def fleet():
    host = DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock", probe_enabled=True)
    snap = copy.deepcopy(SNAPSHOT)
    snap["warnings"] = [{"resource_type": "host", "resource": "probe", "message": LONG}]
    scan = stored_scan(host, snap, counts={"images": 4, "containers": 8}, log=[LONG, "collected 4 images"])
    evaluate_scan(scan)
    ScanRun.objects.create(host=host, state=ScanState.FAILED, finished_at=timezone.now(), error=LONG, log=[LONG])
    DockerHost.objects.create(name="db-" + "a" * 90, url="tcp://" + "b" * 300 + ":2376", enabled=False)
    User.objects.create_superuser("ada", "", "admin-pass-1")
    return host, scan


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_it_fits_every_page_in_a_phone_screen_with_no_csp_violation(watched, fleet):
    host, scan = fleet
    page = watched
    login(page, "ada", "admin-pass-1")
    pages = {"overview": "/", "hosts": "/hosts/", "host-detail": f"/hosts/{host.pk}/", "host-add": "/hosts/new/",
             "scan-with-long-lines": f"/scans/{scan.pk}/", "attestations": "/attestations/", "audit": "/audit/",
             "tokens": "/tokens/", "reports": "/reports/", "report-form": "/reports/new/",
             "not-found": "/no/such/page/"}
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in pages.items():
        page.goto(path)
        assert page_width(page) <= 390, (path, page_width(page))
        assert page.locator("nav.mainnav a", has_text="Hosts").is_visible(), path
        shoot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})
    for path in pages.values():
        page.goto(path)
        assert page_width(page) <= 1280, (path, page_width(page))
    assert violations(page) == []


def test_it_marks_the_current_section_and_the_sections_to_come(page, fleet):
    login(page, "ada", "admin-pass-1")
    page.goto("/hosts/")
    current = page.locator("nav.mainnav [aria-current=page]")
    assert current.count() == 1 and current.inner_text() == "Hosts"
    soon = page.locator("nav.mainnav .soon")
    assert not {"Findings", "Controls", "Exceptions"} & set(soon.all_inner_texts())  # built: real links now
    assert page.locator("nav.mainnav a", has_text="Findings").count() == 1
    assert page.locator("nav.mainnav .soon a, nav.mainnav a.soon").count() == 0  # placeholders, not dead links


def test_it_shows_status_as_a_glyph_and_text_not_colour_alone(page, fleet):
    login(page, "ada", "admin-pass-1")
    page.goto("/hosts/")
    badges = page.locator(".state").all()
    assert badges
    for badge in badges:
        glyph = badge.evaluate("e => getComputedStyle(e, '::before').content")
        assert glyph not in ("none", "normal", '""'), badge.inner_text()
        assert badge.inner_text().strip(), "a badge has words, not only a colour"


def test_it_loads_the_vendored_chart_library_under_the_csp(watched, fleet):
    page = watched
    login(page, "ada", "admin-pass-1")
    page.goto("/hosts/")
    page.add_style_tag(url="/static/vendor/uplot/uPlot.min.css")
    page.add_script_tag(url="/static/vendor/uplot/uPlot.iife.min.js")
    drawn = page.evaluate("""() => {
        const box = document.createElement('div');
        document.querySelector('main').appendChild(box);
        const chart = new uPlot({width: 320, height: 160, series: [{}, {label: 'score', stroke: 'blue'}]},
                                [[1700000000, 1700086400, 1700172800], [0.8, 0.85, 0.9]], box);
        return {version: typeof uPlot, canvas: box.querySelectorAll('canvas').length, width: chart.width};
    }""")
    assert drawn == {"version": "function", "canvas": 1, "width": 320}
    page.wait_for_timeout(200)
    assert violations(page) == []


XSS = '<img src=x onerror="alert(\'pwned\')">'


def test_it_follows_a_scan_live_and_keeps_hostile_strings_as_text(page, fleet):
    """The live panel puts the host's strings (log lines, errors) in the page as text only."""
    host, _ = fleet
    scan = ScanRun.objects.create(host=host, state=ScanState.RUNNING, started_at=timezone.now(),
                                  log=["connecting", "container " + XSS])
    login(page, "ada", "admin-pass-1")
    page.goto(f"/hosts/{host.pk}/")
    panel = page.locator("#scan-progress")
    assert panel.get_attribute("data-state") == "running"
    page.evaluate("window.__samePage = true")
    ScanRun.objects.filter(pk=scan.pk).update(state=ScanState.FAILED, finished_at=timezone.now(),
                                              error="lost: " + XSS, log=["connecting", "container " + XSS, "failed " + XSS])
    panel.locator("[data-field=done]").wait_for(state="visible", timeout=15000)
    assert panel.locator("[data-field=state]").inner_text() == "Failed"
    assert panel.locator("[data-field=error]").inner_text() == "lost: " + XSS
    assert panel.locator("[data-field=log]").inner_text().endswith("failed " + XSS)
    assert page.locator("img[src=x]").count() == 0 and page.dialogs == []
    assert page.evaluate("window.__samePage === true")

"""The findings and controls pages in a real browser: hostile container names and label
values (stored evidence, as a daemon would report them) show as text in the findings list,
the grouped view and the deciding evidence, and no script runs; the pages fit a 390 px
phone and 1280 px with no CSP violation. Screenshots under $POSTURE_SCREENSHOTS."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost
from tests.e2e.conftest import SHOTS, login, shoot, violations
from tests.posture.conftest import SNAPSHOT, stored_scan
from tests.posture.test_control_pages import HOSTILE, hostile_snapshot

pytestmark = pytest.mark.django_db(transaction=True)



@pytest.fixture
def fleet():
    for name, snap in (("web-1", hostile_snapshot()), ("web-2", SNAPSHOT)):
        host = DockerHost.objects.create(name=name, url=f"unix:///{name}.sock")
        evaluate_scan(stored_scan(host, snap, counts={"images": 4, "containers": 8}))
    User.objects.create_superuser("ada", "", "admin-pass-1")


def test_it_shows_hostile_names_and_labels_as_text_and_runs_no_script(watched, fleet):
    page = watched
    login(page, "ada", "admin-pass-1")
    page.goto("/findings/?resource_contains=privileged&status=fail")
    assert page.locator("table.findings td[data-label=Resource]", has_text=f"rec-privileged{HOSTILE}").count() > 0
    page.goto("/findings/?group=resource&host=web-1")
    assert page.locator("table.findings-groups td", has_text=HOSTILE).count() == 1
    page.goto("/controls/cis-docker-1.8.0/5.5/")
    page.locator("#evidence").screenshot(path=str(SHOTS / "control-evidence-hostile-1280.png"))
    evidence = page.locator("pre.evidence")
    assert f'"{HOSTILE}": "v{HOSTILE}"' in evidence.inner_text()
    hit = page.locator("pre.evidence .jl-hit")
    assert hit.count() == 1 and '"Privileged": true' in hit.inner_text()
    assert page.locator("main img").count() == 0  # the payload never became an element
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert violations(page) == []


def test_it_fits_the_pages_at_phone_and_desktop_width(watched, fleet):
    page = watched
    login(page, "ada", "admin-pass-1")
    pages = {"findings": "/findings/", "findings-by-resource": "/findings/?group=resource",
             "findings-by-control": "/findings/?group=control", "controls": "/controls/",
             "controls-soc2": "/controls/?framework=soc2-2017", "control-detail": "/controls/cis-docker-1.8.0/5.5/",
             "findings-bad-filter": "/findings/?status=red&colour=1"}
    for width, height in ((390, 844), (1280, 900)):
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            page.goto(path)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (path, width)
            if width == 390:
                shoot(page, name)
            page.screenshot(path=str(SHOTS / f"{name}-top-{width}.png"))  # what a person sees first
            table = page.locator("main table").first
            if width == 390 and table.count():
                box = table.bounding_box()
                page.screenshot(path=str(SHOTS / f"{name}-table-{width}.png"), full_page=True,
                                clip={"x": 0, "y": box["y"] - 60, "width": width, "height": height})
    assert violations(page) == []
    assert page.dialogs == []

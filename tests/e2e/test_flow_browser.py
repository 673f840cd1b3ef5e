"""The whole dashboard flow in one browser run, as a security lead and an operator would walk
it: log in, add a host (a real private dockerd), test the connection, Scan now and watch it
finish (a real Celery worker on Redis), see the failing controls, open the deciding evidence
from the host page, propose an exception as the operator and approve it as the admin, see the
control become excepted, scan again after a change and view the diff of the two scans, and
read the overview and the host "as of" the first scan. No CSP violation, no dialog.

Screenshots of every main page at 1280 px and 390 px go to $POSTURE_SCREENSHOTS (default
/tmp/posture-shots), to be looked at by a person."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from posture.choices import ScanState
from posture.models import ControlException, DockerHost, ExceptionState, ScanRun
from posture.queries.rollups import host_rollups
from tests.e2e.conftest import login, person, scan_now_and_watch, shoot, violations

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.docker, pytest.mark.redis]
CIS = "cis-docker-1.8.0"
PRIV = "container.privileged_disabled"  # the only check behind CIS 5.5


def cis_status(host: DockerHost, ref: str) -> str:
    return host_rollups([CIS], [host])[host.pk][CIS].by_ref[ref].status


def test_it_walks_the_whole_flow_from_a_new_host_to_an_excepted_control_a_diff_and_as_of(
        browser, live_server, watched, dockerd, make_container, start_celery):
    page = watched
    make_container("flow-web")
    make_container("flow-priv", privileged=True, start=False)  # created, not run: this daemon cannot grant every capability
    worker = start_celery("worker", "--concurrency", "1")
    User.objects.create_superuser("ada", "", "admin-pass-1")
    User.objects.create_user("olive", password="operator-pass-1").groups.add(Group.objects.get_or_create(name="operator")[0])
    login(page, "ada", "admin-pass-1")
    assert page.locator("h1").inner_text() == "Overview"
    shoot(page, "flow-overview-empty")

    # Add the host, test the connection in place, save it.
    page.get_by_role("link", name="Hosts", exact=True).click()
    page.get_by_role("link", name="Add host").click()
    page.fill("#id_name", "flow-1")
    page.fill("#id_url", dockerd.url)
    page.get_by_role("button", name="Test connection").click()
    page.locator("#connection-result .state-pass").wait_for(timeout=20000)
    shoot(page, "flow-host-form-tested")
    page.get_by_role("button", name="Add host").click()
    page.wait_for_url("**/hosts/*/")
    host = DockerHost.objects.get(name="flow-1")

    # Scan now, followed live until it ends.
    worker.wait_for("ready", timeout=60)
    seen = scan_now_and_watch(page)
    first = ScanRun.objects.get(host=host)
    assert first.state == ScanState.SUCCEEDED, (first.error, worker.log()[-2000:])
    assert seen & {"queued", "running"}, seen
    page.reload()  # the resources of the new scan
    shoot(page, "flow-host-detail")

    # The host page lists the privileged container with its failing checks; its CIS 5.5 link
    # opens the deciding evidence.
    row = page.locator("table.resources-containers tr", has_text="flow-priv")
    assert "failing checks" in row.inner_text()
    row.locator("summary").click()  # a long list is folded behind its severity summary
    assert "Container is not privileged" in row.inner_text()
    row.get_by_role("link", name="CIS 5.5 evidence").click()
    page.wait_for_url("**/controls/cis-docker-1.8.0/5.5/**")
    assert page.locator("h1 + .lede .state").inner_text() == "fail"
    evidence = page.locator("#evidence")
    assert "flow-priv" in evidence.inner_text()
    assert "Privileged" in evidence.locator(".jl-hit").first.inner_text()
    shoot(page, "flow-control-evidence")

    # Failing controls, fleet-wide.
    page.goto(f"/controls/?framework={CIS}&status=fail")
    assert page.locator("a", has_text="5.5").count() >= 1
    shoot(page, "flow-controls-failing")
    page.goto("/findings/?status=fail")
    assert page.locator("table.findings tr", has_text="flow-priv").count() >= 1
    shoot(page, "flow-findings")
    page.goto("/hosts/")
    listed = page.locator("table.hosts tr", has_text="flow-1")
    assert "fail" in listed.locator("td.controls").inner_text() and "coverage" in listed.inner_text()
    shoot(page, "flow-hosts")

    # An exception: proposed by the operator, approved by the admin (not the same person).
    operator = person(browser, live_server, "olive", "operator-pass-1")
    operator.goto("/exceptions/")
    operator.select_option("#propose_check_id", PRIV)
    operator.select_option("#propose_host", label="flow-1")
    operator.fill("#propose_resource_pattern", "flow-priv")
    operator.fill("#propose_justification", "device access for the lab appliance; isolated VLAN")
    operator.fill("#propose_expires_at", "2099-01-01T00:00")
    operator.get_by_role("button", name="Propose", exact=True).click()
    operator.wait_for_url("**/exceptions/*/")
    exc = ControlException.objects.get()
    assert operator.get_by_role("button", name="Approve").count() == 0
    shoot(operator, "flow-exception-proposed")
    assert cis_status(host, "5.5") == "fail"
    page.goto(f"/exceptions/{exc.pk}/")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_load_state()
    exc.refresh_from_db()
    assert exc.state == ExceptionState.APPROVED and exc.decided_by.username == "ada"
    shoot(page, "flow-exception-approved")

    # The control is excepted now, on its page and in the query layer.
    page.goto(f"/controls/{CIS}/5.5/")
    assert page.locator("h1 + .lede .state").inner_text() == "excepted"
    assert cis_status(host, "5.5") == "excepted"
    shoot(page, "flow-control-excepted")

    # A change on the host, a second scan, and the diff between the two.
    between = timezone.now()
    make_container("flow-new")
    page.goto(f"/hosts/{host.pk}/")
    scan_now_and_watch(page)
    second = ScanRun.objects.filter(host=host).order_by("-id").first()
    assert second.pk != first.pk and second.state == ScanState.SUCCEEDED, (second.error, worker.log()[-2000:])
    page.get_by_role("link", name="Open the scan").click()
    page.wait_for_url(f"**/scans/{second.pk}/")
    shoot(page, "flow-scan")
    page.get_by_role("link", name="See every change").click()
    assert page.locator("h1").inner_text() == f"Changes on flow-1: scan #{first.pk} → #{second.pk}"
    assert page.locator("ul.resources li", has_text="flow-new").count() >= 1
    shoot(page, "flow-diff")

    # As of the moment between the scans: the overview and the host as they were then.
    page.goto("/")
    page.fill("#id_at", timezone.localtime(between).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/?at=*")
    assert "Viewing posture as of" in page.locator(".asof-banner").inner_text()
    shoot(page, "flow-overview-as-of")
    page.goto(f"/hosts/{host.pk}/?at={between.isoformat().replace('+00:00', 'Z')}")
    assert f"scan #{first.pk}" in page.locator("#posture").inner_text()
    assert page.locator("table.resources-containers tr", has_text="flow-new").count() == 0
    shoot(page, "flow-host-as-of")
    page.goto(f"/hosts/{host.pk}/")
    assert page.locator("table.resources-containers tr", has_text="flow-new").count() == 1

    for other in ("/attestations/", "/integrity/", "/audit/", f"/hosts/{host.pk}/edit/"):
        page.goto(other)
        shoot(page, "flow-" + other.strip("/").replace("/", "-"))
    page.wait_for_timeout(200)
    for p in (page, operator):
        assert violations(p) == [] and p.dialogs == []
    operator.context.close()

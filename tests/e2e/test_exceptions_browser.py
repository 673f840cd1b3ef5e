"""Exceptions, attestations and evidence integrity in a real browser, as two people: an
operator proposes an exception, sees that they cannot approve it, an admin approves it, and
the failing finding turns excepted (on the scan page and in the query layer); the admin's
own proposal is refused with the workflow's message; an attestation is recorded with a file;
a tampered payload is found by "Verify now". No CSP violation, no script from hostile text.

Screenshots at 1280 px and 390 px go to $POSTURE_SCREENSHOTS (default /tmp/posture-shots)."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import Group, User

from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.models import ControlException, DockerHost, Evidence, EvidenceSetItem, ExceptionState
from posture.queries.verdicts import findings
from tests.e2e.conftest import person, shoot, violations
from tests.posture.conftest import SNAPSHOT
from tests.posture.test_ingest import chained_scan

pytestmark = pytest.mark.django_db(transaction=True)
PRIV = "container.privileged_disabled"
XSS = '<img src=x onerror="alert(\'pwned\')">'


@pytest.fixture
def host() -> DockerHost:
    host = DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock")
    snap = copy.deepcopy(SNAPSHOT)
    evaluate_scan(chained_scan(host, snap))
    return host


def verdict(host: DockerHost) -> str:
    return findings([host], check=PRIV, resource="rec-privileged").get().verdict


def test_it_lets_an_operator_propose_and_another_admin_approve_until_the_finding_is_excepted(
        browser, live_server, host):
    User.objects.create_user("olive", password="operator-pass-1").groups.add(Group.objects.get_or_create(name="operator")[0])
    User.objects.create_superuser("ada", "", "admin-pass-1")
    operator = person(browser, live_server, "olive", "operator-pass-1")
    admin = person(browser, live_server, "ada", "admin-pass-1")
    assert verdict(host) == "fail"

    operator.get_by_role("link", name="Exceptions", exact=True).click()
    assert operator.locator("h1").inner_text() == "Exceptions"
    shoot(operator, "exceptions-empty")
    operator.select_option("#propose_check_id", PRIV)
    operator.select_option("#propose_host", label="web-1")
    operator.fill("#propose_resource_pattern", "rec-priv" + XSS)  # refused by no one: a pattern is text
    operator.fill("#propose_justification", "")
    operator.fill("#propose_expires_at", "2099-01-01T00:00")
    operator.get_by_role("button", name="Propose", exact=True).click()
    operator.wait_for_load_state()
    assert "This field is required." in operator.locator("#propose_justification-errors").inner_text()
    assert not ControlException.objects.exists()
    shoot(operator, "exceptions-propose-errors")
    operator.fill("#propose_resource_pattern", "rec-privileged")
    operator.fill("#propose_justification", "vendor appliance needs raw devices; isolated VLAN")
    operator.get_by_role("button", name="Propose", exact=True).click()
    operator.wait_for_url("**/exceptions/*/")
    exc = ControlException.objects.get()
    assert "proposed" in operator.locator("h1").inner_text()
    assert operator.get_by_role("button", name="Approve").count() == 0  # operators do not decide
    assert verdict(host) == "fail"
    shoot(operator, "exception-proposed")

    admin.goto("/exceptions/?state=proposed")
    admin.get_by_role("link", name=f"#{exc.pk}").click()
    admin.get_by_role("button", name="Approve").click()
    admin.wait_for_load_state()
    assert f"Exception #{exc.pk} approved." in admin.locator(".notice").first.inner_text()
    assert "approved" in admin.locator("h1").inner_text()
    assert "exception.approved" in admin.locator("table").inner_text()
    shoot(admin, "exception-approved")
    exc.refresh_from_db()
    assert exc.state == ExceptionState.APPROVED and exc.decided_by.username == "ada"
    assert verdict(host) == "excepted"

    scan_id = host.scans.get().pk
    operator.goto(f"/scans/{scan_id}/?check={PRIV}")
    row = operator.locator("tr", has_text="rec-privileged")
    assert "excepted" in row.first.inner_text()

    # The admin's own proposal: the Approve button is there, the workflow refuses it.
    mine = workflow.propose(User.objects.get(username="ada"), check_id="container.pids_limited",
                            justification="load test", expires_at=exc.expires_at)
    admin.goto(f"/exceptions/{mine.pk}/")
    admin.get_by_role("button", name="Approve").click()
    admin.wait_for_load_state()
    assert workflow.SELF_APPROVAL in admin.get_by_role("alert").inner_text()
    shoot(admin, "exception-self-approval-refused")
    mine.refresh_from_db()
    assert mine.state == ExceptionState.PROPOSED

    # Hostile and unbroken text stays text and inside a phone screen.
    hostile = workflow.propose(User.objects.get(username="olive"), check_id=PRIV, host=host,
                               resource_pattern=XSS + "x" * 250, justification=XSS + "y" * 2000,
                               expires_at=exc.expires_at)
    operator.set_viewport_size({"width": 390, "height": 844})
    for path in ("/exceptions/", f"/exceptions/{hostile.pk}/", "/attestations/", "/integrity/",
                 f"/integrity/{host.pk}/"):
        operator.goto(path)
        assert operator.evaluate("document.documentElement.scrollWidth") <= 390, path
        assert operator.locator("img[src=x]").count() == 0, path
    operator.set_viewport_size({"width": 1280, "height": 900})
    operator.goto(f"/exceptions/{hostile.pk}/")
    assert operator.get_by_text(XSS + "x" * 250).count() >= 1  # in full, as text
    operator.goto("/exceptions/")
    shoot(operator, "exceptions-list")
    for page in (operator, admin):
        assert violations(page) == [] and page.dialogs == []
        page.context.close()


def test_it_records_an_attestation_and_finds_a_tampered_payload(browser, live_server, host, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    User.objects.create_superuser("ada", "", "admin-pass-1")
    admin = person(browser, live_server, "ada", "admin-pass-1")
    admin.get_by_role("link", name="Attestations", exact=True).click()
    admin.select_option("#attest_check_id", "manual.host_os_hardened")
    admin.fill("#attest_statement", "CIS Debian L1 applied by the platform team")
    admin.fill("#attest_valid_until", "2099-01-01T00:00")
    bad = tmp_path / "report.pdf"
    bad.write_bytes(b"<html>not a pdf</html>")
    admin.set_input_files("#attest_file", str(bad))
    admin.get_by_role("button", name="Record attestation").click()
    admin.wait_for_load_state()
    assert "is not a PDF file" in admin.locator("form.form").inner_text()
    shoot(admin, "attestation-bad-file")
    good = tmp_path / "report.txt"
    good.write_text("hardening report\n")
    admin.fill("#attest_statement", "CIS Debian L1 applied by the platform team")
    admin.fill("#attest_valid_until", "2099-01-01T00:00")
    admin.set_input_files("#attest_file", str(good))
    admin.get_by_role("button", name="Record attestation").click()
    admin.wait_for_load_state()
    assert "recorded" in admin.locator(".notice").first.inner_text()
    assert "valid" in admin.locator("table.attestations").inner_text()
    shoot(admin, "attestations")

    admin.get_by_role("link", name="Integrity", exact=True).click()
    admin.get_by_role("button", name="Verify now").click()
    admin.wait_for_load_state()
    assert "chain is intact" in admin.locator(".notice").first.inner_text()
    scan = host.scans.get()
    victim = EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id, kind="container").first()
    Evidence.objects.filter(pk=victim.evidence_id).update(payload={"name": "forged"})
    admin.get_by_role("button", name="Verify now").click()
    admin.wait_for_load_state()
    assert f"scan #{scan.pk}: payload" in admin.locator("ul.problems").inner_text()
    shoot(admin, "integrity-host-broken")
    admin.goto("/integrity/")
    assert "broken" in admin.locator("table.integrity").inner_text()
    shoot(admin, "integrity")
    assert violations(admin) == []
    admin.context.close()

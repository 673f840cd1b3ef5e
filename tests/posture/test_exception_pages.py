"""The exception and attestation pages: every page x role, propose / approve / reject /
revoke through the workflow the API uses (self-approval refused with its message on the
page), a proposal approved by another admin turning the finding excepted, attestations with
the API's file checks (a bad file stores nothing), CSRF on every form."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.models import Attestation, AuditEvent, ControlException, DockerHost, ExceptionState
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db
PRIV = "container.privileged_disabled"
MANUAL = "manual.host_os_hardened"
HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def host() -> DockerHost:
    return DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock")


@pytest.fixture
def scanned(host) -> DockerHost:
    evaluate_scan(stored_scan(host, SNAPSHOT))
    return host


@pytest.fixture
def proposal(operator, host) -> ControlException:
    return workflow.propose(operator, check_id=PRIV, host=host, resource_pattern="rec-*",
                            justification="vendor appliance", expires_at=timezone.now() + timedelta(days=30))


def as_user(user: User | None, **kwargs) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def later(days: int = 30) -> str:
    return (timezone.now() + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def propose_data(**overrides) -> dict:
    return {"check_id": PRIV, "resource_pattern": "rec-privileged", "justification": "needs raw devices",
            "expires_at": later(), **overrides}


# --- page x role ------------------------------------------------------------------------------

READ_PAGES = ["/exceptions/", "/exceptions/{pk}/", "/attestations/", "/integrity/", "/integrity/{host}/"]


@pytest.mark.parametrize("path", READ_PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(proposal, host, path):
    response = as_user(None).get(path.format(pk=proposal.pk, host=host.pk))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", READ_PAGES)
def test_it_refuses_accounts_without_a_role(outsider, proposal, host, path):
    response = as_user(outsider).get(path.format(pk=proposal.pk, host=host.pk))
    assert response.status_code == 403 and "no posture role" in response.content.decode()


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
@pytest.mark.parametrize("path", READ_PAGES)
def test_it_lets_every_role_read(personas, proposal, host, role, path):
    assert as_user(personas[role]).get(path.format(pk=proposal.pk, host=host.pk)).status_code == 200


@pytest.mark.parametrize("role, form", [("auditor", False), ("operator", True), ("admin", True)])
@pytest.mark.parametrize("path, button", [("/exceptions/", "Propose"), ("/attestations/", "Record attestation")])
def test_it_offers_the_forms_only_to_operators_and_admins(personas, role, form, path, button):
    body = as_user(personas[role]).get(path).content.decode()
    assert (f">{button}</button>" in body) is form


@pytest.mark.parametrize("role, approve, revoke", [("auditor", False, False), ("operator", False, True),
                                                    ("admin", True, True)])
def test_it_offers_only_the_buttons_the_role_may_use(personas, proposal, role, approve, revoke):
    body = as_user(personas[role]).get(f"/exceptions/{proposal.pk}/").content.decode()
    assert (">Approve</button>" in body) is approve and (">Reject</button>" in body) is approve
    assert (">Revoke</button>" in body) is revoke


def test_it_refuses_an_auditor_every_write_and_changes_nothing(auditor, proposal):
    client = as_user(auditor)
    for path, data in [("/exceptions/", propose_data()), (f"/exceptions/{proposal.pk}/approve/", {}),
                       (f"/exceptions/{proposal.pk}/reject/", {}), (f"/exceptions/{proposal.pk}/revoke/", {}),
                       ("/attestations/", {"check_id": MANUAL, "statement": "x", "valid_until": later()})]:
        response = client.post(path, data)
        assert response.status_code == 403 and "auditor role is read-only" in response.content.decode(), path
    proposal.refresh_from_db()
    assert proposal.state == ExceptionState.PROPOSED and ControlException.objects.count() == 1
    assert not Attestation.objects.exists()


@pytest.mark.parametrize("path", ["/exceptions/", "/exceptions/{pk}/approve/", "/exceptions/{pk}/revoke/",
                                  "/attestations/", "/integrity/{host}/verify/"])
def test_it_refuses_a_post_without_a_csrf_token(admin, proposal, host, path):
    response = as_user(admin, enforce_csrf_checks=True).post(path.format(pk=proposal.pk, host=host.pk), propose_data())
    assert response.status_code == 403 and "CSRF" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.state == ExceptionState.PROPOSED and ControlException.objects.count() == 1


def test_it_puts_a_csrf_token_in_every_form(admin, proposal, host):
    client = as_user(admin)
    for path in ("/exceptions/", f"/exceptions/{proposal.pk}/", "/attestations/", "/integrity/",
                 f"/integrity/{host.pk}/"):
        body = client.get(path).content.decode()
        assert 'method="post"' in body, path
        assert body.count('method="post"') == body.count('name="csrfmiddlewaretoken"'), path


# --- the exception workflow -----------------------------------------------------------------------

def test_it_turns_a_finding_excepted_once_another_admin_approves_an_operators_proposal(operator, admin, scanned):
    assert findings([scanned], check=PRIV, resource="rec-privileged").get().verdict == "fail"
    response = as_user(operator).post("/exceptions/", propose_data(host=scanned.pk))
    exc = ControlException.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exceptions/{exc.pk}/"
    assert exc.state == ExceptionState.PROPOSED and exc.proposed_by == operator and exc.host == scanned
    assert findings([scanned], check=PRIV, resource="rec-privileged").get().verdict == "fail"  # proposed: no effect

    response = as_user(admin).post(f"/exceptions/{exc.pk}/approve/", follow=True)
    assert response.status_code == 200 and f"Exception #{exc.pk} approved." in response.content.decode()
    exc.refresh_from_db()
    assert exc.state == ExceptionState.APPROVED and exc.decided_by == admin
    assert findings([scanned], check=PRIV, resource="rec-privileged").get().verdict == "excepted"
    body = as_user(admin).get(f"/exceptions/{exc.pk}/").content.decode()
    assert "exception.proposed" in body and "exception.approved" in body  # its audit trail


def test_it_refuses_self_approval_with_the_workflows_message_on_the_page(admin):
    client = as_user(admin)
    client.post("/exceptions/", propose_data())
    exc = ControlException.objects.get()
    response = client.post(f"/exceptions/{exc.pk}/approve/")
    assert response.status_code == 403
    body = response.content.decode()
    assert workflow.SELF_APPROVAL in body and f"Exception #{exc.pk}" in body
    exc.refresh_from_db()
    assert exc.state == ExceptionState.PROPOSED and exc.decided_by is None
    assert not AuditEvent.objects.filter(action="exception.approved").exists()


def test_it_rejects_and_then_refuses_to_approve_a_rejected_one(admin, proposal):
    client = as_user(admin)
    assert client.post(f"/exceptions/{proposal.pk}/reject/").status_code == 302
    proposal.refresh_from_db()
    assert proposal.state == ExceptionState.REJECTED and proposal.decided_by == admin
    response = client.post(f"/exceptions/{proposal.pk}/approve/")
    assert response.status_code == 400 and "is rejected, not proposed" in response.content.decode()


def test_it_revokes_an_approved_exception_and_the_failure_returns(operator, admin, scanned):
    exc = workflow.propose(operator, check_id=PRIV, host=scanned, justification="x",
                           expires_at=timezone.now() + timedelta(days=3))
    workflow.decide(admin, exc, approve=True)
    assert findings([scanned], check=PRIV, resource="rec-privileged").get().verdict == "excepted"
    assert as_user(operator).post(f"/exceptions/{exc.pk}/revoke/").status_code == 302
    exc.refresh_from_db()
    assert exc.state == ExceptionState.REVOKED and exc.revoked_by == operator
    assert findings([scanned], check=PRIV, resource="rec-privileged").get().verdict == "fail"
    assert ">revoked<" in as_user(operator).get("/exceptions/").content.decode()


def test_it_shows_bad_proposals_beside_their_fields_and_stores_nothing(operator):
    client = as_user(operator)
    response = client.post("/exceptions/", propose_data(check_id="no.such.check", justification="", expires_at="soon"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"check_id", "justification", "expires_at"}
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post("/exceptions/", propose_data(expires_at=past))
    assert response.status_code == 400 and "the expiry must be in the future" in response.content.decode()
    assert not ControlException.objects.exists() and not AuditEvent.objects.exists()


def test_it_marks_an_expired_exception_as_expired(operator, admin, proposal):
    workflow.decide(admin, proposal, approve=True)
    ControlException.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    body = as_user(operator).get("/exceptions/").content.decode()
    assert 'class="state state-expired"' in body and ">approved<" not in body


def test_it_filters_with_the_apis_filterset_and_refuses_unknown_parameters(operator, admin, proposal, host):
    other = workflow.propose(operator, check_id="container.pids_limited", justification="x",
                             expires_at=timezone.now() + timedelta(days=1))
    workflow.decide(admin, other, approve=True)
    client = as_user(operator)
    assert list(client.get("/exceptions/?state=approved").context["page"]) == [other]
    assert list(client.get(f"/exceptions/?check={PRIV}").context["page"]) == [proposal]
    assert [e.pk for e in client.get(f"/exceptions/?in_force_at={timezone.now().isoformat()}".replace("+", "%2B"))
            .context["page"]] == [other.pk]
    response = client.get("/exceptions/?colour=red")
    assert response.status_code == 400 and "colour" in response.content.decode()
    response = client.get("/exceptions/?state=bogus")
    assert response.status_code == 400


def test_it_escapes_hostile_patterns_and_justifications(operator, host):
    workflow.propose(operator, check_id=PRIV, host=host, resource_pattern=HOSTILE, justification=HOSTILE,
                     expires_at=timezone.now() + timedelta(days=1))
    for path in ("/exceptions/", f"/exceptions/{ControlException.objects.get().pk}/"):
        body = as_user(operator).get(path).content.decode()
        assert HOSTILE not in body and ESCAPED in body


# --- attestations ---------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_it_records_an_attestation_with_a_file(operator, host, media):
    response = as_user(operator).post("/attestations/", {
        "check_id": MANUAL, "host": host.pk, "statement": "CIS Debian L1 applied", "valid_until": later(90),
        "file": SimpleUploadedFile("hardening.pdf", PDF, content_type="application/pdf")})
    assert response.status_code == 302
    att = Attestation.objects.get()
    assert att.host == host and att.attested_by == operator and att.file.read() == PDF
    assert AuditEvent.objects.filter(action="attestation.created").count() == 1


@pytest.mark.parametrize("name, content, message", [
    ("report.html", b"<html><script>x</script></html>", "are not accepted"),
    ("report.pdf", b"MZ\x90\x00 not a pdf", "is not a PDF file"),
    ("notes.txt", b"<html>hi</html>", "starts with markup"),
])
def test_it_refuses_a_bad_attestation_file_and_stores_nothing(operator, media, name, content, message):
    response = as_user(operator).post("/attestations/", {
        "check_id": MANUAL, "statement": "done", "valid_until": later(),
        "file": SimpleUploadedFile(name, content, content_type="application/pdf")})
    assert response.status_code == 400 and message in response.content.decode()
    assert not Attestation.objects.exists() and not AuditEvent.objects.exists()
    assert not (Path(media).exists() and [p for p in Path(media).rglob("*") if p.is_file()])


def test_it_refuses_an_oversized_attestation_upload_before_reading_it(operator, settings, media):
    settings.POSTURE_ATTESTATION_MAX_BYTES = 1024
    response = as_user(operator).post("/attestations/", {
        "check_id": MANUAL, "statement": "done", "valid_until": later(),
        "file": SimpleUploadedFile("big.txt", b"a" * (200 * 1024), content_type="text/plain")})
    assert response.status_code == 400 and "attestation files may be at most 1024 bytes" in response.content.decode()
    assert not Attestation.objects.exists()


def test_it_offers_only_manual_checks_and_refuses_others(operator):
    body = as_user(operator).get("/attestations/").content.decode()
    assert f'value="{MANUAL}"' in body and f'value="{PRIV}"' not in body.split('id="attest"')[1]
    response = as_user(operator).post("/attestations/", {"check_id": PRIV, "statement": "x", "valid_until": later()})
    assert response.status_code == 400 and not Attestation.objects.exists()


def test_it_marks_an_expired_attestation(operator):
    att = workflow.attest(operator, check_id=MANUAL, statement="done", valid_until=timezone.now() + timedelta(days=1))
    body = as_user(operator).get("/attestations/").content.decode()
    assert "state-valid" in body and "state-expired" not in body
    Attestation.objects.filter(pk=att.pk).update(valid_until=timezone.now() - timedelta(minutes=1))
    assert "state state-expired" in as_user(operator).get("/attestations/").content.decode()

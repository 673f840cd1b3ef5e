"""Roles: every refusal names the role the account has and what the action needs, and an
exception is never approved by the person who proposed it (whatever their role)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from posture import roles
from posture.jobs import exceptions as exception_jobs
from posture.models import ControlException, DockerHost, ExceptionState
from tests.posture.conftest import api_error, member
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db
NO_ROLE = "your account has no posture role: ask an admin to add you to the operator or auditor group"
SELF = "you proposed this exception; another approver must approve it"


def proposal() -> dict:
    return {"check_id": "container.privileged_disabled", "resource_pattern": "rec-privileged",
            "justification": "vendor agent", "expires_at": (timezone.now() + timedelta(days=7)).isoformat()}


def propose(user) -> ControlException:
    return exception_jobs.propose(user, check_id="container.privileged_disabled", justification="vendor agent",
                                  expires_at=timezone.now() + timedelta(days=7))


# --- item 10: a second pair of eyes ---------------------------------------------------------

def test_it_refuses_an_admin_approving_their_own_exception_over_the_api(personas):
    admin = client_for(personas["admin"])
    created = admin.post("/api/v1/exceptions/", proposal(), format="json")
    assert created.status_code == 201
    response = admin.post(f"/api/v1/exceptions/{created.json()['id']}/approve/")
    assert response.status_code == 403 and api_error(response)["message"] == SELF
    assert ControlException.objects.get().state == ExceptionState.PROPOSED


def test_it_lets_another_admin_approve_it(personas):
    created = client_for(personas["admin"]).post("/api/v1/exceptions/", proposal(), format="json").json()
    second = member("second-admin", None)
    second.is_superuser = True
    second.save()
    response = client_for(second).post(f"/api/v1/exceptions/{created['id']}/approve/")
    assert response.status_code == 200 and response.json()["state"] == "approved"
    assert response.json()["proposed_by"] == "admin" and response.json()["decided_by"] == "second-admin"


def test_it_refuses_self_approval_in_the_job_for_every_role(personas):
    admin = personas["admin"]
    exc = propose(admin)
    with pytest.raises(PermissionDenied, match=SELF):
        exception_jobs.decide(admin, exc, approve=True)
    # An operator who proposes and is later made an admin still cannot approve it.
    operator = personas["operator"]
    exc2 = propose(operator)
    operator.is_superuser = True
    operator.save()
    with pytest.raises(PermissionDenied, match=SELF):
        exception_jobs.decide(operator, exc2, approve=True)
    assert not ControlException.objects.filter(state=ExceptionState.APPROVED).exists()


def test_it_lets_a_proposer_withdraw_by_rejecting(personas):
    exc = propose(personas["admin"])
    assert exception_jobs.decide(personas["admin"], exc, approve=False).state == ExceptionState.REJECTED


# --- item 11: refusals say what the role lacks ------------------------------------------------

@pytest.mark.parametrize("method, url, body, doing", [
    ("post", "/api/v1/exceptions/", proposal(), "proposing exceptions"),
    ("post", "/api/v1/hosts/", {"name": "n1", "url": "unix:///x.sock"}, "registering hosts"),
    ("post", "/api/v1/scans/", {"host": "h1"}, "queueing scans"),
    ("patch", "/api/v1/hosts/{host}/", {"enabled": False}, "changing hosts"),
    ("put", "/api/v1/hosts/{host}/", {"name": "h1", "url": "unix:///x.sock"}, "changing hosts"),
    ("delete", "/api/v1/hosts/{host}/", None, "archiving hosts"),
    ("post", "/api/v1/attestations/", {"check_id": "manual.host_os_hardened"}, "recording attestations"),
    ("post", "/api/v1/exceptions/{exc}/revoke/", None, "revoking exceptions"),
])
def test_it_tells_an_auditor_the_role_is_read_only(personas, method, url, body, doing):
    host = DockerHost.objects.create(name="h1", url="unix:///x.sock")
    exc = propose(personas["operator"])
    url = url.format(host=host.pk, exc=exc.pk)
    response = getattr(client_for(personas["auditor"]), method)(url, body, format="json")
    assert response.status_code == 403
    assert api_error(response)["message"] == f"the auditor role is read-only: {doing} needs the operator or admin role"


def test_it_tells_an_auditor_and_an_operator_that_approving_needs_an_admin(personas):
    exc = propose(personas["operator"])
    auditor = client_for(personas["auditor"]).post(f"/api/v1/exceptions/{exc.pk}/approve/")
    assert api_error(auditor)["message"] == "the auditor role is read-only: approving exceptions needs the admin role"
    operator = client_for(personas["operator"]).post(f"/api/v1/exceptions/{exc.pk}/reject/")
    assert operator.status_code == 403
    assert api_error(operator)["message"] == "the operator role does not allow rejecting exceptions: it needs the admin role"


@pytest.mark.parametrize("method, url", [("get", "/api/v1/hosts/"), ("post", "/api/v1/exceptions/"),
                                         ("get", "/api/v1/audit-events/")])
def test_it_tells_an_account_without_a_role_whom_to_ask(personas, method, url):
    response = getattr(client_for(personas["outsider"]), method)(url, {}, format="json")
    assert response.status_code == 403 and api_error(response)["message"] == NO_ROLE


def test_it_names_the_missing_role_in_the_job_functions(personas):
    with pytest.raises(PermissionDenied, match="the auditor role is read-only: proposing exceptions needs"):
        propose(personas["auditor"])
    with pytest.raises(PermissionDenied, match=NO_ROLE):
        propose(personas["outsider"])
    exc = propose(personas["operator"])
    with pytest.raises(PermissionDenied, match="the operator role does not allow approving exceptions"):
        exception_jobs.decide(personas["operator"], exc, approve=True)


def test_it_gives_an_account_in_both_groups_both_roles(db):
    both = member("bea", "operator")
    both.groups.add(*member("tmp", "auditor").groups.all())
    assert roles.roles_of(both) == {"operator", "auditor"}
    assert roles.can_operate(both) and roles.can_read_audit(both) and roles.role_of(both) == "operator"


def test_it_shows_the_refusal_on_pages(client, personas):
    client.force_login(personas["outsider"])
    response = client.get("/")
    assert response.status_code == 403 and NO_ROLE in response.content.decode()
    client.force_login(personas["operator"])
    response = client.get("/audit/")
    assert response.status_code == 403
    assert ("the operator role does not allow reading the audit trail: it needs the auditor or admin role"
            in response.content.decode())

"""The audit trail: read by auditors and admins over the API (/api/v1/audit-events/) and on
a page (/audit/), newest first, paginated, filtered by one FilterSet; bad filters are 400s
that list the valid choices; hostile strings are escaped."""

from __future__ import annotations

import pytest

from posture.models.audit import AuditEvent, record
from tests.posture.conftest import api_error
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def trail(admin, operator):
    record("host.created", "h1", actor=operator, url="unix:///x.sock")
    record("scan.requested", "h1", actor=operator, scan=1)
    record("exception.proposed", "exception #1", actor=operator, check="container.privileged_disabled")
    record("exception.approved", "exception #1", actor=admin, check="container.privileged_disabled")
    record("host.created", HOSTILE, actor_label="cli", url=f"unix:///{HOSTILE}")
    return list(AuditEvent.objects.order_by("-at", "-id"))


@pytest.mark.parametrize("who, status", [(None, 401), ("outsider", 403), ("auditor", 200), ("operator", 403),
                                         ("admin", 200)])
def test_it_lets_auditors_and_admins_read_the_trail(personas, trail, who, status):
    response = client_for(personas.get(who)).get("/api/v1/audit-events/")
    assert response.status_code == status
    if who == "operator":
        assert api_error(response)["message"] == ("the operator role does not allow reading the audit trail: "
                                             "it needs the auditor or admin role")


def test_it_lists_newest_first_with_pages(personas, trail, django_assert_max_num_queries):
    client = client_for(personas["auditor"])
    with django_assert_max_num_queries(4):
        body = client.get("/api/v1/audit-events/?page_size=2").json()
    assert body["count"] == 5 and body["next"] and [e["id"] for e in body["results"]] == [e.pk for e in trail[:2]]
    assert body["results"][0] == {"id": trail[0].pk, "at": body["results"][0]["at"], "actor": "cli",
                                  "action": "host.created", "target": HOSTILE, "detail": {"url": f"unix:///{HOSTILE}"}}
    for _ in range(20):
        record("scan.requested", "h1", actor_label="system")
    with django_assert_max_num_queries(4):
        assert client.get("/api/v1/audit-events/").json()["count"] == 25


def test_it_filters_by_action_actor_and_target(personas, trail):
    client = client_for(personas["admin"])
    approved = client.get("/api/v1/audit-events/?action=exception.approved").json()["results"]
    assert [(e["actor"], e["target"]) for e in approved] == [("admin", "exception #1")]
    by_olive = client.get("/api/v1/audit-events/?actor=olive").json()
    assert by_olive["count"] == 3
    assert client.get("/api/v1/audit-events/?target=exception%20%231").json()["count"] == 2
    assert client.get("/api/v1/audit-events/?actor=nobody").json()["count"] == 0


def test_it_refuses_an_unknown_action_listing_the_valid_ones(personas, trail):
    record("host.archived", "h1", actor_label="cli")  # an action not in the known list, present in the trail
    response = client_for(personas["auditor"]).get("/api/v1/audit-events/?action=exception.aproved")
    assert response.status_code == 400
    message = api_error(response)["fields"]["action"][0]
    assert message.startswith("exception.aproved is not one of the valid choices: ")
    assert "exception.approved" in message and "host.archived" in message and "scan.requested" in message


def test_it_refuses_writes_to_the_trail(personas, trail):
    client = client_for(personas["admin"])
    assert client.post("/api/v1/audit-events/", {"action": "x"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/audit-events/{trail[0].pk}/").status_code == 405
    assert AuditEvent.objects.count() == 5


@pytest.mark.parametrize("who, status", [("outsider", 403), ("auditor", 200), ("operator", 403), ("admin", 200)])
def test_it_serves_the_audit_page_to_auditors_and_admins(client, personas, trail, who, status):
    client.force_login(personas[who])
    response = client.get("/audit/")
    assert response.status_code == status
    if status == 200:
        body = response.content.decode()
        assert HOSTILE not in body and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
        assert body.index("exception.approved") < body.index("exception.proposed")  # newest first
        assert 'href="/audit/"' in body  # in the navigation


def test_it_sends_anonymous_visitors_from_the_audit_page_to_login(client, trail):
    response = client.get("/audit/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_filters_and_pages_the_audit_page(client, auditor, trail):
    client.force_login(auditor)
    for _ in range(60):
        record("scan.requested", "h1", actor_label="system")
    first = client.get("/audit/?action=scan.requested").content.decode()
    assert "page 1 of 2 (61 in all)" in first and "?action=scan.requested&amp;page=2" in first
    assert "exception.approved</code>" not in first
    bad = client.get("/audit/?action=nope")
    assert bad.status_code == 400 and "nope is not one of the valid choices" in bad.content.decode()


def test_it_hides_the_audit_link_from_operators(client, operator):
    client.force_login(operator)
    body = client.get("/").content.decode()
    assert 'href="/audit/"' not in body and 'href="/attestations/"' in body

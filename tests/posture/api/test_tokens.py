"""Personal API tokens over the API: shown once, stored hashed, named, expiring, revocable,
audited; a token acts with its owner's roles; refusals say why (401) and never what a wrong
secret's token is."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from posture.jobs.tokens import create_token
from posture.models import ApiToken, AuditEvent
from tests.posture.conftest import api_error, member
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db
TOKEN_FORMAT = re.compile(r"pst_[a-z0-9]{8}_[A-Za-z0-9]{40}")


def bearer(token: str, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
    return client


def every_stored_value() -> str:
    """Every row of every table, as PostgreSQL prints it: where a leaked secret would show."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT t::text FROM {connection.ops.quote_name(table)} t")
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


# --- creation: shown once, only the hash stored ---------------------------------------------

def test_it_shows_a_new_token_once_and_stores_only_its_hash(operator):
    client = client_for(operator)
    response = client.post("/api/v1/tokens/", {"name": "nightly export", "expires_in_days": 30}, format="json")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    token = body["token"]
    assert TOKEN_FORMAT.fullmatch(token)
    assert body["prefix"] == token[:12] and body["name"] == "nightly export" and body["owner"] == "olive"
    assert body["state"] == "active" and body["expires_at"] and body["last_used_at"] is None
    secret = token.split("_", 2)[2]
    row = ApiToken.objects.get()
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = every_stored_value()
    assert secret not in stored and token not in stored
    assert row.display_prefix in stored  # the prefix is kept, for display
    later = client.get("/api/v1/tokens/").content.decode() + client.get(f"/api/v1/tokens/{row.pk}/").content.decode()
    assert secret not in later and '"token"' not in later and row.display_prefix in later


def test_it_audits_creating_and_revoking(operator):
    created = client_for(operator).post("/api/v1/tokens/", {"name": "ci"}, format="json").json()
    client_for(operator).post(f"/api/v1/tokens/{created['id']}/revoke/")
    events = list(AuditEvent.objects.order_by("id").values("action", "actor_label", "target", "detail"))
    assert [e["action"] for e in events] == ["token.created", "token.revoked"]
    assert all(e["actor_label"] == "olive" and e["target"] == f"token #{created['id']}" for e in events)
    assert events[0]["detail"] == {"owner": "olive", "name": "ci", "prefix": created["prefix"], "expires_at": None}
    assert created["token"] not in str(events)
    trail = client_for(member("aud", "auditor")).get("/api/v1/audit-events/?action=token.revoked").json()
    assert trail["count"] == 1


# --- using it -----------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_it_authenticates_as_the_owner_with_their_roles(auditor, scheme):
    new = create_token(auditor, "reader")
    client = bearer(new.token, scheme)
    assert client.get("/api/v1/hosts/").status_code == 200
    refused = client.post("/api/v1/hosts/", {"name": "n1", "url": "unix:///var/run/docker.sock"}, format="json")
    assert refused.status_code == 403
    assert api_error(refused)["message"] == "the auditor role is read-only: registering hosts needs the operator or admin role"


def test_it_refuses_a_token_whose_owner_lost_every_role(operator):
    new = create_token(operator, "ops")
    operator.groups.clear()
    response = bearer(new.token).get("/api/v1/hosts/")
    assert response.status_code == 403 and "no posture role" in api_error(response)["message"]


def test_it_refuses_a_token_whose_owner_was_deactivated(operator):
    new = create_token(operator, "ops")
    operator.is_active = False
    operator.save()
    response = bearer(new.token).get("/api/v1/hosts/")
    assert response.status_code == 401 and api_error(response)["code"] == "user_inactive"


def test_it_records_last_use_at_most_once_a_minute(operator):
    new = create_token(operator, "ops")
    client = bearer(new.token)
    assert client.get("/api/v1/hosts/").status_code == 200
    first = ApiToken.objects.get().last_used_at
    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    client.get("/api/v1/hosts/")
    assert ApiToken.objects.get().last_used_at == first  # within the minute: not written again
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/hosts/")
    assert ApiToken.objects.get().last_used_at > first


def test_it_refuses_an_expired_token_saying_when(operator):
    new = create_token(operator, "short", expires_in_days=1)
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(hours=1))
    expired_at = ApiToken.objects.get().expires_at
    response = bearer(new.token).get("/api/v1/hosts/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="posture"'
    assert api_error(response) == {"status": 401, "code": "token_expired",
                               "message": f"token expired on {expired_at:%Y-%m-%d %H:%M} UTC"}


def test_it_refuses_a_revoked_token(operator):
    new = create_token(operator, "gone")
    assert bearer(new.token).get("/api/v1/hosts/").status_code == 200
    client_for(operator).post(f"/api/v1/tokens/{new.row.pk}/revoke/")
    response = bearer(new.token).get("/api/v1/hosts/")
    assert response.status_code == 401 and api_error(response)["code"] == "token_revoked"
    assert api_error(response)["message"].startswith("token revoked on ")


@pytest.mark.parametrize("revoked", [False, True])
def test_it_refuses_a_wrong_secret_with_the_right_prefix_without_telling_the_state(operator, revoked):
    new = create_token(operator, "real")
    if revoked:
        ApiToken.objects.update(revoked_at=timezone.now())
    prefix, secret = new.token[:13], new.token[13:]
    forged = prefix + ("A" if secret[0] != "A" else "B") + secret[1:]
    response = bearer(forged).get("/api/v1/hosts/")
    assert response.status_code == 401
    assert api_error(response) == {"status": 401, "code": "token_invalid", "message": "invalid token"}
    assert ApiToken.objects.get().last_used_at is None


@pytest.mark.parametrize("header, message", [
    ("Bearer", "invalid Authorization header"),
    ("Bearer a b", "invalid Authorization header"),
    ("Bearer not-a-token", "invalid token: not a posture API token"),
    ("Bearer pst_ABCDEFGH_" + "x" * 40, "invalid token: not a posture API token"),
    ("Token 0123456789abcdef0123456789abcdef01234567", "this is an old plain API token"),
    ("Bearer pst_abcdefgh_" + "x" * 40, "invalid token"),
])
def test_it_refuses_malformed_credentials_with_a_clear_401(db, header, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/hosts/")
    assert response.status_code == 401 and api_error(response)["message"].startswith(message)


def test_it_asks_for_credentials_with_a_bearer_challenge(db):
    response = APIClient().get("/api/v1/hosts/")
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="posture"'
    assert api_error(response)["code"] == "not_authenticated" and "Authorization: Bearer" in api_error(response)["message"]


# --- who may do what ------------------------------------------------------------------------

@pytest.mark.parametrize("who, status", [(None, 401), ("outsider", 403), ("auditor", 201), ("operator", 201),
                                         ("admin", 201)])
def test_it_lets_every_role_create_tokens_for_themselves(personas, who, status):
    response = client_for(personas.get(who)).post("/api/v1/tokens/", {"name": "mine"}, format="json")
    assert response.status_code == status
    if status == 201:
        assert ApiToken.objects.get().owner == personas[who]
    if who == "outsider":
        assert "no posture role" in api_error(response)["message"]


def test_it_never_lets_a_token_create_tokens(admin):
    new = create_token(admin, "automation")
    response = bearer(new.token).post("/api/v1/tokens/", {"name": "successor"}, format="json")
    assert response.status_code == 403 and "cannot create tokens" in api_error(response)["message"]
    assert ApiToken.objects.count() == 1


def test_it_creates_tokens_from_a_logged_in_session_with_csrf(operator):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(operator)
    refused = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert refused.status_code == 403 and "CSRF" in api_error(refused)["message"]
    client.get("/tokens/")  # the page sets the CSRF cookie
    created = client.post("/api/v1/tokens/", {"name": "x"}, format="json",
                          HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert created.status_code == 201


def test_it_lists_own_tokens_and_everyones_for_an_admin(personas):
    for who in ("auditor", "operator", "admin"):
        create_token(personas[who], f"{who}-token")
    mine = client_for(personas["operator"]).get("/api/v1/tokens/").json()
    assert [t["name"] for t in mine["results"]] == ["operator-token"]
    everyone = client_for(personas["admin"]).get("/api/v1/tokens/").json()
    assert {t["owner"] for t in everyone["results"]} == {"audrey", "olive", "admin"}
    only = client_for(personas["admin"]).get("/api/v1/tokens/?owner=audrey").json()
    assert [t["name"] for t in only["results"]] == ["auditor-token"]


def test_it_filters_by_state_and_refuses_an_unknown_state(operator):
    create_token(operator, "live")
    gone = create_token(operator, "gone")
    old = create_token(operator, "old", expires_in_days=1)
    ApiToken.objects.filter(pk=gone.row.pk).update(revoked_at=timezone.now())
    ApiToken.objects.filter(pk=old.row.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client = client_for(operator)
    for state, names in (("active", ["live"]), ("revoked", ["gone"]), ("expired", ["old"])):
        body = client.get(f"/api/v1/tokens/?state={state}").json()
        assert [t["name"] for t in body["results"]] == names and {t["state"] for t in body["results"]} == {state}
    bad = client.get("/api/v1/tokens/?state=bogus")
    assert bad.status_code == 400
    assert api_error(bad)["fields"]["state"] == ["bogus is not one of the valid choices: active, expired, revoked"]


@pytest.mark.parametrize("method", ["post", "delete"])
def test_it_revokes_without_deleting_and_only_once(operator, method):
    new = create_token(operator, "ci")
    client = client_for(operator)
    url = f"/api/v1/tokens/{new.row.pk}/" + ("revoke/" if method == "post" else "")
    first = getattr(client, method)(url)
    assert first.status_code == 200 and first.json()["state"] == "revoked" and first.json()["revoked_by"] == "olive"
    again = getattr(client, method)(url)
    assert again.status_code == 200 and again.json()["revoked_at"] == first.json()["revoked_at"]
    assert ApiToken.objects.filter(pk=new.row.pk).exists()
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_it_hides_other_accounts_tokens_but_lets_an_admin_revoke_them(personas):
    new = create_token(personas["auditor"], "audrey's")
    assert client_for(personas["operator"]).post(f"/api/v1/tokens/{new.row.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get().revoked_at is None
    response = client_for(personas["admin"]).post(f"/api/v1/tokens/{new.row.pk}/revoke/")
    assert response.status_code == 200 and response.json()["revoked_by"] == "admin"
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.actor_label == "admin" and event.detail["owner"] == "audrey"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_it_never_changes_a_token(operator, method):
    new = create_token(operator, "fixed")
    response = getattr(client_for(operator), method)(f"/api/v1/tokens/{new.row.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 405 and api_error(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize("body, field, message", [
    ({"name": ""}, "name", "This field may not be blank."),
    ({"name": "   "}, "name", "This field may not be blank."),
    ({"name": "a\nb"}, "name", "no control characters"),
    ({"name": "x" * 101}, "name", "no more than 100 characters"),
    ({"name": "x", "expires_in_days": 0}, "expires_in_days", "greater than or equal to 1"),
    ({"name": "x", "expires_in_days": 5000}, "expires_in_days", "less than or equal to 3650"),
    ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "must be in the future"),
    ({"name": "x", "expires_at": "tomorrow"}, "expires_at", "Datetime has wrong format"),
    ({"name": "x", "expires_in_days": 3, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at", "not both"),
])
def test_it_refuses_bad_input_and_creates_nothing(operator, body, field, message):
    response = client_for(operator).post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400
    assert api_error(response)["code"] == "invalid" and message in " ".join(api_error(response)["fields"][field])
    assert ApiToken.objects.count() == 0 and not AuditEvent.objects.exists()


def test_it_expires_a_token_at_the_moment_asked(operator):
    at = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    body = client_for(operator).post("/api/v1/tokens/", {"name": "x", "expires_at": at.isoformat()}, format="json").json()
    assert ApiToken.objects.get().expires_at == at and body["expires_at"].startswith(at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_it_lists_tokens_in_few_queries(personas, django_assert_max_num_queries):
    for i in range(5):
        create_token(personas["admin"], f"t{i}", )
        create_token(personas["operator"], f"o{i}")
    with django_assert_max_num_queries(4):
        body = client_for(personas["admin"]).get("/api/v1/tokens/").json()
    assert body["count"] == 10

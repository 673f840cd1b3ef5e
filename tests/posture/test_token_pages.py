"""The /tokens/ page: every role manages its own tokens (an admin everyone's), the new token is
shown once and never cached, revoking is a POST with CSRF, names are escaped."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from posture.jobs.tokens import create_token
from posture.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db
TOKEN = re.compile(r"pst_[a-z0-9]{8}_[A-Za-z0-9]{40}")
HOSTILE = '<script>alert("x")</script>'


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/tokens/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_an_account_without_a_role(outsider):
    response = logged_in(outsider).get("/tokens/")
    assert response.status_code == 403 and "no posture role" in response.content.decode()
    assert logged_in(outsider).post("/tokens/", {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("who", ["auditor", "operator", "admin"])
def test_it_lets_every_role_create_a_token_shown_once(personas, who):
    client = logged_in(personas[who])
    page = client.get("/tokens/")
    assert page.status_code == 200 and 'href="/tokens/"' in page.content.decode()  # the nav link
    response = client.post("/tokens/", {"name": "laptop script", "expires_in_days": "30"})
    body = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    shown = TOKEN.findall(body)
    assert len(set(shown)) == 1 and "shown only this once" in body
    row = ApiToken.objects.get()
    assert row.owner == personas[who] and row.expires_at and row.display_prefix in body
    again = client.get("/tokens/").content.decode()
    assert shown[0] not in again and row.display_prefix in again and "laptop script" in again


def test_it_makes_a_token_without_expiry_when_days_are_empty(operator):
    logged_in(operator).post("/tokens/", {"name": "forever", "expires_in_days": ""})
    assert ApiToken.objects.get().expires_at is None


@pytest.mark.parametrize("form, message", [({"name": ""}, "This field is required."),
                                           ({"name": "x", "expires_in_days": "0"}, "greater than or equal to 1"),
                                           ({"name": "x", "expires_in_days": "soon"}, "Enter a whole number."),
                                           ({"name": "a\tb"}, "no control characters")])
def test_it_refuses_a_bad_form_and_creates_nothing(operator, form, message):
    response = logged_in(operator).post("/tokens/", form)
    assert response.status_code == 400 and message in response.content.decode()
    assert not ApiToken.objects.exists() and not TOKEN.search(response.content.decode())


def test_it_needs_the_csrf_token_to_create_or_revoke(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post("/tokens/", {"name": "x"}).status_code == 403
    new = create_token(operator, "kept")
    assert client.post(f"/tokens/{new.row.pk}/revoke/").status_code == 403
    assert ApiToken.objects.get().revoked_at is None


def test_it_revokes_with_a_post_and_keeps_the_row(operator):
    new = create_token(operator, "old laptop")
    client = logged_in(operator)
    assert client.get(f"/tokens/{new.row.pk}/revoke/").status_code == 405
    response = client.post(f"/tokens/{new.row.pk}/revoke/", follow=True)
    body = response.content.decode()
    assert response.redirect_chain == [("/tokens/", 302)] and f"Token {new.row.display_prefix} (old laptop) revoked" in body
    row = ApiToken.objects.get()
    assert row.revoked_at and row.revoked_by == operator and "revoked" in body
    assert AuditEvent.objects.filter(action="token.revoked", actor=operator).count() == 1


def test_it_shows_others_tokens_only_to_an_admin(personas):
    theirs = create_token(personas["auditor"], "audrey's")
    operator_page = logged_in(personas["operator"]).get("/tokens/").content.decode()
    assert "audrey&#x27;s" not in operator_page
    assert logged_in(personas["operator"]).post(f"/tokens/{theirs.row.pk}/revoke/").status_code == 404
    admin = logged_in(personas["admin"])
    assert "audrey&#x27;s" in admin.get("/tokens/?owner=audrey").content.decode()
    admin.post(f"/tokens/{theirs.row.pk}/revoke/")
    assert ApiToken.objects.get().revoked_by == personas["admin"]


def test_it_escapes_a_hostile_token_name(operator):
    client = logged_in(operator)
    created = client.post("/tokens/", {"name": HOSTILE}).content.decode()
    listed = client.get("/tokens/").content.decode()
    for body in (created, listed):
        assert HOSTILE not in body and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_it_refuses_an_unknown_state_filter_listing_the_valid_ones(operator):
    response = logged_in(operator).get("/tokens/?state=bogus")
    assert response.status_code == 400 and "active, expired, revoked" in response.content.decode()

"""API tokens in a real browser: create one, copy it (shown once), use it, revoke it; the page
runs under the Content-Security-Policy (the copy button is a static script, not inline)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import Group, User
from playwright.sync_api import expect

from tests.e2e.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = re.compile(r"pst_[a-z0-9]{8}_[A-Za-z0-9]{40}")


def api_get(base: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{base}/api/v1/hosts/", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def operator_login() -> tuple[str, str]:
    user = User.objects.create_user("olive", password="oper-pass-1")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return "olive", "oper-pass-1"


def test_it_creates_copies_once_uses_and_revokes_a_token(page, live_server, operator_login):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    login(page, *operator_login)
    page.get_by_role("link", name="API tokens").click()
    assert page.locator("h1").inner_text() == "API tokens"
    page.fill("#id_name", "nightly export")
    page.fill("#id_expires_in_days", "30")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").input_value()
    assert TOKEN.fullmatch(token) and "shown only this once" in page.locator(".new-token").inner_text()
    page.get_by_role("button", name="Copy").click()
    # Not wait_for_function: it evaluates a string, which the page's CSP (no unsafe-eval) refuses.
    expect(page.locator("#new-token-state")).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == token

    status, body = api_get(live_server.url, token)
    assert status == 200 and body["count"] == 0

    page.goto("/tokens/")  # shown once: never again
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    row = page.locator("table.tokens tr", has_text="nightly export")
    assert token[:12] in row.inner_text() and "active" in row.inner_text()
    assert row.locator("td").nth(4).inner_text() != "never"  # last used, by the request above

    row.get_by_role("button", name="Revoke").click()
    assert "revoked: it no longer works" in page.locator(".notice").inner_text()
    assert "revoked" in page.locator("table.tokens tr", has_text="nightly export").inner_text()
    status, body = api_get(live_server.url, token)
    assert status == 401 and body["error"]["code"] == "token_revoked"
    assert violations == []


def test_it_fits_a_phone_screen(browser, live_server, operator_login):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        login(page, *operator_login)
        page.goto("/tokens/")
        page.fill("#id_name", "phone")
        page.get_by_role("button", name="Create token").click()
        assert TOKEN.fullmatch(page.locator("#new-token").input_value())
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling of the page
        box = page.locator("#new-token").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        context.close()

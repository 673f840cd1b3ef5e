"""Browser tests: headless Chromium (the Debian package) driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium (POSTURE_CHROMIUM to
override). Without it the tests skip, saying what to install, or fail under CI=true."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.services import need

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path() -> str | None:
    explicit = os.environ.get("POSTURE_CHROMIUM")
    return explicit if explicit and os.path.exists(explicit) else shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if not path:
        need("Chromium", "apt-get install chromium (or set POSTURE_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_load_state()

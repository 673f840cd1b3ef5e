"""Browser tests: headless Chromium (the Debian package) driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium (POSTURE_CHROMIUM to
override). Without it the tests skip, saying what to install, or fail under CI=true."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


#: Collects the browser's CSP violation reports before any page script runs (init scripts are
#: injected by the browser itself, outside the page's policy).
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""

#: Where shoot() saves screenshots (not committed; look at them).
SHOTS = Path(os.environ.get("POSTURE_SCREENSHOTS", "/tmp/posture-shots"))


@pytest.fixture
def watched(page):
    """The page, with CSP violations gathered from the DOM events and from the console."""
    page.add_init_script(WATCH)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.csp_console = console  # type: ignore[attr-defined]
    return page


def violations(page) -> list[str]:
    """CSP violations the watched page reported so far."""
    return page.evaluate("window.__csp || []") + page.csp_console


def shoot(page, name: str, full_page: bool = True) -> None:
    """Full-page screenshots at desktop and phone width (the viewport is restored after);
    ``full_page=False``: the first screen only (the top of a long page)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=full_page)
    page.set_viewport_size(size)


def person(browser, live_server, username: str, password: str):
    """A second (third, ...) person in their own browser context, watched for CSP violations
    and dialogs like ``watched``, logged in."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(WATCH)
    page.csp_console = []  # type: ignore[attr-defined]
    page.on("console", lambda m: page.csp_console.append(m.text) if "Content Security Policy" in m.text else None)
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    login(page, username, password)
    return page


def scan_now_and_watch(page, seconds: float = 60) -> set[str]:
    """Press "Scan now" on a host page and follow the live progress panel until the scan ends
    (without a reload); returns the states the panel showed on the way."""
    page.get_by_role("button", name="Scan now").click()
    panel = page.locator("#scan-progress")
    panel.wait_for(state="visible", timeout=10000)
    seen = set()
    done = panel.locator("[data-field=done]")
    for _ in range(int(seconds * 10)):
        seen.add(panel.get_attribute("data-state"))
        if done.is_visible():
            break
        page.wait_for_timeout(100)
    return seen

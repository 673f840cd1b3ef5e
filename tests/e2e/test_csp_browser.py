"""The Content-Security-Policy in a real browser: every page works under it with no
violation (login, fleet, scan detail, admin, Swagger UI), and injected inline script is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost
from tests.e2e.conftest import login, violations
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db(transaction=True)





@pytest.fixture
def admin_login() -> tuple[str, str]:
    User.objects.create_superuser("ada", "", "admin-pass-1")
    return "ada", "admin-pass-1"


def test_it_renders_the_api_docs_with_no_csp_violation(watched, admin_login):
    login(watched, *admin_login)
    response = watched.goto("/api/v1/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    watched.wait_for_selector(".swagger-ui .opblock", timeout=15000)
    assert watched.locator(".opblock-summary-path", has_text="/api/v1/scans/{id}/results/").count() == 1
    watched.locator(".opblock-summary", has_text="/api/v1/hosts/").first.click()  # expand: more UI code runs
    watched.wait_for_selector(".opblock-body", timeout=5000)
    watched.wait_for_timeout(300)
    assert violations(watched) == []


def test_it_serves_login_pages_and_admin_with_no_csp_violation(watched, admin_login):
    host = DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock")
    scan = stored_scan(host, SNAPSHOT, counts={"images": 4, "containers": 8})
    evaluate_scan(scan)
    watched.goto("/login/")
    login(watched, *admin_login)
    assert watched.locator("h1").inner_text() == "Overview"  # / after logging in
    for path in (f"/scans/{scan.pk}/", f"/scans/{scan.pk}/?status=fail", "/admin/", "/admin/posture/dockerhost/",
                 f"/admin/posture/dockerhost/{host.pk}/change/", "/admin/posture/scanrun/", "/admin/auth/user/add/"):
        response = watched.goto(path)
        assert response.status == 200, path
        assert "content-security-policy" in response.headers, path
    watched.wait_for_timeout(300)
    assert violations(watched) == []


def test_it_refuses_inline_script(watched):
    watched.goto("/login/")
    watched.evaluate("""() => {
        const s = document.createElement('script');
        s.textContent = 'window.__ran = true';
        document.body.appendChild(s);
        document.body.insertAdjacentHTML('beforeend', '<img src="/static/none.png" onerror="window.__ran = true">');
    }""")
    watched.wait_for_timeout(300)
    assert watched.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in violations(watched))

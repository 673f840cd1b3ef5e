"""Server-rendered pages: roles, and attacker-controlled strings escaped."""

from __future__ import annotations

import copy

import pytest
from django.contrib.auth.models import User

from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def hostile_scan():
    host = DockerHost.objects.create(name=HOSTILE, url="unix:///x.sock")
    snap = copy.deepcopy(SNAPSHOT)
    snap["containers"][0]["name"] = f"evil{HOSTILE}"
    snap["containers"][0]["inspect"]["Config"]["Env"] = [{"name": f"X{HOSTILE}", "looks_secret": False}]
    scan = stored_scan(host, snap, counts={"images": 4, "containers": 8})
    evaluate_scan(scan)
    return scan


def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_accounts_without_a_role(client):
    client.force_login(User.objects.create_user("otto", password="x"))
    assert client.get("/").status_code == 403


def test_it_escapes_hostile_names_everywhere(client, auditor, hostile_scan):
    client.force_login(auditor)
    for url in ("/", f"/scans/{hostile_scan.pk}/"):
        body = client.get(url).content.decode()
        assert HOSTILE not in body, url
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body, url


def test_it_shows_results_filtered_by_status(client, auditor, hostile_scan):
    client.force_login(auditor)
    body = client.get(f"/scans/{hostile_scan.pk}/?status=fail").content.decode()
    assert "container.privileged_disabled" in body and "state-pass\">pass" not in body

"""Server-rendered pages: roles, and attacker-controlled strings escaped."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from posture.jobs.evaluate import evaluate_scan
from posture.models import ControlException, DockerHost, ExceptionState, ScanRun
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


def test_it_counts_each_status_as_the_rows_its_link_lists(client, auditor):
    """The counts above a scan's table are after exceptions, like the table: each status
    link lists exactly that many rows (they used to be the stored counts, before exceptions)."""
    host = DockerHost.objects.create(name="web-1", url="unix:///x.sock")
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    ControlException.objects.create(check_id="container.pids_limited", resource_pattern="*", justification="ok",
                                    state=ExceptionState.APPROVED, decided_at=timezone.now() - timedelta(days=1),
                                    expires_at=timezone.now() + timedelta(days=9))
    client.force_login(auditor)
    response = client.get(f"/scans/{scan.pk}/")
    counts = response.context["counts"]
    assert counts["excepted"] == 7 and sum(counts.values()) == scan.evaluations.get().result_set.finding_count
    for status, n in counts.items():
        page = client.get(f"/scans/{scan.pk}/", {"status": status}).context["page"]
        assert page.paginator.count == n, status
        assert {r["status"] for r in page.rows} == {status}
    body = client.get(f"/scans/{scan.pk}/", {"status": "excepted"}).content.decode()
    assert "(exception #" in body and 'href="?status=fail"' in body


def test_it_shows_a_past_scan_with_what_was_in_force_then_unless_asked(client, auditor):
    host = DockerHost.objects.create(name="web-1", url="unix:///x.sock")
    old = stored_scan(host, SNAPSHOT)
    ScanRun.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=2))
    old.refresh_from_db()
    evaluate_scan(old)
    evaluate_scan(stored_scan(host, SNAPSHOT))
    ControlException.objects.create(check_id="container.privileged_disabled", resource_pattern="rec-privileged",
                                    justification="ok", state=ExceptionState.APPROVED,
                                    decided_at=timezone.now() - timedelta(days=1),
                                    expires_at=timezone.now() + timedelta(days=9))
    client.force_login(auditor)
    params = {"check": "container.privileged_disabled", "status": "excepted"}
    assert client.get(f"/scans/{old.pk}/", params).context["page"].paginator.count == 0
    now = timezone.now().isoformat()
    assert client.get(f"/scans/{old.pk}/", {**params, "at": now}).context["page"].paginator.count == 1


def test_it_refuses_a_bad_filter_on_the_scan_page_saying_why(client, auditor, hostile_scan):
    client.force_login(auditor)
    response = client.get(f"/scans/{hostile_scan.pk}/", {"status": "failed"})
    assert response.status_code == 400
    assert "is not one of the valid choices: fail, error" in response.content.decode()
    response = client.get(f"/scans/{hostile_scan.pk}/", {"stauts": "fail"})
    assert response.status_code == 400 and "unknown parameter; accepted:" in response.content.decode()

"""The diff page (/scans/<a>/diff/<b>/) and the scan page's "changes since the previous scan":
hostile names escaped, an error or a failed probe never read as "fixed"."""

from __future__ import annotations

import pytest
from django.test import Client

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_diffs import HOSTILE, after_snapshot, before_snapshot, scan_at

pytestmark = pytest.mark.django_db
ESCAPED = "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"


@pytest.fixture
def pair() -> tuple[ScanRun, ScanRun]:
    host = DockerHost.objects.create(name="web1", url="unix:///var/run/docker.sock")
    return scan_at(host, before_snapshot(), 0), scan_at(host, after_snapshot(), 24)


@pytest.fixture
def reader(client: Client, auditor) -> Client:
    client.force_login(auditor)
    return client


def test_it_shows_every_change_with_hostile_names_escaped(reader, pair):
    before, after = pair
    body = reader.get(f"/scans/{after.pk}/diff/{before.pk}/").content.decode()
    assert HOSTILE not in body and f"added{ESCAPED}" in body
    assert f"scan <a href=\"/scans/{before.pk}/\">#{before.pk}</a> → <a href=\"/scans/{after.pk}/\">#{after.pk}</a>" in body
    assert "<code>HostConfig.Privileged</code>" in body and '<code class="json">false</code>' in body
    assert "now error (not a fix)" in body and "now not assessed (not a fix)" in body
    assert "rec/uid0:1" in body and "new/img:1" in body


def test_it_refuses_scans_of_two_hosts_or_unknown_scans(reader, pair):
    other = scan_at(DockerHost.objects.create(name="db1", url="unix:///db.sock"), SNAPSHOT, 1)
    response = reader.get(f"/scans/{pair[0].pk}/diff/{other.pk}/")
    assert response.status_code == 400 and "only two scans of the same host can be compared" in response.content.decode()
    assert reader.get(f"/scans/{pair[0].pk}/diff/999999/").status_code == 404


def test_it_refuses_accounts_without_a_role(client, outsider, pair):
    client.force_login(outsider)
    assert client.get(f"/scans/{pair[0].pk}/diff/{pair[1].pk}/").status_code == 403


def test_it_says_on_the_scan_page_what_changed_without_calling_an_error_fixed(reader, pair):
    """A failed probe turned host failures into not_assessed and a broken container into error:
    they read as such, never as fixes (the page used to say "18 fixed")."""
    before, after = pair
    body = reader.get(f"/scans/{after.pk}/").content.decode()
    assert "Changes since the previous scan" in body
    assert f'href="/scans/{before.pk}/diff/{after.pk}/">See every change' in body
    assert "now error (not a fix)" in body and "now not assessed (not a fix)" in body
    assert "1 container added, 1 removed" in body and "1 image added, 1 removed" in body
    assert "new failures," not in body  # the evaluation's old wording is gone


def test_it_says_the_first_scan_has_nothing_to_compare(reader, pair):
    body = reader.get(f"/scans/{pair[0].pk}/").content.decode()
    assert "the host's first succeeded scan: there is nothing to compare it with" in body
    failed = ScanRun.objects.create(host=pair[0].host, state=ScanState.FAILED, error="unreachable")
    assert "This scan has no evidence" in reader.get(f"/scans/{failed.pk}/").content.decode()

"""The findings page: every role reads it, its filters and groupings agree with the query
layer, a bad filter is a 400 naming it, hostile names are escaped, and its query count does
not grow with hosts."""

from __future__ import annotations

import copy
import re

import pytest
from django.test import Client

from posture.queries import groups
from posture.queries.verdicts import findings, verdict_counts
from tests.posture.conftest import SNAPSHOT
from tests.posture.reader_pages import ESCAPED, HOSTILE, reader_page_tests, scanned

pytestmark = pytest.mark.django_db



def rows(body: str, css: str = "findings") -> int:
    table = body.split(f'class="data cards {css}"', 1)[1].split("</table>", 1)[0]
    return len(re.findall(r"<tr>", table.split("<tbody>", 1)[1]))


# --- page x role ---------------------------------------------------------------------------

PAGES = ["/findings/", "/findings/?group=resource", "/findings/?group=control"]


(test_it_sends_anonymous_visitors_to_the_login_page, test_it_refuses_accounts_without_a_role,
 test_it_lets_every_role_read) = reader_page_tests(PAGES)


def test_it_links_findings_in_the_navigation(client: Client, auditor):
    client.force_login(auditor)
    body = client.get("/findings/").content.decode()
    assert '<a href="/findings/" aria-current="page">Findings</a>' in body
    assert '<a href="/controls/">Controls</a>' in body


# --- filters agree with the query layer ----------------------------------------------------

def test_it_lists_what_the_query_layer_finds(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    query = {"host": "web-2", "status": "fail", "severity": "high,critical", "resource_type": "container"}
    expected = findings(host="web-2", status=["fail"], severity=["high", "critical"], resource_type=["container"])
    body = client.get("/findings/", query).content.decode()
    assert 0 < expected.count() <= 50
    assert rows(body) == expected.count()
    assert "web-1</a>" not in body.split('class="data cards findings"', 1)[1]
    first = expected.first()
    assert first.check_id in body and f"/scans/{first.scan_id}/" in body


def test_it_counts_each_status_as_its_link_lists(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/findings/", {"host": "web-1"}).content.decode()
    for status, n in verdict_counts(findings(host="web-1")).items():
        assert f'class="state state-{status}">{n} {status}</a>' in body


def test_it_paginates_in_the_database(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    total = findings().count()
    assert total > 50
    body = client.get("/findings/", {"page": 2, "ordering": "-severity"}).content.decode()
    assert rows(body) == min(50, total - 50)
    assert f"({total} in all)" in body


def test_it_links_a_finding_to_its_control(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/findings/", {"check": "container.privileged_disabled"}).content.decode()
    assert 'href="/controls/cis-docker-1.8.0/5.5/"' in body


def test_it_groups_by_resource_in_sql(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/findings/", {"group": "resource", "host": "web-1"}).content.decode()
    expected = list(groups.by_resource(findings(host="web-1")))
    assert rows(body, "findings-groups") == len(expected) < findings(host="web-1").count() / 5
    top = expected[0]
    assert top["n_fail"] == findings(host="web-1", resource=top["resource"], status=["fail"]).count()
    assert f'{top["n_fail"]} fail</a>' in body


def test_it_groups_by_control_with_counts_of_its_checks(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/findings/", {"group": "control", "framework": "cis-docker-1.8.0"}).content.decode()
    got = {g.ref: g for g in groups.by_control(findings(), "cis-docker-1.8.0")}
    assert got["5.5"].counts.get("fail") == findings(framework="cis-docker-1.8.0", control="5.5",
                                                     status=["fail"]).count()
    assert rows(body, "findings-groups") == min(50, len(got)) and f"({len(got)} in all)" in body
    assert 'href="/controls/cis-docker-1.8.0/5.5/"' in body


@pytest.mark.parametrize(("query", "message"), [
    ({"stauts": "fail"}, "unknown parameter"),
    ({"status": "failing"}, "not one of the valid choices"),
    ({"group": "host"}, "not one of the valid choices"),
    ({"at": "yesterday"}, "not a valid ISO 8601"),
    ({"control": "5.5"}, "add framework="),
    ({"host": "nowhere"}, "no host"),
    ({"ordering": "colour"}, "not one of the valid choices"),
])
def test_it_refuses_a_bad_filter_with_a_400_naming_it(client: Client, auditor, web_hosts, query, message):
    client.force_login(auditor)
    response = client.get("/findings/", query)
    assert response.status_code == 400
    assert message in response.content.decode()


# --- hostile strings -----------------------------------------------------------------------

def test_it_escapes_hostile_container_names(client: Client, auditor):
    snap = copy.deepcopy(SNAPSHOT)
    snap["containers"][0]["name"] = f"evil{HOSTILE}"
    scanned(f"h{HOSTILE}", snap)
    client.force_login(auditor)
    for query in ({}, {"group": "resource"}, {"resource_contains": "evil"}):
        body = client.get("/findings/", query).content.decode()
        assert HOSTILE not in body
        assert ESCAPED in body


# --- query count ---------------------------------------------------------------------------

@pytest.mark.parametrize("query", [{}, {"group": "resource"}, {"group": "control"},
                                   {"status": "fail", "host": "web-1", "page": "2"}])
def test_it_reads_a_bounded_number_of_queries(client: Client, auditor, django_assert_max_num_queries, query):
    client.force_login(auditor)
    for i in range(2):
        scanned(f"web-{i + 1}")
    with django_assert_max_num_queries(14) as few:
        assert client.get("/findings/", query).status_code == 200
    for i in range(2, 10):
        scanned(f"web-{i + 1}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/findings/", query).status_code == 200


def test_it_reads_the_fleet_as_of_a_moment(client: Client, auditor, web_hosts):
    """``?at=`` reads each host's current scan then: before the first scan there is none."""
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(auditor)
    before = (timezone.now() - timedelta(days=1)).isoformat()
    body = client.get("/findings/", {"at": before}).content.decode()
    assert rows(body) == 1 and "No findings match these filters." in body
    assert rows(client.get("/findings/", {"at": timezone.now().isoformat()}).content.decode()) == 50

"""``GET /api/v1/scans/{id}/diff/``, the scan list without logs, hosts addressed by name."""

from __future__ import annotations

import pytest

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, api_error
from tests.posture.queries.test_diffs import HOSTILE, after_snapshot, before_snapshot, scan_at
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def host() -> DockerHost:
    return DockerHost.objects.create(name="web1.example", url="unix:///var/run/docker.sock")


@pytest.fixture
def pair(host) -> tuple[ScanRun, ScanRun]:
    return scan_at(host, before_snapshot(), 0), scan_at(host, after_snapshot(), 24)


@pytest.mark.parametrize("who, status", [(None, 401), ("outsider", 403), ("auditor", 200), ("operator", 200),
                                         ("admin", 200)])
def test_it_lets_any_posture_role_read_a_diff(personas, pair, who, status):
    assert client_for(personas.get(who)).get(f"/api/v1/scans/{pair[1].pk}/diff/").status_code == status


def test_it_compares_with_the_previous_succeeded_scan_by_default(personas, pair, django_assert_max_num_queries):
    before, after = pair
    ScanRun.objects.create(host=before.host, state=ScanState.FAILED, error="unreachable")  # not a candidate
    with django_assert_max_num_queries(14):
        body = client_for(personas["auditor"]).get(f"/api/v1/scans/{after.pk}/diff/").json()
    assert (body["before"]["id"], body["after"]["id"], body["host"]) == (before.pk, after.pk, "web1.example")
    assert [c["name"] for c in body["containers_added"]] == ["added" + HOSTILE]  # JSON carries it as data
    assert [c["name"] for c in body["images_removed"]] == ["rec/uid0:1"]
    hardened = next(c for c in body["changed"] if c["name"] == "rec-hardened")
    assert {"path": "HostConfig.Privileged", "change": "changed", "old": False, "new": True} in hardened["changes"]
    assert hardened["recreated"] is True and hardened["truncated"] is False
    flip = next(f for f in body["flips"] if f["check"] == "container.privileged_disabled"
                and f["resource"] == "rec-privileged")
    assert (flip["before"], flip["after"], flip["kind"]) == ("fail", "error", "error")
    assert body["counts"]["error"] >= 1 and body["verdicts_compared"] is True and body["identical"] is False


def test_it_answers_the_same_diff_in_either_order(personas, pair):
    before, after = pair
    client = client_for(personas["auditor"])
    forward = client.get(f"/api/v1/scans/{after.pk}/diff/", {"against": before.pk}).json()
    backward = client.get(f"/api/v1/scans/{before.pk}/diff/", {"against": after.pk}).json()
    assert forward == backward


@pytest.mark.parametrize("against, message", [
    ("abc", "'abc' is not a scan id (a whole number)"),
    ("-1", "'-1' is not a scan id (a whole number)"),
    ("1" * 40, "is not a scan id"),
    ("999999", "there is no scan #999999"),
])
def test_it_refuses_a_bad_against(personas, pair, against, message):
    response = client_for(personas["auditor"]).get(f"/api/v1/scans/{pair[1].pk}/diff/", {"against": against})
    assert response.status_code == 400 and message in api_error(response)["fields"]["against"][0]


def test_it_refuses_to_compare_two_hosts(personas, pair):
    other = scan_at(DockerHost.objects.create(name="db1", url="unix:///db.sock"), SNAPSHOT, 1)
    response = client_for(personas["auditor"]).get(f"/api/v1/scans/{pair[0].pk}/diff/", {"against": other.pk})
    assert response.status_code == 400
    assert "only two scans of the same host can be compared" in api_error(response)["fields"]["against"][0]


def test_it_says_when_there_is_no_previous_scan(personas, pair):
    response = client_for(personas["auditor"]).get(f"/api/v1/scans/{pair[0].pk}/diff/")
    assert response.status_code == 404 and "first succeeded scan of host 'web1.example'" in api_error(response)["message"]
    failed = ScanRun.objects.create(host=pair[0].host, state=ScanState.FAILED, error="unreachable")
    response = client_for(personas["auditor"]).get(f"/api/v1/scans/{failed.pk}/diff/")
    assert response.status_code == 400 and "has no evidence to compare" in api_error(response)["message"]


def test_it_refuses_an_unknown_parameter_on_the_diff(personas, pair):
    response = client_for(personas["auditor"]).get(f"/api/v1/scans/{pair[1].pk}/diff/", {"aginst": pair[0].pk})
    assert response.status_code == 400
    assert api_error(response)["fields"] == {"aginst": ["unknown parameter; accepted: against, format"]}


def test_it_documents_the_diff(personas):
    schema = client_for(personas["auditor"]).get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/scans/{id}/diff/"]["get"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["against"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ScanDiff")
    assert {"flips", "changed", "containers_added"} <= set(schema["components"]["schemas"]["ScanDiff"]["properties"])
    host_list = schema["paths"]["/api/v1/hosts/"]["get"]
    assert {"name", "name_contains", "archived", "last_scan_failed"} <= {p["name"] for p in host_list["parameters"]}


def test_it_lists_scans_without_their_logs(personas, pair, django_assert_max_num_queries):
    ScanRun.objects.filter(pk=pair[0].pk).update(log=["x" * 1000] * 50)
    client = client_for(personas["auditor"])
    with django_assert_max_num_queries(5):
        listed = client.get("/api/v1/scans/").json()["results"]
    assert listed and all("log" not in s for s in listed)
    assert client.get(f"/api/v1/scans/{pair[0].pk}/").json()["log"] == ["x" * 1000] * 50


def test_it_addresses_a_host_by_name_or_id(personas, host):
    numeric = DockerHost.objects.create(name="12345", url="unix:///n.sock")
    client = client_for(personas["operator"])
    assert client.get("/api/v1/hosts/web1.example/").json()["id"] == host.pk
    assert client.get(f"/api/v1/hosts/{host.pk}/").json()["name"] == "web1.example"
    assert client.get("/api/v1/hosts/12345/").json()["id"] == numeric.pk  # no host has id 12345: by name
    response = client.patch("/api/v1/hosts/web1.example/", {"probe_enabled": True}, format="json")
    assert response.status_code == 200 and DockerHost.objects.get(pk=host.pk).probe_enabled
    assert client.post("/api/v1/hosts/web1.example/archive/").json()["archived"] is True
    missing = client.get("/api/v1/hosts/nope/")
    assert missing.status_code == 404 and api_error(missing)["message"] == "no host with id or name 'nope'"

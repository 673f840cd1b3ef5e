"""Findings and control rollups over the API: read through posture/queries, filtered by the
shared FilterSets (unknown parameters and values are a 400 naming what is valid), paginated
in the database, with pinned query counts."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from posture.jobs import current
from posture.models import Control, DockerHost
from tests.posture.conftest import SNAPSHOT, api_error
from tests.posture.queries.test_verdicts import DAY, PIDS, PRIV, T0, exception, scan_at, without

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(auditor) -> APIClient:
    client = APIClient()
    client.force_authenticate(auditor)
    return client


@pytest.fixture
def alpha() -> DockerHost:
    return DockerHost.objects.create(name="alpha", url="unix:///alpha.sock")


def test_it_pages_a_scans_findings_in_the_database_with_filters_and_ordering(client, alpha):
    scan = scan_at(alpha, SNAPSHOT, T0)
    exception(PIDS, "rec-s*", approved=T0 - DAY)
    url = f"/api/v1/scans/{scan.pk}/results/"
    body = client.get(url, {"page_size": 10, "page": 2}).json()
    assert body["count"] == scan.evaluations.get().result_set.finding_count and len(body["results"]) == 10
    row = client.get(url, {"check": PRIV, "status": "fail"}).json()["results"]
    assert [(r["resource"], r["host"], r["severity"], r["stored_status"], r["scan"]) for r in row] == [
        ("rec-privileged", {"id": alpha.pk, "name": "alpha"}, "critical", "fail", scan.pk)]
    assert row[0]["controls"]["cis-docker-1.8.0"] == ["5.5"] and row[0]["failing_since"].startswith("2026-03-02")
    excepted = client.get(url, {"status": "excepted"}).json()["results"]
    assert {r["check"] for r in excepted} == {PIDS} and "rec-sshd" in {r["resource"] for r in excepted}
    assert all(r["resource"].startswith("rec-s") and r["exception"] and r["stored_status"] == "fail" for r in excepted)
    ordered = client.get(url, {"ordering": "-severity,check", "status": "fail", "page_size": 500}).json()["results"]
    ranks = ["info", "low", "medium", "high", "critical"]
    assert [ranks.index(r["severity"]) for r in ordered] == sorted(ranks.index(r["severity"]) for r in ordered)
    soc2 = client.get(url, {"framework": "soc2-2017", "control": "CC6.8", "resource_contains": "PRIV"}).json()
    assert PRIV in {r["check"] for r in soc2["results"]}
    assert {r["resource"] for r in soc2["results"]} == {"rec-privileged"}
    assert all(("soc2-2017", "CC6.8") in {(f, ref) for f, refs in r["controls"].items() for ref in refs}
               for r in soc2["results"])


def test_it_reads_a_past_scan_with_what_was_in_force_in_its_time(client, alpha):
    """An exception approved after scan 1 and before scan 2: scan 1's page still says fail
    (unless asked ?at= later); scan 2, the current one, says excepted."""
    old = scan_at(alpha, SNAPSHOT, T0)
    new = scan_at(alpha, SNAPSHOT, T0 + DAY)
    exception(PRIV, "rec-privileged", alpha, approved=T0 + DAY / 2)
    params = {"check": PRIV, "resource": "rec-privileged"}

    def status(scan, **extra):
        return client.get(f"/api/v1/scans/{scan.pk}/results/", {**params, **extra}).json()["results"][0]["status"]

    assert status(old) == "fail" and status(new) == "excepted"
    assert status(old, at=timezone.now().isoformat()) == "excepted"
    assert status(new, at=(T0 + DAY / 4).isoformat()) == "fail"
    controls = client.get(f"/api/v1/scans/{old.pk}/controls/", {"ref": "5.5"}).json()
    assert [r["status"] for r in controls["results"]] == ["fail"]
    assert client.get(f"/api/v1/scans/{new.pk}/controls/", {"ref": "5.5"}).json()["results"][0]["status"] == "excepted"


@pytest.mark.parametrize("path", ["/api/v1/scans/{pk}/results/", "/api/v1/scans/{pk}/controls/", "/api/v1/controls/"])
def test_it_refuses_an_unknown_parameter_listing_the_accepted_ones(client, alpha, path):
    scan = scan_at(alpha, SNAPSHOT, T0)
    response = client.get(path.format(pk=scan.pk), {"stauts": "fail"})
    assert response.status_code == 400
    message = api_error(response)["fields"]["stauts"][0]
    assert message.startswith("unknown parameter; accepted: ") and "status" in message and "page_size" in message


def test_it_takes_no_host_on_one_scans_controls(client, alpha):
    scan = scan_at(alpha, SNAPSHOT, T0)
    assert "host" in api_error(client.get(f"/api/v1/scans/{scan.pk}/controls/", {"host": "alpha"}))["fields"]
    assert client.get("/api/v1/controls/", {"host": "alpha"}).status_code == 200


@pytest.mark.parametrize("param, value, expected", [
    ("status", "failed", "'failed' is not one of the valid choices: fail, error, not_assessed, manual, excepted, pass, "
                         "not_applicable"),
    ("status", "fail,oops", "'oops' is not one of the valid choices: fail, error"),
    ("severity", "urgent", "'urgent' is not one of the valid choices: critical, high, medium, low, info"),
    ("resource_type", "volume", "'volume' is not one of the valid choices: daemon, host, image, container"),
    ("ordering", "colour", "'colour' is not one of the valid choices: status, -status, severity"),
    ("new_since", "yesterday", "'yesterday' is not a valid ISO 8601 date-time"),
    ("at", "2026-02-30", "'2026-02-30' is not a valid ISO 8601 date-time"),
    ("check", "container.nope", "container.nope is not one of the valid choices: "),
    ("control", "5.5", "a control is a ref within a framework: add framework="),
])
def test_it_refuses_an_unknown_value_listing_the_valid_ones(client, alpha, param, value, expected):
    scan = scan_at(alpha, SNAPSHOT, T0)
    response = client.get(f"/api/v1/scans/{scan.pk}/results/", {param: value})
    assert response.status_code == 400
    assert api_error(response)["fields"][param][0].startswith(expected)


def test_it_refuses_an_unknown_host_and_a_bad_control_status(client, alpha):
    scan_at(alpha, SNAPSHOT, T0)
    assert api_error(client.get("/api/v1/controls/", {"host": "nope"}))["fields"]["host"] == [
        "no host 'nope' (give its name or id)"]
    bad = client.get("/api/v1/controls/", {"status": "broken"})
    assert "is not one of the valid choices: fail, error" in api_error(bad)["fields"]["status"][0]
    assert "automated, manual" in api_error(client.get("/api/v1/controls/", {"assess": "sometimes"}))["message"]


def test_it_lists_controls_with_their_fleet_or_host_rollup(client, alpha):
    beta = DockerHost.objects.create(name="beta", url="unix:///beta.sock")
    scan_at(alpha, SNAPSHOT, T0)
    scan_at(beta, without(SNAPSHOT, "rec-privileged"), T0)
    fleet = client.get("/api/v1/controls/", {"framework": "cis-docker-1.8.0", "ref": "5.5"}).json()["results"][0]
    assert (fleet["status"], fleet["counts"], fleet["hosts"], fleet["hosts_failing"]) == (
        "fail", {"fail": 1, "pass": 14}, {"fail": 1, "pass": 1}, 1)
    assert PRIV in fleet["checks"]
    one = client.get("/api/v1/controls/", {"framework": "cis-docker-1.8.0", "ref": "5.5", "host": "beta"}).json()
    assert one["results"][0]["status"] == "pass" and one["results"][0]["hosts"] == {"pass": 1}
    failing = client.get("/api/v1/controls/", {"framework": "cis-docker-1.8.0", "status": "fail",
                                               "page_size": 500}).json()
    assert failing["count"] == len(failing["results"]) > 0 and {r["status"] for r in failing["results"]} == {"fail"}
    assert "5.5" in {r["ref"] for r in failing["results"]}
    before = client.get("/api/v1/controls/", {"framework": "soc2-2017", "at": (T0 - DAY).isoformat(),
                                              "ref": "CC6.8"}).json()["results"][0]
    assert before["status"] == "not_assessed" and before["hosts"] == {}
    five_five = Control.objects.get(framework__slug="cis-docker-1.8.0", ref="5.5")
    detail = client.get(f"/api/v1/controls/{five_five.pk}/", {"host": "alpha"}).json()
    assert (detail["ref"], detail["status"], detail["hosts_failing"]) == ("5.5", "fail", 1)


def test_it_answers_a_scans_findings_in_a_fixed_number_of_queries(client, alpha, django_assert_max_num_queries):
    small = scan_at(alpha, without(SNAPSHOT, *[c["name"] for c in SNAPSHOT["containers"][2:]]), T0)
    big = scan_at(DockerHost.objects.create(name="beta", url="unix:///b.sock"), SNAPSHOT, T0)
    exception(PIDS, "*")
    for scan in (small, big):
        # the role, the scan, the current-scan check, the check ids validated, COUNT and the page
        with django_assert_max_num_queries(6):
            assert client.get(f"/api/v1/scans/{scan.pk}/results/", {"check": PIDS, "page_size": 3}).status_code == 200
        # the role, the scan, the current-scan check, the controls listed, the rollup's four
        # (and its result sets' control counts, read once per process) and the exceptions'
        # digest (its key: a scan's controls now are computed, a key nobody would share)
        with django_assert_max_num_queries(10):
            assert client.get(f"/api/v1/scans/{scan.pk}/controls/").status_code == 200


@pytest.mark.parametrize("n_hosts", [2, 20])
def test_it_lists_fleet_controls_in_the_same_number_of_queries(client, n_hosts, django_assert_num_queries):
    for i in range(n_hosts):
        scan_at(DockerHost.objects.create(name=f"h{i:02}", url="unix:///x.sock"), SNAPSHOT, T0)
    exception(PIDS, "rec-s*")
    current.ensure_fresh()  # the new exception applied to the read model of posture now
    # the role, framework choices, the rollup's key (the read model's freshness, its current
    # scans) and four queries (the result sets' control counts, the exceptions and
    # attestations applied, the controls), COUNT, page, checks of the page
    with django_assert_num_queries(11):
        body = client.get("/api/v1/controls/", {"framework": "cis-docker-1.8.0", "status": "fail"}).json()
    assert {r["hosts_failing"] for r in body["results"]} == {n_hosts}
    with django_assert_num_queries(4):  # asked again: the page from the cache, after its key
        assert client.get("/api/v1/controls/", {"framework": "cis-docker-1.8.0", "status": "fail"}).json() == body


def test_it_documents_the_filters_in_the_schema(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    results = schema["paths"]["/api/v1/scans/{id}/results/"]["get"]
    names = {p["name"] for p in results["parameters"]}
    assert {"status", "severity", "framework", "control", "new_since", "ordering", "at", "page"} <= names
    assert re.search("exceptions", results["description"])

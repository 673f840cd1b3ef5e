"""Fleet-wide reads over the API (posture/api/fleet.py, evidence.py): findings, the posture
summary, history, frameworks and scan evidence. Each answers what posture/queries answers,
refuses bad input with the one error shape, and costs a number of queries that does not
grow with hosts or scans."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from posture.jobs.ingest import canonical_json
from posture.models import DockerHost, FailureWindow
from posture.queries import rollups as rollup_queries
from posture.queries.rollups import fleet_and_hosts, host_rollups, rollup
from tests.posture.conftest import SNAPSHOT, api_error
from tests.posture.queries.test_verdicts import PIDS, PRIV, exception, scan_at, without

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


@pytest.fixture
def client(auditor) -> APIClient:
    client = APIClient()
    client.force_authenticate(auditor)
    return client


def _fleet(n: int, start: int = 0, *, scans: int = 2) -> list[DockerHost]:
    """``n`` hosts registered 10 days ago, each scanned ``scans`` days (the last one today)."""
    now = timezone.now()
    hosts = []
    for i in range(start, start + n):
        host = DockerHost.objects.create(name=f"web{i}", url=f"unix:///web{i}.sock")
        DockerHost.objects.filter(pk=host.pk).update(created_at=now - 10 * DAY)
        for d in range(scans - 1, -1, -1):
            scan_at(host, without(SNAPSHOT, "rec-privileged") if d == 0 and i % 2 else SNAPSHOT, now - d * DAY - timedelta(minutes=5))
        hosts.append(host)
    return hosts


def _queries(client: APIClient, url: str, params: dict | None = None, before=None) -> int:
    client.get(url, params)  # warm caches (catalog, choices)
    if before:
        before()
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    return len(captured)


# --- findings ----------------------------------------------------------------------------------

def test_it_lists_the_fleets_findings_now_and_at_a_past_moment(client):
    web0, web1 = _fleet(2)
    now = client.get("/api/v1/findings/", {"check": PRIV, "status": "fail"}).json()
    # web1's last scan no longer has the privileged container: only web0 fails now.
    assert [(r["host"]["name"], r["resource"]) for r in now["results"]] == [("web0", "rec-privileged")]
    before = client.get("/api/v1/findings/", {"check": PRIV, "status": "fail",
                                              "at": (timezone.now() - DAY / 2).isoformat()}).json()
    assert sorted(r["host"]["name"] for r in before["results"]) == ["web0", "web1"]
    one = client.get("/api/v1/findings/", {"host": "web1", "page_size": 1}).json()
    assert one["count"] > 1 and one["results"][0]["host"] == {"id": web1.pk, "name": "web1"}


def test_it_refuses_an_unknown_finding_filter_or_value_naming_the_valid_ones(client):
    _fleet(1)
    bad = client.get("/api/v1/findings/", {"status": "bogus"})
    assert bad.status_code == 400 and "pass" in api_error(bad)["fields"]["status"][0]
    typo = client.get("/api/v1/findings/", {"stauts": "fail"})
    assert typo.status_code == 400 and "accepted:" in api_error(typo)["fields"]["stauts"][0]
    future = client.get("/api/v1/findings/", {"at": (timezone.now() + DAY).isoformat()})
    assert future.status_code == 400 and "in the future" in api_error(future)["fields"]["at"][0]


def _forget_cached_reads() -> None:
    rollup_queries._LOCAL.clear()
    cache.clear()


def test_it_lists_findings_in_as_many_queries_for_six_hosts_as_for_two(client):
    params = {"status": "fail", "page": 2, "page_size": 5}
    _fleet(2)
    small = _queries(client, "/api/v1/findings/", params, before=_forget_cached_reads)
    _fleet(4, start=2)
    assert _queries(client, "/api/v1/findings/", params, before=_forget_cached_reads) == small


def test_a_findings_page_asked_again_is_the_cached_page_until_what_it_shows_changes(client):
    web0, web1 = _fleet(2)
    params = {"check": PRIV, "status": "fail"}
    first = client.get("/api/v1/findings/", params).json()
    assert [r["host"]["name"] for r in first["results"]] == ["web0"]
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/findings/", params).json() == first
    assert len(captured) <= 4, [q["sql"][:120] for q in captured]  # the key: a few small queries
    # A new scan of web1 with the privileged container back: a new key, the page computed again.
    scan_at(web1, SNAPSHOT, timezone.now() - timedelta(minutes=1))
    again = client.get("/api/v1/findings/", params).json()
    assert sorted(r["host"]["name"] for r in again["results"]) == ["web0", "web1"]
    # A renamed host: the page shows its new name (names are part of a listing's key).
    DockerHost.objects.filter(pk=web0.pk).update(name="web0-renamed")
    renamed = client.get("/api/v1/findings/", params).json()
    assert sorted(r["host"]["name"] for r in renamed["results"]) == ["web0-renamed", "web1"]
    # The same page at a past moment is cached too, and answers what was true then.
    at = (timezone.now() - DAY / 2).isoformat()
    past = client.get("/api/v1/findings/", {**params, "at": at}).json()
    assert client.get("/api/v1/findings/", {**params, "at": at}).json() == past
    assert sorted(r["host"]["name"] for r in past["results"]) == ["web0-renamed", "web1"]


def test_it_answers_a_deep_page_with_the_rows_the_whole_ordered_list_has_there(client):
    """Now, a page is taken over ids and its rows read by id: each page holds the rows the one
    ordered query holds at that offset, in that order, with their per-row values."""
    _fleet(2)
    everything = client.get("/api/v1/findings/", {"status": "fail,pass", "page_size": 500}).json()["results"]
    assert len(everything) > 20
    for params in ({"page": 3, "page_size": 7}, {"page": 2, "page_size": 7, "ordering": "host,-severity"}):
        page = client.get("/api/v1/findings/", {"status": "fail,pass", **params}).json()
        whole = everything if "ordering" not in params else client.get(
            "/api/v1/findings/", {"status": "fail,pass", "page_size": 500, "ordering": params["ordering"]}).json()["results"]
        start = (params["page"] - 1) * params["page_size"]
        assert page["results"] == whole[start:start + params["page_size"]]
        assert page["count"] == len(whole) < 500 and page["next"] and page["previous"]


# --- posture -----------------------------------------------------------------------------------

def test_it_summarises_posture_per_framework_and_host_as_the_rollups_do(client):
    web0, web1 = _fleet(2)
    exception(PIDS, "rec-*", web0, approved=timezone.now() - 20 * DAY)
    body = client.get("/api/v1/posture/", {"framework": "cis-docker-1.8.0"}).json()
    fleet = rollup("cis-docker-1.8.0")
    summary = body["summary"][0]
    assert summary["score"] == pytest.approx(fleet.score) and summary["coverage"] == pytest.approx(fleet.coverage)
    assert summary["assessed"] / summary["applicable"] == pytest.approx(fleet.coverage)
    assert summary["hosts"] == 2 and summary["failing"]["critical"] >= 1
    rows = {r["name"]: r for r in body["results"]}
    assert set(rows) == {"web0", "web1"} and rows["web0"]["scan"] is not None
    assert rows["web0"]["frameworks"][0]["score"] == pytest.approx(rollup("cis-docker-1.8.0", [web0]).score)
    # web1's last scan lost the privileged container: one critical failure fewer.
    assert rows["web0"]["failing"]["critical"] == rows["web1"]["failing"]["critical"] + 1
    slugs = ["cis-docker-1.8.0", "soc2-2017"]
    assert fleet_and_hosts(slugs)[1] == {h: {f: r.tally for f, r in per.items()}
                                         for h, per in host_rollups(slugs).items()}
    every = client.get("/api/v1/posture/").json()
    assert [s["framework"] for s in every["summary"]] == ["cis-docker-1.6.0", "cis-docker-1.8.0", "soc2-2017"]


def test_it_reads_posture_at_a_past_moment_and_for_one_host(client):
    _fleet(2)
    DockerHost.objects.create(name="late", url="unix:///late.sock")  # registered just now
    past = client.get("/api/v1/posture/", {"at": (timezone.now() - DAY / 2).isoformat()}).json()
    assert [r["name"] for r in past["results"]] == ["web0", "web1"]
    web0, web1 = past["results"]
    assert web0["failing"] == web1["failing"] and web0["scan"] != web1["scan"]  # both still privileged then
    one = client.get("/api/v1/posture/", {"host": "web1", "framework": "soc2-2017"}).json()
    assert [r["name"] for r in one["results"]] == ["web1"] and one["summary"][0]["hosts"] == 1
    bad = client.get("/api/v1/posture/", {"framework": "iso-27001"})
    assert bad.status_code == 400 and "soc2-2017" in api_error(bad)["fields"]["framework"][0]


def test_it_summarises_posture_in_as_many_queries_for_six_hosts_as_for_two(client):
    _fleet(2)
    small = _queries(client, "/api/v1/posture/", before=_forget_cached_reads)
    _fleet(4, start=2)
    assert _queries(client, "/api/v1/posture/", before=_forget_cached_reads) == small


def test_a_posture_summary_asked_again_is_the_cached_one_until_what_it_shows_changes(client):
    web0, web1 = _fleet(2)
    first = client.get("/api/v1/posture/").json()
    with CaptureQueriesContext(connection) as captured:
        again = client.get("/api/v1/posture/").json()
    assert len(captured) <= 5, [q["sql"][:120] for q in captured]  # the key: a few small queries
    # The same answer, read at a later moment.
    assert again["results"] == first["results"] and again["summary"][0]["at"] > first["summary"][0]["at"]
    assert [{k: v for k, v in s.items() if k != "at"} for s in again["summary"]] == \
        [{k: v for k, v in s.items() if k != "at"} for s in first["summary"]]
    # A host registered (not scanned yet) is listed; a renamed one shows its new name.
    DockerHost.objects.create(name="new", url="unix:///new.sock")
    DockerHost.objects.filter(pk=web0.pk).update(name="web0-renamed")
    assert [r["name"] for r in client.get("/api/v1/posture/").json()["results"]] == ["new", "web0-renamed", "web1"]
    # A new scan of web1 with the privileged container back: one critical failure more.
    cis = {"framework": "cis-docker-1.8.0"}
    before = {r["name"]: r["failing"]["critical"] for r in client.get("/api/v1/posture/", cis).json()["results"]}
    scan_at(web1, SNAPSHOT, timezone.now() - timedelta(minutes=1))
    after = {r["name"]: r["failing"]["critical"] for r in client.get("/api/v1/posture/", cis).json()["results"]}
    assert after["web1"] == before["web1"] + 1 and after["web0-renamed"] == before["web0-renamed"]


# --- history -----------------------------------------------------------------------------------

def test_it_lists_failure_windows_open_or_closed_for_a_host_check_and_period(client):
    _fleet(2)
    closed = client.get("/api/v1/history/windows/", {"check": PRIV, "state": "closed"}).json()["results"]
    assert [(w["host"]["name"], w["resource"], w["open"]) for w in closed] == [("web1", "rec-privileged", False)]
    still = client.get("/api/v1/history/windows/", {"check": PRIV, "state": "open", "host": "web0"}).json()
    assert still["count"] == 1 and still["results"][0]["closed_at"] is None
    window = FailureWindow.objects.get(pk=closed[0]["id"])
    assert closed[0]["duration"] == pytest.approx((window.closed_at - window.opened_at).total_seconds())
    later = client.get("/api/v1/history/windows/", {"check": PRIV, "from": timezone.now().isoformat()}).json()
    assert [w["host"]["name"] for w in later["results"]] == ["web0"]  # web1's closed before the period


@pytest.mark.parametrize("params, field, words", [
    ({"from": "2026-02-30"}, "from", "not a valid ISO 8601"),
    ({"from": "2026-05-01", "to": "2026-04-01"}, "from", "from must be before to"),
    ({"from": "2000-01-01", "to": "2026-01-01"}, "from", "at most 3660 days"),
    ({"state": "closing"}, "state", "open, closed"),
])
@pytest.mark.parametrize("path", ["/api/v1/history/windows/", "/api/v1/history/gaps/",
                                  "/api/v1/history/effectiveness/"])
def test_it_refuses_a_bad_period_with_the_error_shape(client, path, params, field, words):
    if "state" in params and path != "/api/v1/history/windows/":
        params, field, words = {"framework": "nope"}, "framework", "cis-docker-1.8.0"
        if path == "/api/v1/history/gaps/":
            params, field, words = {"days": "30"}, "days", "accepted:"
    response = client.get(path, params)
    assert response.status_code == 400 and words in api_error(response)["fields"][field][0], response.content


def test_it_gives_a_daily_trend_over_30_90_or_365_days(client):
    _fleet(1, scans=3)
    body = client.get("/api/v1/history/trends/", {"framework": "soc2-2017", "host": "web0"}).json()
    assert body["days"] == 30 and len(body["points"]) == 30 and body["host"] == "web0"
    assert [p["hosts"] for p in body["points"][-3:]] == [1, 1, 1] and body["points"][0]["gap"]
    assert body["points"][-1]["score"] is not None
    assert len(client.get("/api/v1/history/trends/", {"days": "365"}).json()["points"]) == 365
    bad = client.get("/api/v1/history/trends/", {"days": "7"})
    assert bad.status_code == 400 and "30, 90, 365" in api_error(bad)["fields"]["days"][0]


def test_it_measures_operating_effectiveness_per_control_for_a_period(client):
    _fleet(2)
    start = (timezone.now() - 3 * DAY).isoformat()
    body = client.get("/api/v1/history/effectiveness/", {"from": start, "control": "5.5"}).json()
    [row] = body["controls"]
    assert row["ref"] == "5.5" and PRIV in row["checks"] and body["hosts"] == 2
    assert 0 < row["share"] < 1 and row["hosts_failing"] == 2 and row["windows"] == 2  # one failure per host
    assert row["passing"] == pytest.approx(row["expected"] - row["failing"] - row["excepted"] - row["gaps"])
    one = client.get("/api/v1/history/effectiveness/", {"from": start, "control": "5.5", "host": "web0"}).json()
    assert one["controls"][0]["windows"] == 1 and one["controls"][0]["stretches"][0]["ongoing"] is True
    bad = client.get("/api/v1/history/effectiveness/", {"control": "99.9"})
    assert bad.status_code == 400 and "99.9" in api_error(bad)["message"]


def test_it_lists_collection_gaps(client):
    _fleet(1, scans=1)
    DockerHost.objects.update(created_at=timezone.now() - 10 * DAY)
    gaps = client.get("/api/v1/history/gaps/", {"host": "web0"}).json()["results"]
    assert len(gaps) == 1 and gaps[0]["host"]["name"] == "web0" and gaps[0]["last_scan"] is None
    assert gaps[0]["duration"] == pytest.approx(10 * 86400 - 300, abs=60)


def test_it_answers_history_in_as_many_queries_for_six_hosts_as_for_two(client):
    _fleet(2)
    urls = ["/api/v1/history/windows/", "/api/v1/history/gaps/", "/api/v1/history/trends/",
            "/api/v1/history/effectiveness/"]
    small = [_queries(client, url) for url in urls]
    _fleet(4, start=2)
    assert [_queries(client, url) for url in urls] == small


# --- frameworks --------------------------------------------------------------------------------

def test_it_lists_frameworks_and_their_controls_with_mapping_and_rationale(client):
    listed = client.get("/api/v1/frameworks/").json()["results"]
    assert [f["slug"] for f in listed] == ["cis-docker-1.6.0", "cis-docker-1.8.0", "soc2-2017"]
    soc2 = client.get("/api/v1/frameworks/soc2-2017/").json()
    assert soc2["controls"] == len(soc2["control_list"]) == 61 and soc2["controls_url"].endswith("?framework=soc2-2017")
    by_ref = {c["ref"]: c for c in soc2["control_list"]}
    assert by_ref["CC1.1"]["rationale"].startswith("Governance") and by_ref["CC1.1"]["checks"] == []
    assert PRIV in [c["id"] for c in by_ref["CC6.8"]["checks"]]
    assert client.get(f"/api/v1/controls/{by_ref['CC6.8']['id']}/").json()["ref"] == "CC6.8"
    assert client.get("/api/v1/frameworks/iso-27001/").status_code == 404


# --- evidence ----------------------------------------------------------------------------------

def test_it_lists_a_scans_evidence_and_returns_a_payload_by_its_sha256(client):
    host = DockerHost.objects.create(name="web0", url="unix:///web0.sock")
    scan = scan_at(host, SNAPSHOT, timezone.now())
    url = f"/api/v1/scans/{scan.pk}/evidence/"
    items = client.get(url, {"page_size": 500}).json()
    kinds = {i["kind"] for i in items["results"]}
    assert items["count"] == len(SNAPSHOT["containers"]) + len(SNAPSHOT["images"]) + 2 + ("host" in kinds)
    [priv] = client.get(url, {"kind": "container", "name": "rec-privileged"}).json()["results"]
    body = client.get(f"{url}{priv['sha256']}/").json()
    assert body["payload"]["name"] == "rec-privileged" and body["key"] == priv["key"]
    assert hashlib.sha256(canonical_json(body["payload"]).encode()).hexdigest() == priv["sha256"]
    image = SNAPSHOT["images"][0]
    by_key = client.get(url, {"key": image["id"]}).json()["results"]  # "sha256:..." keys: a query parameter
    assert [i["name"] for i in by_key] == [(image.get("tags") or [image["id"]])[0]]
    assert client.get(f"{url}{'0' * 64}/").status_code == 404
    assert client.get(f"{url}not-a-digest/").status_code == 404
    bad = client.get(url, {"kind": "volume"})
    assert bad.status_code == 400 and "container" in api_error(bad)["fields"]["kind"][0]
    assert json.loads(client.get(url, {"name": "no/such:name"}).content)["count"] == 0


# --- the index ---------------------------------------------------------------------------------

def test_it_shows_the_api_index_only_to_a_role(client, outsider):
    assert client.get("/api/v1/").status_code == 200
    assert "findings" in client.get("/api/v1/").json()
    stranger = APIClient()
    stranger.force_authenticate(outsider)
    refused = stranger.get("/api/v1/")
    assert refused.status_code == 403 and "role" in api_error(refused)["message"]
    assert APIClient().get("/api/v1/").status_code == 401

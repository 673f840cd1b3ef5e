"""The API's shape, as the schema promises it: every list paginated one way with a capped page
size, a list's query count independent of its rows, conditional GET on the heavy reads, every
error answer documented, date filters that take any ISO 8601 offset, and a schema that
validates without warnings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from posture.models import DockerHost
from tests.posture.api.test_permission_matrix import EXPECTATIONS, OPERATIONS
from tests.posture.api.world import World, build_world
from tests.posture.conftest import api_error

pytestmark = pytest.mark.django_db
LISTS = sorted(op for op, (method, path) in OPERATIONS.items() if op.endswith("_list"))


@pytest.fixture
def world(personas, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world(personas)


@pytest.fixture
def admin_client(world) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.tokens['admin']}")
    return client


def _url(world: World, operation: str) -> str:
    method, path = OPERATIONS[operation]
    expect = EXPECTATIONS[operation]
    return expect.path(world, "admin", path)


# --- pagination: one style, capped page size ---------------------------------------------------

@pytest.mark.parametrize("operation", LISTS)
def test_it_paginates_every_list_the_same_way(world, admin_client, operation):
    body = admin_client.get(_url(world, operation), {"page_size": 1}).json()
    assert {"count", "next", "previous", "results"} <= set(body) and len(body["results"]) <= 1
    if body["count"] > 1:
        assert "page=2" in body["next"] and "page_size=1" in body["next"]


@pytest.mark.parametrize("params, name", [({"page_size": "0"}, "page_size"), ({"page_size": "-3"}, "page_size"),
                                          ({"page_size": "ten"}, "page_size"), ({"page": "0"}, "page"),
                                          ({"page": "-18089957628453019648"}, "page"), ({"page": "x"}, "page")])
def test_it_refuses_a_page_or_size_that_is_not_a_positive_whole_number(world, admin_client, params, name):
    response = admin_client.get("/api/v1/hosts/", params)
    assert response.status_code == 400
    assert "a whole number of at least 1" in api_error(response)["fields"][name][0]


def test_it_says_how_many_pages_there_are_past_the_last(world, admin_client):
    response = admin_client.get("/api/v1/hosts/", {"page": 7})
    assert response.status_code == 404 and api_error(response)["message"] == "no page 7: there is 1 page of 50"


def test_it_clamps_a_page_size_over_the_cap_to_500(world, admin_client):
    DockerHost.objects.bulk_create(DockerHost(name=f"bulk-{i:03}", url="unix:///x.sock") for i in range(520))
    body = admin_client.get("/api/v1/hosts/", {"page_size": 100000}).json()
    assert body["count"] == 521 and len(body["results"]) == 500 and "page=2" in body["next"]


# --- query counts: independent of the rows on the page -----------------------------------------

@pytest.fixture
def big_world(personas, settings, tmp_path) -> World:
    """Ten hosts' worth of everything: more than 10 rows in every list."""
    settings.MEDIA_ROOT = tmp_path / "media"
    worlds = [build_world(personas, name=f"h{i}") for i in range(10)]
    # Registered five days before their first scan: a collection gap each (/history/gaps/).
    DockerHost.objects.update(created_at=timezone.now() - timedelta(days=5))
    return worlds[0]


@pytest.mark.parametrize("operation", LISTS)
def test_it_lists_in_as_many_queries_for_10_rows_as_for_2(big_world, operation):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {big_world.tokens['admin']}")
    url = _url(big_world, operation)
    counts = {}
    for size in (2, 10):
        client.get(url, {"page_size": size})  # warm: the token's last_used_at, caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {"page_size": size})
        body = response.json()
        # Every list holds more than 10 rows but the catalog's frameworks (3): all of them.
        assert response.status_code == 200 and len(body["results"]) == min(size, body["count"]), operation
        assert body["count"] >= 3, operation
        counts[size] = len(queries)
    assert counts[10] <= counts[2], f"{operation}: {counts} ({[q['sql'][:120] for q in queries.captured_queries]})"


# --- ETag and conditional GET ------------------------------------------------------------------

CONDITIONAL = ["scans_results_list", "scans_controls_list", "scans_diff_retrieve", "controls_list",
               "controls_retrieve", "findings_list", "posture_list", "history_trends_retrieve", "scans_evidence_list",
               "scans_evidence_retrieve"]


@pytest.mark.parametrize("operation", CONDITIONAL)
def test_it_answers_304_to_a_matching_if_none_match(world, admin_client, operation):
    url = _url(world, operation)
    first = admin_client.get(url)
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = admin_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    other = admin_client.get(url, HTTP_IF_NONE_MATCH='"something-else"')
    assert other.status_code == 200 and other["ETag"] == etag and other.content  # the answer, in full


def test_it_gives_a_new_etag_when_the_answer_changes(world, admin_client):
    from posture.jobs import exceptions as exception_jobs

    url = _url(world, "scans_results_list")
    before = admin_client.get(url)["ETag"]
    exception_jobs.decide(world.approved.decided_by, world.pending, approve=True)  # excepts rec-privileged
    after = admin_client.get(url, HTTP_IF_NONE_MATCH=before)
    assert after.status_code == 200 and after["ETag"] != before


# --- bad dates: any ISO 8601 offset, never a 500 -----------------------------------------------

@pytest.mark.parametrize("path, param", [("/api/v1/scans/", "finished_after"), ("/api/v1/scans/", "finished_before"),
                                         ("/api/v1/exceptions/", "in_force_at"),
                                         ("/api/v1/exceptions/", "expiring_before"),
                                         ("/api/v1/attestations/", "valid_at")])
@pytest.mark.parametrize("moment", ["0047-03-05T08:08:13.774411-23:25", "0144-11-13T20:56:53.14-16:49",
                                    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_it_takes_any_iso_offset_in_a_date_filter(world, admin_client, path, param, moment):
    assert admin_client.get(path, {param: moment}).status_code == 200


# --- the schema --------------------------------------------------------------------------------

def test_it_documents_the_error_body_for_every_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    missing = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            needed = {"401", "403", "429"} | ({"404"} if "{" in path else set())
            needed |= {"400"} if "requestBody" in op or any(p["in"] == "query" for p in op.get("parameters", [])) else set()
            for code in needed:
                content = op["responses"].get(code, {}).get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") != "#/components/schemas/Error":
                    missing.append(f"{method.upper()} {path} {code}")
            if method == "delete" and "204" in codes:
                missing.append(f"{method.upper()} {path} says 204 but answers 200 with the object")
    assert missing == []


def test_it_serves_a_schema_that_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000



def test_it_documents_the_summary_beside_a_scans_control_rollup():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    ok = schema["paths"]["/api/v1/scans/{id}/controls/"]["get"]["responses"]["200"]["content"]["application/json"]
    page = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    assert page["properties"]["summary"]["items"] == {"$ref": "#/components/schemas/RollupSummary"}
    assert {"score", "coverage", "framework"} <= set(schema["components"]["schemas"]["RollupSummary"]["properties"])


# --- query parameters: typed as the server parses them, and every one documented is accepted ---

def _query_params(schema: dict, path: str) -> dict[str, dict]:
    return {p["name"]: p for p in schema["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}


def test_it_types_each_filter_parameter_as_the_server_parses_it():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    findings, controls = _query_params(schema, "/api/v1/findings/"), _query_params(schema, "/api/v1/controls/")
    hosts, windows = _query_params(schema, "/api/v1/hosts/"), _query_params(schema, "/api/v1/history/windows/")
    trends = _query_params(schema, "/api/v1/history/trends/")
    for moment in (findings["at"], findings["new_since"], controls["at"], windows["from"], windows["open_at"]):
        assert moment["schema"] == {"type": "string", "format": "date-time"}
    assert controls["supportable"]["schema"] == {"type": "boolean"}
    assert hosts["enabled"]["schema"] == hosts["last_scan_failed"]["schema"] == {"type": "boolean"}
    assert findings["page_size"]["schema"] == {"type": "integer", "minimum": 1}
    assert trends["days"]["schema"] == {"type": "integer", "enum": [30, 90, 365]}
    status = findings["status"]
    assert status["schema"]["type"] == "array" and status["style"] == "form" and status["explode"] is False
    assert {"fail", "error", "pass"} <= set(status["schema"]["items"]["enum"])
    assert windows["state"]["schema"] == {"type": "string", "enum": ["closed", "open"]}
    assert findings["status"]["description"].startswith("after exceptions and attestations")
    # Choices read from the database (frameworks, checks) are not listed: the schema never queries it.
    assert findings["framework"]["schema"] == findings["check"]["schema"] == {"type": "string"}


def _sample(param: dict, world: World) -> str:
    """A value of the parameter's schema, as a client sends it in the query string."""
    schema = param["schema"]
    item = schema.get("items", schema)
    if "enum" in item:
        return str(item["enum"][0])
    return {"boolean": "true", "integer": "1"}.get(item["type"]) or (
        "2026-01-01T00:00:00Z" if item.get("format") == "date-time" else world.host.name)


@pytest.mark.parametrize("operation", sorted(op for op, (method, _path) in OPERATIONS.items() if method == "GET"))
def test_it_accepts_every_query_parameter_it_documents(world, admin_client, operation):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    path = OPERATIONS[operation][1]
    refused = []
    for name, param in _query_params(schema, path).items():
        response = admin_client.get(_url(world, operation), {name: _sample(param, world)})
        fields = api_error(response).get("fields", {}) if response.status_code == 400 else {}
        if any("unknown parameter" in message for message in fields.get(name, [])):
            refused.append(name)
    assert refused == []


@pytest.mark.parametrize("path, params", [
    ("/api/v1/findings/", {"status": "fail,error", "ordering": "-severity,check", "severity": "high,critical"}),
    ("/api/v1/controls/", {"supportable": "false", "status": "pass,fail", "at": "2026-01-01"}),
    ("/api/v1/history/trends/", {"days": "90"}),
])
def test_it_parses_the_values_the_schema_describes(world, admin_client, path, params):
    """An array parameter (style form, explode false) arrives comma-separated; a date-time
    parameter also takes a date (midnight); a boolean is spelled true or false."""
    assert admin_client.get(path, params).status_code == 200


def test_it_refuses_a_yes_no_filter_spelled_otherwise(admin_client):
    """?supportable=maybe is a 400 naming true/false, not every control."""
    bad = admin_client.get("/api/v1/controls/", {"supportable": "maybe"})
    assert bad.status_code == 400 and "true" in bad.json()["error"]["fields"]["supportable"][0]

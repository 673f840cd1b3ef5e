"""One error body for every API error: {"error": {"status", "code", "message", "fields"?}},
for DRF's errors, Django's 404 under /api/, a conflict and an unhandled bug (500, logged)."""

from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from posture.jobs.tokens import create_token
from tests.posture.conftest import api_error
from tests.posture.test_api import client_for

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.posture.api.error_urls")]


def shaped(response, status: int, code: str) -> dict:
    """The error body, checked to have exactly the documented keys and the response's status."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    error = api_error(response)
    assert set(error) <= {"status", "code", "message", "fields"} and {"status", "code", "message"} <= set(error)
    assert error["status"] == status and error["code"] == code and error["message"]
    assert ("fields" in error) == (code == "invalid")
    return error


def test_it_shapes_a_validation_error_by_field(operator):
    response = client_for(operator).post("/api/v1/hosts/", {"name": "bad name!", "url": "http://x"}, format="json")
    error = shaped(response, 400, "invalid")
    assert set(error["fields"]) == {"name", "url"} and all(isinstance(m, str) for v in error["fields"].values() for m in v)
    assert error["message"].startswith("name: ") and "; url: " in error["message"]


def test_it_shapes_an_unparseable_body(operator):
    response = client_for(operator).post("/api/v1/hosts/", "{not json", content_type="application/json")
    assert "JSON parse error" in shaped(response, 400, "parse_error")["message"]


def test_it_shapes_a_missing_credential(db):
    assert "Authorization: Bearer" in shaped(APIClient().get("/api/v1/hosts/"), 401, "not_authenticated")["message"]


def test_it_shapes_a_refused_token(operator):
    new = create_token(operator, "x")
    client_for(operator).delete(f"/api/v1/tokens/{new.row.pk}/")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new.token}")
    shaped(client.get("/api/v1/hosts/"), 401, "token_revoked")


def test_it_shapes_a_refusal_naming_the_role(outsider):
    assert "no posture role" in shaped(client_for(outsider).get("/api/v1/hosts/"), 403, "permission_denied")["message"]


def test_it_shapes_an_object_that_is_not_there(operator):
    shaped(client_for(operator).get("/api/v1/hosts/999999/"), 404, "not_found")


def test_it_answers_json_for_an_unknown_api_url_and_html_for_pages(operator):
    error = shaped(client_for(operator).get("/api/v1/no-such-thing/"), 404, "not_found")
    assert error["message"] == "no API endpoint at /api/v1/no-such-thing/"
    page = client_for(operator).get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_it_shapes_a_method_not_allowed(operator):
    assert 'Method "DELETE" not allowed' in shaped(client_for(operator).delete("/api/v1/scans/"), 405,
                                                  "method_not_allowed")["message"]


def test_it_shapes_an_unsupported_media_type(operator):
    shaped(client_for(operator).post("/api/v1/hosts/", "name=x", content_type="text/plain"), 415,
           "unsupported_media_type")


def test_it_shapes_a_conflict(operator):
    assert shaped(client_for(operator).get("/api/v1/test/conflict/"), 409, "conflict")["message"] == \
        "a token named 'ci' already exists"


def test_it_shapes_throttling_with_retry_after(db, settings):
    settings.POSTURE_API_THROTTLE_ANON = "1/min"
    APIClient().get("/api/v1/hosts/")
    response = APIClient().get("/api/v1/hosts/")
    assert "try again in" in shaped(response, 429, "throttled")["message"]
    assert 1 <= int(response["Retry-After"]) <= 60


def test_it_answers_a_bug_with_a_logged_500_that_tells_nothing_inside(operator, caplog):
    with caplog.at_level(logging.ERROR):
        response = client_for(operator).get("/api/v1/test/bug/")
    error = shaped(response, 500, "server_error")
    assert "internal detail" not in response.content.decode() and "logged" in error["message"]
    logged = [r for r in caplog.records if r.name == "posture.api"]
    assert len(logged) == 1 and logged[0].exc_info and "internal detail" in str(logged[0].exc_info[1])
    assert not [r for r in caplog.records if r.name == "django.request"]  # logged once, with the traceback


def test_it_answers_json_for_errors_outside_the_views_under_api_only(rf):
    from posture.api.errors import server_error

    api = server_error(rf.get("/api/v1/hosts/"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json"
    assert api.content.decode() == '{"error":{"status":500,"code":"server_error","message":"internal server error: ' \
        'it has been logged; please report it with the time of the request"}}'
    assert server_error(rf.get("/")).get("Content-Type", "").startswith("text/html")

"""The OpenAPI schema and the docs page need a login; the docs page starts with no inline code."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_it_refuses_the_schema_to_anonymous_clients():
    response = Client().get("/api/v1/schema/?format=json")
    assert response.status_code == 401


def test_it_sends_anonymous_browsers_from_the_docs_to_the_login_page():
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/api/v1/docs/"
    assert Client().get("/api/v1/docs/?script=").status_code == 302


def test_it_serves_the_docs_and_their_start_up_script_as_a_file(auditor):
    client = Client()
    client.force_login(auditor)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<style>" not in html and "<script>" not in html  # every script and style has a src/href
    assert 'src="/api/v1/docs/?script="' in html
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    assert client.get("/api/v1/schema/?format=json").status_code == 200

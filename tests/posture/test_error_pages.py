"""Friendly error pages in production (DEBUG off): 404, 403 (the refusal says why) and 500
(nothing of the error reaches the page), in the site's layout and under its CSP."""

from __future__ import annotations

import pytest
from django.urls import path

from posture.urls import handler400, handler404, handler500
from posture.urls import urlpatterns as site_urlpatterns


def bug(request):
    raise RuntimeError("internal detail that must not reach the page")


# This module doubles as the URLconf of its tests: the site's URLs plus a page with a bug.
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
urlpatterns = [path("test/page-bug/", bug), *site_urlpatterns]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def test_it_answers_an_unknown_page_with_a_friendly_404(client, auditor):
    client.force_login(auditor)
    response = client.get("/no/such/<b>page</b>/")
    body = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in body and "<code>/no/such/%3Cb%3Epage%3C/b%3E/</code>" in body
    assert 'class="mainnav"' in body and "Go to the overview" in body
    assert "URLconf" not in body and "Traceback" not in body  # not Django's debug page


def test_it_answers_a_404_to_anonymous_visitors_without_the_navigation(client):
    body = client.get("/no/such/page/").content.decode()
    assert "Page not found" in body and 'class="mainnav"' not in body


def test_it_keeps_the_403_heading_and_names_the_refusal(client, outsider):
    client.force_login(outsider)
    response = client.get("/hosts/")
    body = response.content.decode()
    assert response.status_code == 403 and "<h1>403 Forbidden</h1>" in body
    assert "your account has no posture role: ask an admin to add you to the operator or auditor group" in body
    assert 'class="mainnav"' not in body  # no role: no sections to offer


def test_it_answers_a_bug_with_a_friendly_500_that_tells_nothing_inside(client, auditor, caplog):
    client.raise_request_exception = False
    client.force_login(auditor)
    response = client.get("/test/page-bug/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body and "/static/posture/site.css" in body
    assert "internal detail" not in body and "RuntimeError" not in body
    assert "content-security-policy" in {k.lower() for k in response.headers}
    assert "internal detail that must not reach the page" in caplog.text  # logged for the admin

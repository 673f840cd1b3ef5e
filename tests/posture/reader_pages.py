"""The world the findings and controls page tests share: hosts scanned from the recorded
snapshot (``scanned``; the ``web_hosts`` fixture of tests/posture/conftest.py scans web-1 and
web-2), hostile strings, and the page x role tests every reader page passes.

    from tests.posture.reader_pages import ESCAPED, HOSTILE, reader_page_tests, scanned
    (test_it_sends_anonymous_visitors_to_the_login_page, test_it_refuses_accounts_without_a_role,
     test_it_lets_every_role_read) = reader_page_tests(PAGES)
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from unittest import mock

import pytest
from django.test import Client

from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost
from tests.posture.conftest import SNAPSHOT, stored_scan

#: A container (or host) name that would run script if a page did not escape it.
HOSTILE = '<img src=x onerror=alert(1)>'
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def scanned(name: str, snapshot: dict = SNAPSHOT) -> DockerHost:
    """A host named ``name`` with one succeeded, evaluated scan of ``snapshot``."""
    host = DockerHost.objects.create(name=name, url=f"unix:///{re.sub(r'[^a-z0-9-]', '', name)}.sock")
    evaluate_scan(stored_scan(host, snapshot))
    return host


def reader_page_tests(pages: list[str]):
    """The three tests of a page every role reads: anonymous visitors go to the login page,
    an account without a role is refused (403 saying so), each role gets a 200."""

    @pytest.mark.parametrize("path", pages)
    def test_it_sends_anonymous_visitors_to_the_login_page(client: Client, path):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/")

    @pytest.mark.parametrize("path", pages)
    def test_it_refuses_accounts_without_a_role(client: Client, outsider, path):
        client.force_login(outsider)
        response = client.get(path)
        assert response.status_code == 403 and "no posture role" in response.content.decode()

    @pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
    @pytest.mark.parametrize("path", pages)
    def test_it_lets_every_role_read(client: Client, personas, web_hosts, role, path):
        client.force_login(personas[role])
        assert client.get(path).status_code == 200

    return (test_it_sends_anonymous_visitors_to_the_login_page, test_it_refuses_accounts_without_a_role,
            test_it_lets_every_role_read)


@contextmanager
def formatting_calls():
    """Counts the values a block formats through Django's locale machinery (``number_format``
    for a number printed by ``{{ }}``, ``date_format`` for the ``date`` filter): the costly
    part of a template's inner loop, which must not grow with hosts, scans or windows."""
    from django.utils import formats

    counts = {"numbers": 0, "dates": 0}

    def counting(name, fn):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    with (mock.patch.object(formats, "number_format", counting("numbers", formats.number_format)),
          mock.patch.object(formats, "date_format", counting("dates", formats.date_format))):
        yield counts

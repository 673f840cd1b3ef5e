"""Shared by the Django tests: named personas and stored scans of recorded evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from posture.choices import ScanState
from posture.jobs import ingest
from posture.models import DockerHost, ScanRun

#: Recorded from a real daemon (tests/fixtures/checks/record.py): 8 containers, 4 images.
SNAPSHOT = json.loads((Path(__file__).parents[1] / "fixtures" / "checks" / "snapshot.json").read_text())


def member(name: str, group: str | None) -> User:
    user = User.objects.create_user(name, password="x")
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def admin(db) -> User:
    return User.objects.create_superuser("admin", "", "x")


@pytest.fixture
def operator(db) -> User:
    return member("olive", "operator")


@pytest.fixture
def auditor(db) -> User:
    return member("audrey", "auditor")


@pytest.fixture
def outsider(db) -> User:
    return member("otto", None)


@pytest.fixture
def personas(admin, operator, auditor, outsider) -> dict[str, User]:
    return {"admin": admin, "operator": operator, "auditor": auditor, "outsider": outsider}


@pytest.fixture
def web_hosts(db) -> list[DockerHost]:
    """web-1 and web-2, each with one evaluated scan of SNAPSHOT (the page tests' world)."""
    from tests.posture.reader_pages import scanned

    return [scanned("web-1"), scanned("web-2")]


def stored_scan(host: DockerHost, snapshot: dict, **fields) -> ScanRun:
    """A succeeded scan whose evidence is ``snapshot``, as if a worker had collected it."""
    stored = ingest.store_snapshot(snapshot)
    now = timezone.now()
    return ScanRun.objects.create(host=host, state=ScanState.SUCCEEDED, evidence_set=stored.evidence_set,
                                  started_at=now, finished_at=now, warnings=snapshot.get("warnings", []), **fields)


def api_error(response) -> dict:
    """The API's error body (posture/api/errors.py): {"status", "code", "message", "fields"?}."""
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]

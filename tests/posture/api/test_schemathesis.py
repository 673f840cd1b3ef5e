"""schemathesis over the whole served schema, against a live server (pytest-django's
live_server: a real HTTP server in a thread, on the test database) authenticated as admin
with a personal token: no 500s, and every response (status code, content type, headers,
body) is one the schema documents.

Bounded: a few examples per operation (MAX_EXAMPLES), no shrinking, no stateful phase, so the
run stays well under two minutes. Covered: every GET, and the writes whose effects stay inside
the world (hosts, scans, exceptions and their decisions, attestations as JSON). Left out:
revoking tokens (it would revoke the token the run authenticates with; tests/posture/api/
test_tokens.py and the permission matrix cover it) and creating tokens (a token may not)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.posture.api.test_permission_matrix import OPERATIONS
from tests.posture.api.world import build_world

MAX_EXAMPLES = 6
#: Operations the fuzzer leaves alone (see the module docstring).
SKIPPED = ("tokens_destroy", "tokens_revoke_create", "tokens_create")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture
def admin_schema(live_server, transactional_db, personas, settings, tmp_path):
    """The schema as served to the admin's token, aimed at the live server, over a fresh world."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.POSTURE_API_THROTTLE_USER = None  # "off": the run is one client making many requests
    world = build_world(personas)
    auth = {"Authorization": f"Bearer {world.tokens['admin']}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/?format=json", headers=auth)
    schema.config.update(base_url=live_server.url, headers=auth)
    return schema


def _order(operation_id: str) -> tuple[int, str]:
    """Reads first, then writes, archiving hosts last: each write changes the one world."""
    method, _path = OPERATIONS[operation_id]
    return (method != "GET") + (operation_id in ("hosts_destroy", "hosts_archive_create")), operation_id


def _fuzz(operation) -> int:
    """Run MAX_EXAMPLES generated requests against one operation; how many were sent."""
    sent = 0

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=True, phases=[Phase.explicit, Phase.generate], database=None)
    def run(case):
        nonlocal sent
        sent += 1
        case.call_and_validate(checks=CHECKS)

    run()
    return sent


def test_it_answers_as_the_schema_says(admin_schema):
    """One world and one live server for the whole run (a world per operation tripled the
    time); every operation's failures are collected, then reported together."""
    failures, sent = {}, {}
    for operation_id in sorted(set(OPERATIONS) - set(SKIPPED), key=_order):
        method, path = OPERATIONS[operation_id]
        try:
            sent[operation_id] = _fuzz(admin_schema[path][method])
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - schemathesis raises a FailureGroup
            failures[operation_id] = str(exc)[:3000]
    assert not failures, "\n\n".join(f"{op}:\n{text}" for op, text in failures.items())
    assert all(sent.values()) and set(sent) == set(OPERATIONS) - set(SKIPPED)  # every operation was called

"""Every API operation x every kind of caller, generated from the OpenAPI schema: a new
endpoint without an expectation here fails the suite (test_it_has_an_expectation_for_...).

Callers: no credentials, a token whose owner lost every role, the auditor's, operator's and
admin's tokens, an expired and a revoked token. Expected: 401 with the right code without
usable credentials, 403 with a message that names what the role lacks (and only the error
body, never data), the success code for the roles the action is for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from posture import roles
from posture.api.tokens import TOKENS_CANNOT_CREATE
from posture.jobs.tokens import create_token
from posture.models import AuditEvent, Control
from tests.posture.api.world import MANUAL, PRIV, World, build_world
from tests.posture.conftest import api_error

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "norole", "auditor", "operator", "admin", "expired", "revoked")
READ = ("auditor", "operator", "admin")
OPERATE = ("operator", "admin")
DECIDE = ("admin",)
AUDIT = ("auditor", "admin")


@dataclass(frozen=True)
class Expect:
    allowed: tuple[str, ...]
    status: int = 200
    ref: Callable[[World, str], object] | None = None  # the {id} for this caller
    body: Callable[[World], dict] | None = None
    #: Refused to every token whatever its roles (tokens cannot create tokens).
    tokens_refused: str = ""
    #: Path parameters other than {id}, by name.
    params: Callable[[World, str], dict[str, str]] | None = None

    def path(self, w: World, who: str, template: str) -> str:
        if "{id}" in template:
            template = template.replace("{id}", str(self.ref(w, who)))
        for name, value in (self.params(w, who) if self.params else {}).items():
            template = template.replace("{" + name + "}", value)
        return template


def _host(w: World, who: str) -> str:
    return w.host.name  # by name: the id works too (tests/posture/api/test_hosts.py)


def _scan(w: World, who: str) -> int:
    return w.scans[-1].pk


def _digest(w: World, who: str) -> dict[str, str]:
    from posture.queries.evidence import scan_evidence

    return {"sha256": scan_evidence(w.scans[-1], kind="container")[0]["digest"]}


def _own_token(w: World, who: str) -> int:
    return w.token_rows.get(who, w.token_rows["operator"]).pk


def _later(days: int = 7) -> str:
    from datetime import timedelta

    from django.utils import timezone
    return (timezone.now() + timedelta(days=days)).isoformat()


HOST_BODY = {"name": "h1", "url": "unix:///var/run/docker.sock"}
EXPECTATIONS: dict[str, Expect] = {
    "hosts_list": Expect(READ),
    "hosts_create": Expect(OPERATE, 201, body=lambda w: {"name": "new1", "url": "unix:///new.sock"}),
    "hosts_retrieve": Expect(READ, ref=_host),
    "hosts_update": Expect(OPERATE, ref=_host, body=lambda w: HOST_BODY),
    "hosts_partial_update": Expect(OPERATE, ref=_host, body=lambda w: {"enabled": False}),
    "hosts_destroy": Expect(OPERATE, ref=_host),
    "hosts_archive_create": Expect(OPERATE, ref=_host),
    "hosts_unarchive_create": Expect(OPERATE, ref=_host),
    "hosts_test_create": Expect(OPERATE, ref=_host),
    "scans_list": Expect(READ),
    "scans_create": Expect(OPERATE, 201, body=lambda w: {"host": w.host.name}),
    "scans_retrieve": Expect(READ, ref=_scan),
    "scans_results_list": Expect(READ, ref=_scan),
    "scans_controls_list": Expect(READ, ref=_scan),
    "scans_diff_retrieve": Expect(READ, ref=_scan),
    "controls_list": Expect(READ),
    "controls_retrieve": Expect(READ, ref=lambda w, who: Control.objects.order_by("pk").first().pk),
    "exceptions_list": Expect(READ),
    "exceptions_create": Expect(OPERATE, 201, body=lambda w: {
        "check_id": PRIV, "host": w.host.name, "resource_pattern": "rec-*", "justification": "vendor agent",
        "expires_at": _later()}),
    "exceptions_retrieve": Expect(READ, ref=lambda w, who: w.pending.pk),
    "exceptions_approve_create": Expect(DECIDE, ref=lambda w, who: w.pending.pk),
    "exceptions_reject_create": Expect(DECIDE, ref=lambda w, who: w.pending.pk),
    "exceptions_revoke_create": Expect(OPERATE, ref=lambda w, who: w.approved.pk),
    "attestations_list": Expect(READ),
    "attestations_create": Expect(OPERATE, 201, body=lambda w: {
        "check_id": MANUAL, "statement": "done", "valid_until": _later(30)}),
    "attestations_retrieve": Expect(READ, ref=lambda w, who: w.attestation.pk),
    "attestations_file_retrieve": Expect(READ, ref=lambda w, who: w.attestation.pk),
    "audit_events_list": Expect(AUDIT),
    "audit_events_retrieve": Expect(AUDIT, ref=lambda w, who: AuditEvent.objects.order_by("pk").first().pk),
    "reports_list": Expect(READ),
    "reports_create": Expect(READ, 202, body=lambda w: {
        "kind": "csv", "csv_kind": "scans", "framework": "cis-docker-1.8.0",
        "start": _later(-30), "end": _later(-1), "hosts": [w.host.name]}),
    "reports_retrieve": Expect(READ, ref=lambda w, who: w.report.pk),
    "reports_download_retrieve": Expect(READ, 409, ref=lambda w, who: w.report.pk),  # not rendered yet
    "reports_verify_create": Expect(READ, 400),  # no package uploaded: the permission passed, the input did not
    "integrity_retrieve": Expect(READ),
    "findings_list": Expect(READ),
    "posture_list": Expect(READ),
    "frameworks_list": Expect(READ),
    "frameworks_retrieve": Expect(READ, params=lambda w, who: {"slug": "soc2-2017"}),
    "history_windows_list": Expect(READ),
    "history_gaps_list": Expect(READ),
    "history_trends_retrieve": Expect(READ),
    "history_effectiveness_retrieve": Expect(READ),
    "scans_evidence_list": Expect(READ, ref=_scan),
    "scans_evidence_retrieve": Expect(READ, ref=_scan, params=_digest),
    "tokens_list": Expect(READ),
    "tokens_create": Expect(READ, 201, body=lambda w: {"name": "another"}, tokens_refused=TOKENS_CANNOT_CREATE),
    "tokens_retrieve": Expect(READ, ref=_own_token),
    "tokens_destroy": Expect(READ, ref=_own_token),
    "tokens_revoke_create": Expect(READ, ref=_own_token),
}


def operations() -> dict[str, tuple[str, str]]:
    """operationId -> (method, path template), from the schema the API serves."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {op["operationId"]: (method.upper(), path)
            for path, item in schema["paths"].items() for method, op in item.items()}


OPERATIONS = operations()


def test_it_has_an_expectation_for_every_operation_in_the_schema():
    assert sorted(set(OPERATIONS) - set(EXPECTATIONS)) == [], "add these operations to EXPECTATIONS"
    assert sorted(set(EXPECTATIONS) - set(OPERATIONS)) == [], "these expectations name no operation"


def _api_routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    out = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            out += _api_routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            out.append(route)
    return out


def test_it_finds_every_api_route_of_the_url_resolver_in_the_schema():
    """A view routed under /api/v1/ but left out of the schema would escape the matrix."""
    import re

    documented = {re.sub(r"\{[^}]+\}", "X", path) for _m, path in OPERATIONS.values()}
    undocumented = []
    for route in _api_routes(get_resolver()):
        if not route.startswith("^api/v1/") and not route.startswith("api/v1/"):
            continue
        if "format>" in route or route in ("api/v1/", "api/v1/schema/", "api/v1/docs/"):
            continue  # format suffixes, the router's index, the schema and its docs (test_api_docs.py)
        plain = "/" + re.sub(r"\(\?P<[^>]+>[^)]*\)", "X", route).replace("^", "").replace("$", "")
        if plain not in documented:
            undocumented.append(route)
    assert undocumented == []


@pytest.fixture
def world(personas, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.POSTURE_API_THROTTLE_ANON = None  # "off", as settings.env_rate parses it
    settings.POSTURE_API_THROTTLE_USER = None
    w = build_world(personas)
    # A token whose owner has since lost every role (removed from the operator group).
    lost = personas["outsider"]
    lost.groups.add(Group.objects.get_or_create(name=roles.OPERATOR)[0])
    w.tokens["norole"] = create_token(lost, "left the team").token
    lost.groups.clear()
    return w


def _call(w: World, who: str, method: str, path: str, expect: Expect):
    client = APIClient()
    if who != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {w.tokens[who]}")
    path = expect.path(w, who, path)
    body = expect.body(w) if expect.body else None
    return client.generic(method, path, data=__import__("json").dumps(body) if body is not None else "",
                          content_type="application/json")


@pytest.mark.parametrize("operation", sorted(EXPECTATIONS))
def test_it_answers_every_caller_as_its_role_allows(world, operation):
    if operation not in OPERATIONS:
        pytest.fail(f"{operation} is not in the schema")
    method, path = OPERATIONS[operation]
    expect = EXPECTATIONS[operation]
    problems = []
    for who in CALLERS:
        with transaction.atomic():  # each caller sees the same world
            response = _call(world, who, method, path, expect)
            transaction.set_rollback(True)
        status, got = response.status_code, f"{who}: {method} {path} -> {response.status_code}"
        if who in ("anonymous", "expired", "revoked"):
            code = {"anonymous": "not_authenticated", "expired": "token_expired", "revoked": "token_revoked"}[who]
            if status != 401 or api_error(response)["code"] != code:
                problems.append(f"{got}, expected 401 {code}: {response.content[:200]!r}")
            elif response["WWW-Authenticate"] != 'Bearer realm="posture"':
                problems.append(f"{got} without WWW-Authenticate")
        elif who == "norole":
            if status != 403 or api_error(response)["message"] != roles.NO_ROLE:
                problems.append(f"{got}, expected 403 naming the missing role: {response.content[:200]!r}")
        elif expect.tokens_refused:
            if status != 403 or api_error(response)["message"] != expect.tokens_refused:
                problems.append(f"{got}, expected 403 (tokens cannot do this): {response.content[:200]!r}")
        elif who in expect.allowed:
            if status != expect.status:
                problems.append(f"{got}, expected {expect.status}: {response.content[:300]!r}")
        else:
            error = api_error(response) if status == 403 else {}
            message = error.get("message", "")
            if status != 403 or error.get("code") != "permission_denied" or f"the {who} role" not in message \
                    or "needs the" not in message:
                problems.append(f"{got}, expected 403 naming what the {who} role lacks: {response.content[:200]!r}")
    assert problems == []

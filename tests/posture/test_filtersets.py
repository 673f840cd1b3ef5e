"""One FilterSet per listing (hosts, scans, exceptions, attestations, audit events), the same
behind the API and the pages: filters run in SQL, a bad value is a 400 naming the valid
choices, an unknown parameter is a 400 listing the accepted ones (it used to be ignored:
``/hosts/?name=local`` answered every host, ``?status=bogus`` a 200)."""

from __future__ import annotations

from datetime import datetime, timedelta

import django_filters
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from posture.choices import ScanState, Trigger
from posture.filtersets import (
    AttestationFilterSet,
    ControlExceptionFilterSet,
    HostFilterSet,
    ScanFilterSet,
    StrictFilterSet,
    accepted_params,
    strict_filterset,
)
from posture.models import Attestation, ControlException, DockerHost, ScanRun
from posture.models.audit import record
from tests.posture.conftest import api_error
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 6, 1, 12, 0))
CHECK = "container.privileged_disabled"
OTHER_CHECK = "container.host_network_disabled"


def finished(host: DockerHost, state: str, hours: float, trigger: str = Trigger.SCHEDULE) -> ScanRun:
    at = T0 + timedelta(hours=hours)
    return ScanRun.objects.create(host=host, state=state, trigger=trigger, started_at=at, finished_at=at)


@pytest.fixture
def fleet(admin, operator):
    """web1 (unix, probe, latest scan succeeded), web2 (tcp, disabled, latest scan failed
    after a success), db1 (ssh, latest scan errored), old (archived); exceptions and
    attestations for web1 and for every host."""
    web1 = DockerHost.objects.create(name="web1", url="unix:///var/run/docker.sock", probe_enabled=True)
    web2 = DockerHost.objects.create(name="web2", url="tcp://10.0.0.2:2376", enabled=False)
    db1 = DockerHost.objects.create(name="db1", url="ssh://root@db1")
    old = DockerHost.objects.create(name="old", url="unix:///old.sock", enabled=False, archived_at=T0)
    finished(web1, ScanState.FAILED, 0), finished(web1, ScanState.SUCCEEDED, 1, Trigger.CLI)
    finished(web2, ScanState.SUCCEEDED, 0), finished(web2, ScanState.FAILED, 2)
    finished(db1, ScanState.ERRORED, 3)
    ScanRun.objects.create(host=db1, state=ScanState.QUEUED)
    exc = dict(justification="x", proposed_by=operator, decided_by=admin)
    ControlException.objects.create(check_id=CHECK, host=web1, state="approved", decided_at=T0,
                                    expires_at=T0 + timedelta(days=10), **exc)  # e1
    ControlException.objects.create(check_id=CHECK, host=None, state="approved", decided_at=T0,
                                    expires_at=T0 + timedelta(days=40), revoked_at=T0 + timedelta(days=5),
                                    **exc)  # e2: every host, revoked on day 5
    ControlException.objects.create(check_id=OTHER_CHECK, host=web2, state="proposed",
                                    expires_at=T0 + timedelta(days=20), **exc)  # e3
    Attestation.objects.create(check_id="host.audit_docker_daemon", host=web1, statement="s", attested_by=operator,
                               attested_at=T0, valid_until=T0 + timedelta(days=30))
    Attestation.objects.create(check_id="host.separate_partition", host=None, statement="s", attested_by=operator,
                               attested_at=T0 + timedelta(days=2), valid_until=T0 + timedelta(days=3))
    record("host.created", "web1", actor=operator)
    return {"web1": web1, "web2": web2, "db1": db1, "old": old}


def exc_ids() -> dict[int, str]:
    return {pk: f"e{i + 1}" for i, pk in enumerate(ControlException.objects.order_by("pk").values_list("pk", flat=True))}


HOST_CASES = [
    ({}, ["db1", "web1", "web2"]),
    ({"name": "web1"}, ["web1"]),
    ({"name": "local"}, []),
    ({"name_contains": "WEB"}, ["web1", "web2"]),
    ({"enabled": "false"}, ["web2"]),
    ({"enabled": "true"}, ["db1", "web1"]),
    ({"archived": "true"}, ["old"]),
    ({"archived": "all"}, ["db1", "old", "web1", "web2"]),
    ({"probe": "true"}, ["web1"]),
    ({"scheme": "tcp"}, ["web2"]),
    ({"scheme": "ssh", "enabled": "true"}, ["db1"]),
    ({"last_scan_failed": "true"}, ["db1", "web2"]),
    ({"last_scan_failed": "false"}, ["web1"]),
    ({"page": "1", "page_size": "10", "format": "json", "ordering": "name"}, ["db1", "web1", "web2"]),
]


@pytest.mark.parametrize("params, names", HOST_CASES)
def test_it_filters_hosts_in_the_api(personas, fleet, params, names, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        body = client_for(personas["auditor"]).get("/api/v1/hosts/", params).json()
    assert sorted(h["name"] for h in body["results"]) == names


@pytest.mark.parametrize("params, names", HOST_CASES[1:-1])
def test_it_refuses_host_filters_on_the_overview(client: Client, auditor, fleet, params, names):
    """``/`` is the Overview now (the host list is /hosts/): a host filter there is a 400
    naming the parameter, never an overview silently unfiltered."""
    client.force_login(auditor)
    response = client.get("/", params)
    assert response.status_code == 400
    assert "unknown parameter" in response.content.decode() and next(iter(params)) in response.content.decode()


@pytest.mark.parametrize("filterset, params, columns", [
    (HostFilterSet, {"last_scan_failed": "true", "scheme": "tcp"}, ['"url"::text LIKE', '"state" IN', '"archived_at" IS NULL']),
    (ScanFilterSet, {"host": "web1", "state": "failed"}, ['"name" = ', '"state" = ']),
    (ControlExceptionFilterSet, {"in_force_at": T0.isoformat(), "host": "web1"}, ['"decided_at" <=', '"expires_at" >']),
    (AttestationFilterSet, {"valid_at": T0.isoformat(), "check": "x"}, ['"attested_at" <=', '"check_id" = ']),
])
def test_it_filters_in_sql(fleet, filterset, params, columns):
    """A FilterSet's answer is one SQL query with the filters in its WHERE clause (nothing is
    filtered in Python)."""
    fs = filterset(params, queryset=filterset._meta.model.objects.all())
    assert fs.is_valid(), fs.errors
    with CaptureQueriesContext(connection) as queries:
        list(fs.qs)
    (query,) = queries.captured_queries
    where = query["sql"].split(" WHERE ", 1)[1]
    assert all(column in where for column in columns), where


SCAN_CASES = [
    ({"host": "web1"}, ["web1 failed", "web1 succeeded"]),
    ({"state": "failed"}, ["web1 failed", "web2 failed"]),
    ({"trigger": "cli"}, ["web1 succeeded"]),
    ({"finished_after": (T0 + timedelta(hours=2)).isoformat()}, ["db1 errored", "web2 failed"]),
    ({"finished_before": (T0 + timedelta(hours=1)).isoformat()}, ["web1 failed", "web2 succeeded"]),
    ({"host": "db1", "state": "queued"}, ["db1 queued"]),
]


@pytest.mark.parametrize("params, expected", SCAN_CASES)
def test_it_filters_scans(personas, fleet, params, expected):
    body = client_for(personas["auditor"]).get("/api/v1/scans/", params).json()
    assert sorted(f"{s['host']} {s['state']}" for s in body["results"]) == expected


@pytest.mark.parametrize("params, expected", [
    ({"check": CHECK}, ["e1", "e2"]),
    ({"host": "web1"}, ["e1", "e2"]),  # its own and those for every host
    ({"host": "web2"}, ["e2", "e3"]),
    ({"state": "proposed"}, ["e3"]),
    ({"in_force_at": (T0 + timedelta(days=1)).isoformat()}, ["e1", "e2"]),
    ({"in_force_at": (T0 + timedelta(days=6)).isoformat()}, ["e1"]),  # e2 revoked on day 5
    ({"in_force_at": (T0 + timedelta(days=11)).isoformat()}, []),  # e1 expired on day 10
    ({"expiring_before": (T0 + timedelta(days=30)).isoformat()}, ["e1", "e3"]),
])
def test_it_filters_exceptions(personas, fleet, params, expected):
    names = exc_ids()
    body = client_for(personas["auditor"]).get("/api/v1/exceptions/", params).json()
    assert sorted(names[e["id"]] for e in body["results"]) == expected


@pytest.mark.parametrize("params, expected", [
    ({"check": "host.audit_docker_daemon"}, ["host.audit_docker_daemon"]),
    ({"host": "web2"}, ["host.separate_partition"]),  # for every host
    ({"host": "web1"}, ["host.audit_docker_daemon", "host.separate_partition"]),
    ({"valid_at": (T0 + timedelta(days=1)).isoformat()}, ["host.audit_docker_daemon"]),
    ({"valid_at": (T0 + timedelta(days=2, hours=1)).isoformat()}, ["host.audit_docker_daemon", "host.separate_partition"]),
    ({"valid_at": (T0 - timedelta(days=1)).isoformat()}, []),
])
def test_it_filters_attestations_in_the_api_and_on_the_page(client: Client, personas, fleet, params, expected):
    body = client_for(personas["auditor"]).get("/api/v1/attestations/", params).json()
    assert sorted(a["check_id"] for a in body["results"]) == expected
    client.force_login(personas["auditor"])
    page = client.get("/attestations/", params)
    assert page.status_code == 200 and sorted(a.check_id for a in page.context["page"]) == expected


@pytest.mark.parametrize("path, param, value, choices", [
    ("/api/v1/hosts/", "enabled", "maybe", "true, false"),
    ("/api/v1/hosts/", "archived", "maybe", "false, true, all"),
    ("/api/v1/hosts/", "probe", "yes", "true, false"),
    ("/api/v1/hosts/", "scheme", "http", "unix, tcp, ssh"),
    ("/api/v1/hosts/", "last_scan_failed", "1", "true, false"),
    ("/api/v1/scans/", "state", "bogus", "queued, running, succeeded, failed, errored"),
    ("/api/v1/scans/", "trigger", "cron", "schedule, manual, api, cli"),
    ("/api/v1/exceptions/", "state", "active", "proposed, approved, rejected, revoked"),
])
def test_it_refuses_a_bad_value_listing_the_valid_choices(personas, fleet, path, param, value, choices):
    response = client_for(personas["auditor"]).get(path, {param: value})
    assert response.status_code == 400
    assert api_error(response)["fields"] == {param: [f"{value} is not one of the valid choices: {choices}"]}


@pytest.mark.parametrize("path, param", [
    ("/api/v1/scans/", "finished_after"), ("/api/v1/scans/", "finished_before"),
    ("/api/v1/exceptions/", "in_force_at"), ("/api/v1/exceptions/", "expiring_before"),
    ("/api/v1/attestations/", "valid_at"),
])
@pytest.mark.parametrize("value", ["2026-02-30T10:00:00Z", "yesterday", "\x00"])
def test_it_refuses_a_bad_date(personas, fleet, path, param, value):
    response = client_for(personas["auditor"]).get(path, {param: value})
    assert response.status_code == 400 and param in api_error(response)["fields"]


@pytest.mark.parametrize("path, accepted", [
    ("/api/v1/hosts/", "archived, enabled, format, last_scan_failed, name, name_contains, ordering, page, page_size, "
                       "probe, scheme"),
    ("/api/v1/scans/", "finished_after, finished_before, format, host, ordering, page, page_size, state, trigger"),
    ("/api/v1/exceptions/", "check, expiring_before, format, host, in_force_at, ordering, page, page_size, state"),
    ("/api/v1/attestations/", "check, format, host, ordering, page, page_size, valid_at"),
    ("/api/v1/audit-events/", "action, actor, format, ordering, page, page_size, target"),
    ("/api/v1/tokens/", "format, ordering, owner, page, page_size, state"),
])
def test_it_refuses_an_unknown_parameter_listing_the_accepted_ones(personas, fleet, path, accepted):
    response = client_for(personas["admin"]).get(path, {"status": "bogus"})
    assert response.status_code == 400
    assert api_error(response)["fields"] == {"status": [f"unknown parameter; accepted: {accepted}"]}


def test_it_leaves_detail_reads_to_the_detail(personas, fleet):
    """List filters do not hide a host read by id (archived included), as they used to."""
    client = client_for(personas["auditor"])
    assert client.get(f"/api/v1/hosts/{fleet['old'].pk}/").status_code == 200
    scan = ScanRun.objects.filter(state=ScanState.SUCCEEDED).first()
    assert client.get(f"/api/v1/scans/{scan.pk}/", {"state": "failed"}).status_code == 200


@pytest.mark.parametrize("url, params, message", [
    ("/", {"enabled": "maybe"}, "enabled: unknown parameter; accepted: at, days"),
    ("/", {"status": "bogus"}, "status: unknown parameter; accepted: at, days"),
    ("/attestations/", {"valid_at": "yesterday"}, "is not a valid ISO 8601 date-time (e.g. 2026-02-28T10:00:00Z)"),
    ("/attestations/", {"nope": "1"}, "nope: unknown parameter; accepted: check, format, host"),
    ("/audit/", {"action": "bogus"}, "action: bogus is not one of the valid choices: attestation.created"),
    ("/audit/", {"who": "x"}, "who: unknown parameter; accepted: action, actor, format"),
    ("/tokens/", {"sate": "active"}, "sate: unknown parameter; accepted: format, ordering, owner, page"),
])
def test_it_answers_bad_filters_on_pages_with_a_400_that_says_why(client: Client, admin, fleet, url, params, message):
    client.force_login(admin)
    response = client.get(url, params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_it_offers_the_accepted_parameters_of_any_filterset():
    assert accepted_params(ScanFilterSet) == ["finished_after", "finished_before", "format", "host", "ordering",
                                              "page", "page_size", "state", "trigger"]


def test_it_refuses_an_unknown_parameter_on_controls_listing_the_accepted_ones(personas, fleet):
    # /controls/ filters with the verdicts' ControlFilterSet, where status is a real filter.
    response = client_for(personas["admin"]).get("/api/v1/controls/", {"stauts": "fail"})
    assert response.status_code == 400
    message = api_error(response)["fields"]["stauts"][0]
    assert message.startswith("unknown parameter; accepted: ")
    assert {"framework", "status", "page", "page_size"} <= set(message.split(": ", 1)[1].split(", "))


class PlainHosts(django_filters.FilterSet):
    """Declared the django-filter way (as DRF's generated FilterSets are)."""

    name = django_filters.CharFilter(field_name="name")

    class Meta:
        model = DockerHost
        fields = ["name"]


class StrictHosts(StrictFilterSet):
    name = django_filters.CharFilter(field_name="name")

    class Meta:
        model = DockerHost
        fields = ["name"]


@pytest.mark.parametrize("filterset_class", [PlainHosts, StrictHosts])
def test_it_applies_one_strictness_rule_to_plain_and_strict_filtersets(fleet, filterset_class):
    """One mechanism: a listing accepts the same parameters whether its FilterSet derives
    from StrictFilterSet or not (a StrictFilterSet used to refuse ``ordering`` by its own
    rule while the listing's accepted it), with the same message."""
    data = {"nmae": "web1", "page": "1", "ordering": "name", "format": "json"}
    filterset = strict_filterset(filterset_class, data, DockerHost.objects.all())
    assert not filterset.is_valid()
    assert filterset.errors == {"nmae": ["unknown parameter; accepted: format, name, ordering, page, page_size"]}
    good = strict_filterset(filterset_class, {"name": "web1", "ordering": "name"}, DockerHost.objects.all())
    assert good.is_valid() and [h.name for h in good.qs] == ["web1"]

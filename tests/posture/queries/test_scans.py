"""The one definition of a host's current scan, now or at T: its latest succeeded scan by
finish time (ties by id), whatever the ids, other states or other hosts say."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from posture.choices import ScanState, Trigger
from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost, ScanRun
from posture.queries.scans import current_scan, current_scans, previous_scan

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 5, 1, 12, 0))


def scan(host: DockerHost, state: str, minutes: float | None, trigger: str = Trigger.SCHEDULE) -> ScanRun:
    finished = T0 + timedelta(minutes=minutes) if minutes is not None else None
    return ScanRun.objects.create(host=host, state=state, trigger=trigger, started_at=finished, finished_at=finished)


@pytest.fixture
def fleet():
    """a: succeeded at +0, then failed at +10 (later, higher id).
    b: a queued scheduled scan (lower id) that finished at +30 after a CLI scan (higher id)
       that finished at +20.
    c: only a scan still running; d: two succeeded scans finishing at the same instant."""
    a, b, c, d = (DockerHost.objects.create(name=n, url=f"unix:///{n}.sock") for n in "abcd")
    a_ok, a_failed = scan(a, ScanState.SUCCEEDED, 0), scan(a, ScanState.FAILED, 10)
    b_queued = scan(b, ScanState.QUEUED, None)
    b_cli = scan(b, ScanState.SUCCEEDED, 20, Trigger.CLI)
    ScanRun.objects.filter(pk=b_queued.pk).update(state=ScanState.SUCCEEDED, finished_at=T0 + timedelta(minutes=30))
    b_queued.refresh_from_db()
    scan(c, ScanState.RUNNING, None)
    d_first, d_second = scan(d, ScanState.SUCCEEDED, 5), scan(d, ScanState.SUCCEEDED, 5)
    return {"hosts": (a, b, c, d), "a_ok": a_ok, "a_failed": a_failed, "b_queued": b_queued, "b_cli": b_cli,
            "d_first": d_first, "d_second": d_second}


def current_ids(at=None, hosts=None) -> dict[str, int]:
    return {s.host.name: s.pk for s in current_scans(hosts, at).select_related("host")}


def test_it_picks_the_latest_succeeded_scan_per_host_by_finish_time(fleet):
    assert fleet["b_queued"].pk < fleet["b_cli"].pk  # highest id would pick the CLI scan
    assert current_ids() == {"a": fleet["a_ok"].pk, "b": fleet["b_queued"].pk, "d": fleet["d_second"].pk}
    a, b, c, d = fleet["hosts"]
    assert current_scan(a) == fleet["a_ok"] and current_scan(b.pk) == fleet["b_queued"] and current_scan(c) is None


def test_it_answers_at_any_moment_across_hosts(fleet):
    assert current_ids(at=T0 - timedelta(seconds=1)) == {}
    assert current_ids(at=T0 + timedelta(minutes=25)) == {"a": fleet["a_ok"].pk, "b": fleet["b_cli"].pk,
                                                          "d": fleet["d_second"].pk}
    a, b, c, d = fleet["hosts"]
    assert current_ids(at=T0 + timedelta(minutes=25), hosts=[b]) == {"b": fleet["b_cli"].pk}
    assert current_ids(hosts=DockerHost.objects.filter(name__in=["a", "c"])) == {"a": fleet["a_ok"].pk}
    assert current_scan(b, at=T0 + timedelta(minutes=20)) == fleet["b_cli"]  # finished exactly then


def test_it_answers_for_a_whole_fleet_in_one_query(fleet, django_assert_num_queries):
    for n in range(20):
        host = DockerHost.objects.create(name=f"more{n}", url="unix:///more.sock")
        scan(host, ScanState.SUCCEEDED, n)
    with django_assert_num_queries(1):
        assert len(list(current_scans(at=T0 + timedelta(hours=1)))) == 23


def test_it_orders_previous_scans_the_same_way(fleet):
    assert previous_scan(fleet["b_queued"]) == fleet["b_cli"]
    assert previous_scan(fleet["b_cli"]) is None
    assert previous_scan(fleet["d_second"]) == fleet["d_first"]


def test_it_is_the_current_scan_of_pages_and_the_api(fleet, admin):
    api = APIClient()
    api.force_authenticate(admin)
    hosts = {h["name"]: h["current_scan"] for h in api.get("/api/v1/hosts/").json()["results"]}
    assert hosts == {"a": fleet["a_ok"].pk, "b": fleet["b_queued"].pk, "c": None, "d": fleet["d_second"].pk}
    page = Client()
    page.force_login(admin)
    html = page.get("/").content.decode()
    assert f'href="/scans/{fleet["b_queued"].pk}/"' in html


def test_it_measures_the_delta_against_the_scan_current_before(fleet):
    """The evaluation's "since the previous scan" follows finish times, not ids."""
    from tests.posture.conftest import SNAPSHOT, stored_scan

    host = DockerHost.objects.create(name="e", url="unix:///e.sock")
    later_id = stored_scan(host, SNAPSHOT)  # lower id, finishes last
    earlier = stored_scan(host, SNAPSHOT)
    ScanRun.objects.filter(pk=earlier.pk).update(finished_at=T0)
    ScanRun.objects.filter(pk=later_id.pk).update(finished_at=T0 + timedelta(hours=1))
    earlier.refresh_from_db()
    later_id.refresh_from_db()
    evaluate_scan(earlier)
    evaluation = evaluate_scan(later_id)
    assert evaluation.unchanged_failures > 0  # compared with `earlier`, not treated as a first scan

"""Trends from the daily rows: sums per day fleet-wide and per host, gap days never counted
as passing, exceptions in force on each day, and the same story the failure windows tell,
before and after ``reevaluate``."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

import posture.jobs.evaluate as evaluate
from posture.jobs import exceptions as workflow
from posture.models import ControlException, DailyPosture
from posture.queries import scores
from posture.queries.history import failing_since
from posture.queries.trends import fleet_trend, host_trends, last_days
from scanners.checks.base import Status
from tests.posture.jobs.test_history import PRIV
from tests.posture.queries.test_history import CIS, day, history, make_host

pytestmark = pytest.mark.django_db

DAYS = [day(n).date() for n in range(10)]


@pytest.fixture
def fleet(operator, admin):
    """gappy: scanned at noon, days 4-6 missed, rec-privileged fixed from day 7.
    steady: scanned every day, always failing; an exception on rec-privileged approved on
    day 2 expires on day 5."""
    gappy, steady = make_host("gappy"), make_host("steady")
    exc = workflow.propose(operator, check_id=PRIV[0], host=steady, resource_pattern="rec-privileged",
                           justification="vendor agent", expires_at=timezone.now() + timedelta(days=1))
    workflow.decide(admin, exc, approve=True)
    ControlException.objects.filter(pk=exc.pk).update(decided_at=day(2), expires_at=day(5))
    scans = {
        gappy: history(gappy, {n + 0.5: "fail" if n < 7 else "fixed" for n in (0, 1, 2, 3, 7, 8, 9)}),
        steady: history(steady, {n + 0.5: "fail" for n in range(10)}),
    }
    return gappy, steady, scans


def rows(host) -> dict[date, DailyPosture]:
    return {r.day: r for r in DailyPosture.objects.filter(host=host, framework=CIS)}


def counts(row: DailyPosture) -> dict[str, int]:
    return {s: getattr(row, f"controls_{s}") for s in ("fail", "error", "not_assessed", "manual", "excepted", "pass",
                                                       "not_applicable") if getattr(row, f"controls_{s}")}


def test_it_sums_the_hosts_that_reported_each_day_and_leaves_gap_days_out(fleet):
    gappy, steady, _ = fleet
    series = fleet_trend(CIS, DAYS[0], DAYS[-1])
    assert [p.day for p in series] == DAYS
    assert [p.hosts for p in series] == [2, 2, 2, 2, 1, 1, 1, 2, 2, 2]
    g, s = rows(gappy), rows(steady)
    for point in series:
        expected = counts(s[point.day])
        if point.day in g:
            for status, n in counts(g[point.day]).items():
                expected[status] = expected.get(status, 0) + n
        assert point.controls == expected
        assert point.score == scores.score(expected) and point.coverage == scores.coverage(expected)
        assert point.results_fail == s[point.day].results_fail + (g[point.day].results_fail if point.day in g else 0)
    # Day 5: only the steady host, so its own score; a missing host is not a passing one.
    assert series[5].score == scores.score(counts(s[DAYS[5]]))
    per_host = host_trends(CIS, DAYS[0], DAYS[-1])
    assert [p.gap for p in per_host[gappy.pk]] == [False] * 4 + [True] * 3 + [False] * 3
    assert all(p.score is None and p.coverage is None for p in per_host[gappy.pk] if p.gap)
    assert [p.hosts for p in per_host[steady.pk]] == [1] * 10


def test_it_shows_the_exception_only_on_the_days_it_was_in_force(fleet):
    gappy, steady, _ = fleet
    series = host_trends(CIS, DAYS[0], DAYS[-1], hosts=steady)[steady.pk]
    # 5.5 (privileged only) is excepted on days 2, 3 and 4: approved day 2, expired day 5.
    assert [p.controls.get("excepted", 0) for p in series] == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    failing = [p.controls["fail"] for p in series]
    assert [failing[0] - f for f in failing] == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert series[2].score > series[0].score and series[2].coverage == series[0].coverage


def test_it_answers_each_series_in_one_query_whatever_the_fleet(fleet, django_assert_num_queries):
    with django_assert_num_queries(1):
        fleet_trend(CIS, DAYS[0], DAYS[-1])
    with django_assert_num_queries(1):
        assert len(host_trends(CIS, DAYS[0], DAYS[-1])) == 2
    more = make_host("more")
    history(more, {0.5: "fail", 1.5: "fixed"})
    with django_assert_num_queries(1):
        assert fleet_trend(CIS, DAYS[0], DAYS[-1])[0].hosts == 3
    with django_assert_num_queries(1):
        assert len(host_trends(CIS, DAYS[0], DAYS[-1])) == 3


def test_it_agrees_with_the_failure_windows_before_and_after_reevaluate(fleet, monkeypatch):
    gappy, steady, scans = fleet
    before = fleet_trend(CIS, DAYS[0], DAYS[-1])

    def privileged_failing(scan) -> bool:
        """What the windows say about 5.5 at the scan that made the day's row, exceptions applied."""
        open_then = (scan.host_id, *PRIV) in failing_since(scan.host_id, at=scan.finished_at)
        excused = ControlException.objects.filter(ControlException.active_q(scan.finished_at),
                                                  host=scan.host_id).exists()
        return open_then and not excused

    failing_5_5 = {d: sum(privileged_failing(s) for host_scans in scans.values() for s in host_scans
                          if s.finished_at.date() == d) for d in DAYS}
    assert [failing_5_5[d] for d in DAYS] == [2, 2, 1, 1, 0, 1, 1, 1, 1, 1]  # day 4: gappy unscanned, steady excepted
    run_checks = evaluate.run_checks

    def changed_check(snapshot):
        return [dataclasses.replace(f, status=Status.PASS, detail="changed") if f.check_id == PRIV[0] else f
                for f in run_checks(snapshot)]

    monkeypatch.setattr(evaluate, "run_checks", changed_check)
    monkeypatch.setattr(evaluate, "engine_version", lambda: "changed")
    call_command("reevaluate", "--all", stdout=io.StringIO())
    after = fleet_trend(CIS, DAYS[0], DAYS[-1])
    excepted = [p.controls.get("excepted", 0) for p in before]
    for b, a, e in zip(before, after, excepted, strict=True):
        # 5.5 passes everywhere now: each host-day where the windows had it failing or excepted
        # turns into a pass, and nothing else moves.
        moved = failing_5_5[b.day] + e
        assert a.hosts == b.hosts
        assert a.controls.get("fail", 0) == b.controls["fail"] - failing_5_5[b.day]
        assert a.controls.get("excepted", 0) == 0
        assert a.controls["pass"] == b.controls["pass"] + moved
    assert not any(k[1] == PRIV[0] for k in failing_since())


def test_it_rejects_bad_ranges_and_unknown_frameworks():
    with pytest.raises(ValueError, match="start on or before its end"):
        fleet_trend(CIS, DAYS[3], DAYS[1])
    with pytest.raises(ValueError, match="must be a date"):
        fleet_trend(CIS, "2026-03-01", DAYS[1])
    with pytest.raises(ValueError, match="must be a date, not datetime"):
        fleet_trend(CIS, DAYS[0], day(3))
    with pytest.raises(ValueError, match="unknown framework 'cis-9'; known: .*soc2-2017"):
        host_trends("cis-9", DAYS[0], DAYS[1])
    with pytest.raises(ValueError, match="1 to 3660 days"):
        last_days(0)
    with pytest.raises(ValueError, match="at most 3660 days"):
        fleet_trend(CIS, date(2000, 1, 1), date(2026, 1, 1))
    assert last_days(30, today=date(2026, 3, 31)) == (date(2026, 3, 2), date(2026, 3, 31))
    # A known framework with no rows yet: a series of gap days, not an error.
    assert [p.gap for p in fleet_trend(CIS, DAYS[0], DAYS[1])] == [True, True]

"""History read from failure windows and scans: windows clipped to a period, failing since,
time to remediate, collection gaps and operating effectiveness, on small histories made of
stored scans scored by the real evaluation, against hand-computed expectations."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import IntegerField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import posture.jobs.evaluate as evaluate
from posture.choices import ScanState
from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.models import CheckResult, ControlException, DockerHost, ScanRun
from posture.queries.effectiveness import Stretch, merge, operating_effectiveness, subtract
from posture.queries.history import (
    Gap,
    clip_period,
    collection_gaps,
    failing_since,
    failure_windows,
    host_coverage,
    open_window_subquery,
    time_to_remediate,
)
from scanners.checks.base import Status
from tests.posture.jobs.test_history import PRIV, scan_at

pytestmark = pytest.mark.django_db

CIS = "cis-docker-1.8.0"
D0 = timezone.make_aware(datetime(2026, 3, 2))
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def day(n: float) -> datetime:
    return D0 + n * DAY


def make_host(name: str) -> DockerHost:
    return DockerHost.objects.create(name=name, url=f"unix:///{name}.sock", scan_interval_minutes=24 * 60)


def history(host: DockerHost, kinds: dict[float, str]) -> list[ScanRun]:
    """Stored scans of ``host`` (SNAPSHOT variants: rec-privileged failing or fixed) finished
    at the given days, scored in order."""
    scans = [scan_at(host, kind, day(n)) for n, kind in sorted(kinds.items())]
    for scan in scans:
        evaluate_scan(scan)
    return scans


def bare_scans(host: DockerHost, days: list[float]) -> None:
    """Succeeded scan rows without evidence: enough for collection gaps."""
    for n in days:
        ScanRun.objects.create(host=host, state=ScanState.SUCCEEDED, started_at=day(n), finished_at=day(n))


def control(result, ref: str, host: DockerHost | None = None):
    rows = result.controls if host is None else result.hosts[host.pk]
    return next(r for r in rows if r.ref == ref)


@pytest.fixture
def gap_host():
    """Failing on days 0 and 1, not scanned on days 2-5, failing on day 6, fixed on day 7."""
    host = make_host("gappy")
    return host, history(host, {0: "fail", 1: "fail", 6: "fail", 7: "fixed"})


def test_it_lists_a_window_spanning_a_collection_gap_clipped_to_the_period(gap_host):
    host, scans = gap_host
    (window,) = failure_windows(host, PRIV[0], PRIV[2], period=(day(3), day(5)), resource_type=PRIV[1])
    assert (window.opened_at, window.closed_at) == (day(0), day(7))
    assert (window.opened_scan_id, window.closed_scan_id) == (scans[0].pk, scans[3].pk)
    assert (window.clipped_start, window.clipped_end, window.duration) == (day(3), day(5), 2 * DAY)
    assert [w.pk for w in failure_windows([host.pk], PRIV[0], open_at=day(4))] == [window.pk]
    assert not failure_windows(host, PRIV[0], open_at=day(7)).exists()  # closed by the day-7 scan
    assert not failure_windows(host, PRIV[0], period=(day(7), day(9))).exists()
    (whole,) = failure_windows(host, PRIV[0])
    assert whole.duration == 7 * DAY


#: Windows merged by PostgreSQL's range_agg, and by the portable window-function query (SQLite's).
MERGES = pytest.mark.parametrize("range_agg", [True, False], ids=["range_agg", "portable"])


@MERGES
def test_it_reports_the_gap_and_never_counts_it_as_passing(gap_host, range_agg):
    host, scans = gap_host
    # Days 1 -> 6 without a scan (over twice the daily interval): a gap from day 2, when the
    # next scan was due, to day 6. Day 7 -> 8 is one day: no gap.
    assert collection_gaps((day(0), day(8))) == [Gap(host.pk, day(2), day(6), scans[1].pk, scans[2].pk)]
    result = operating_effectiveness(CIS, (day(0), day(8)), range_agg=range_agg)
    row = control(result, "5.5", host)
    # Expected 8 days; the window [0, 7) minus the gap [2, 6) fails 3 days; 1 day passes.
    assert (row.expected, row.gaps, row.failing, row.excepted, row.passing) == (8 * DAY, 4 * DAY, 3 * DAY, 0 * DAY,
                                                                                   DAY)
    # Share of the assessed time (8 days less the 4-day gap) passing; the gap shows in coverage.
    assert (row.assessed, row.share, row.coverage) == (4 * DAY, pytest.approx(1 / 4), pytest.approx(4 / 8))
    assert row.windows == [Stretch(day(0), day(7), ongoing=False)]
    assert row.windows[0].duration == 7 * DAY
    fleet = control(result, "5.5")
    assert (fleet.expected, fleet.passing, fleet.hosts_failing, fleet.share) == (8 * DAY, DAY, 1, pytest.approx(1 / 4))
    # A control failing all along passes never, whatever the gap.
    for rows in result.hosts.values():
        for r in rows:
            if r.windows == [Stretch(day(0), day(8), ongoing=True)]:
                assert (r.passing, r.failing, r.share) == (timedelta(0), 4 * DAY, 0)
    assert any(r.windows and r.windows[0].ongoing for r in result.hosts[host.pk])


def test_it_says_since_when_each_open_finding_fails(gap_host):
    host, scans = gap_host
    at_day_4 = failing_since(host, at=day(4))
    assert at_day_4[(host.pk, *PRIV)].since == day(0) and at_day_4[(host.pk, *PRIV)].opened_scan_id == scans[0].pk
    assert (host.pk, *PRIV) not in failing_since(host)  # fixed on day 7
    # Now: what the day-7 scan still fails, since whenever it first failed.
    still = scans[3].evaluations.get().result_set.counts["fail"]
    assert len(failing_since(host)) == still and set(failing_since(host)) < set(at_day_4)
    # As an expression over verdict rows (what the findings listing annotates).
    rows = (CheckResult.objects.filter(chunk__memberships__result_set__evaluations__scan=scans[1], status="fail")
            .annotate(host_ref=Value(host.pk, output_field=IntegerField()))
            .annotate(since=open_window_subquery(day(4), host="host_ref"),
                      since_now=open_window_subquery(host="host_ref"),
                      opened_by=open_window_subquery(day(4), value="opened_scan_id", host="host_ref")))
    by_key = {(r.check_id, r.resource_type, r.resource): r for r in rows}
    assert (by_key[PRIV].since, by_key[PRIV].since_now, by_key[PRIV].opened_by) == (day(0), None, scans[0].pk)
    now = failing_since(host)
    assert len(by_key) == scans[1].evaluations.get().result_set.counts["fail"]
    for key, row in by_key.items():
        assert row.since == at_day_4[(host.pk, *key)].since == day(0)
        assert row.since_now == (now[(host.pk, *key)].since if (host.pk, *key) in now else None)


@MERGES
def test_it_counts_time_under_an_exception_apart_until_the_exception_expires(operator, admin, range_agg):
    host = make_host("excused")
    exc = workflow.propose(operator, check_id=PRIV[0], host=host, resource_pattern="rec-*",
                           justification="vendor agent", expires_at=timezone.now() + DAY)
    workflow.decide(admin, exc, approve=True)
    ControlException.objects.filter(pk=exc.pk).update(decided_at=day(2), expires_at=day(5))
    history(host, {n: "fail" if n < 7 else "fixed" for n in range(10)})
    row = control(operating_effectiveness(CIS, (day(0), day(10)), hosts=[host], range_agg=range_agg), "5.5", host)
    # Window [0, 7): excepted [2, 5) (3 days), failing the other 4; passing [7, 10).
    assert (row.expected, row.failing, row.excepted, row.gaps, row.passing) == (10 * DAY, 4 * DAY, 3 * DAY,
                                                                                 0 * DAY, 3 * DAY)
    assert row.share == pytest.approx(0.3)
    assert row.windows == [Stretch(day(0), day(7), ongoing=False)]
    # A period inside the exception: nothing failing, nothing passing.
    inside = control(operating_effectiveness(CIS, (day(3), day(4)), hosts=[host], range_agg=range_agg), "5.5", host)
    assert (inside.failing, inside.excepted, inside.passing) == (0 * DAY, DAY, 0 * DAY)
    # A revoked exception stops at its revocation.
    ControlException.objects.filter(pk=exc.pk).update(state="revoked", revoked_at=day(3))
    row = control(operating_effectiveness(CIS, (day(0), day(10)), hosts=[host], range_agg=range_agg), "5.5", host)
    assert (row.failing, row.excepted) == (6 * DAY, DAY)


def test_it_finds_a_three_day_gap_and_no_gap_after_archiving():
    daily, archived, disabled, never, new = (make_host(n) for n in ("daily", "archived", "disabled", "never", "new"))
    noon = [n + 0.5 for n in (0, 1, 2, 3, 7, 8, 9)]  # days 4, 5 and 6 missed
    bare_scans(daily, noon)
    bare_scans(archived, noon[:4])
    bare_scans(disabled, noon[:4])
    DockerHost.objects.filter(pk=archived.pk).update(enabled=False, archived_at=day(5))
    DockerHost.objects.filter(pk=disabled.pk).update(enabled=False)
    DockerHost.objects.filter(pk=never.pk).update(created_at=day(1))
    DockerHost.objects.filter(pk=new.pk).update(created_at=day(9.5))
    coverage = host_coverage((day(0), day(10)))
    daily_gap = coverage[daily.pk].gaps
    # Day 3 noon -> day 7 noon: the next scan was due on day 4 noon; three days without evidence.
    assert [(g.start, g.end, g.duration) for g in daily_gap] == [(day(4.5), day(7.5), 3 * DAY)]
    assert (coverage[daily.pk].start, coverage[daily.pk].end) == (day(0.5), day(10))
    # Archived on day 5: expected until then, and 1.5 days after its last scan is no gap.
    assert (coverage[archived.pk].end, coverage[archived.pk].gaps) == (day(5), [])
    # Disabled (not archived): still expected, so the missing evidence is a gap.
    assert [(g.start, g.end) for g in coverage[disabled.pk].gaps] == [(day(4.5), day(10))]
    # Never scanned since day 1: all of it is a gap. Registered half a day ago: nothing expected yet.
    assert [(g.start, g.end, g.last_scan_id) for g in coverage[never.pk].gaps] == [(day(1), day(10), None)]
    assert new.pk not in coverage
    # Part of a gap inside a shorter period.
    assert [(g.start, g.end) for g in collection_gaps((day(5), day(6)), hosts=[daily])] == [(day(5), day(6))]


def test_it_measures_time_to_remediate_per_check_control_and_host():
    host = make_host("fixer")
    history(host, {0: "fail", 1: "fixed", 2: "fail", 4: "fixed", 5: "fail", 9: "fixed"})
    for in_sql in (True, False):
        (row,) = time_to_remediate((day(0), day(10)), check=PRIV[0], in_sql=in_sql)
        # Windows of 1, 2 and 4 days: mean 7/3, median 2, p90 at rank 1.8 -> 2 + 0.8 x 2 = 3.6 days.
        assert (row.key, row.closed) == (PRIV[0], 3)
        assert row.mean == pytest.approx(7 / 3 * DAY, abs=SECOND) and row.median == 2 * DAY
        assert row.p90 == pytest.approx(3.6 * DAY, abs=SECOND)
        (late,) = time_to_remediate((day(3), day(10)), check=PRIV[0], in_sql=in_sql)
        assert (late.closed, late.mean, late.median, late.p90) == (2, 3 * DAY, 3 * DAY, pytest.approx(3.8 * DAY, abs=SECOND))
        by_control = time_to_remediate((day(0), day(10)), "control", framework=CIS, check=PRIV[0], in_sql=in_sql)
        assert [(r.key, r.closed, r.median) for r in by_control] == [((CIS, "5.5"), 3, 2 * DAY)]
        by_host = time_to_remediate((day(0), day(10)), "host", check=PRIV[0], in_sql=in_sql)
        assert [(r.key, r.closed) for r in by_host] == [(host.pk, 3)]
    for in_sql in (True, False):
        everything = {r.key: r for r in time_to_remediate((day(0), day(10)), "control", in_sql=in_sql)}
        assert everything[(CIS, "5.5")].closed == 3 and everything[("soc2-2017", "CC6.1")].closed >= 3


@MERGES
def test_it_rebuilds_windows_and_effectiveness_consistently_after_a_check_changes(gap_host, monkeypatch, range_agg):
    host, scans = gap_host
    period = (day(0), day(8))
    before_all = operating_effectiveness(CIS, period, range_agg=range_agg)
    before = control(before_all, "5.5", host)
    assert before.failing == 3 * DAY and len(time_to_remediate(period, check=PRIV[0])) == 1
    run_checks = evaluate.run_checks

    def changed_check(snapshot):
        return [dataclasses.replace(f, status=Status.PASS, detail="changed") if f.check_id == PRIV[0] else f
                for f in run_checks(snapshot)]

    monkeypatch.setattr(evaluate, "run_checks", changed_check)
    monkeypatch.setattr(evaluate, "engine_version", lambda: "changed")
    call_command("reevaluate", "--all", stdout=io.StringIO())
    after = operating_effectiveness(CIS, period, range_agg=range_agg)
    row = control(after, "5.5", host)
    assert not failure_windows(host, PRIV[0]).exists()
    assert (row.failing, row.gaps, row.passing, row.windows) == (timedelta(0), 4 * DAY, 4 * DAY, [])
    assert time_to_remediate(period, check=PRIV[0]) == []
    # Every other control reads exactly as before: only the privileged check changed.
    assert [(r.ref, r.failing, r.windows) for r in after.hosts[host.pk] if r.ref != "5.5"] == [
        (r.ref, r.failing, r.windows) for r in before_all.hosts[host.pk] if r.ref != "5.5"]


def test_its_query_counts_do_not_grow_with_hosts_scans_or_windows(django_assert_max_num_queries):
    def counts() -> list[int]:
        out = []
        calls = [
            lambda: list(failure_windows(period=(day(0), day(9)))),
            lambda: failing_since(at=day(3)),
            lambda: time_to_remediate((day(0), day(9))),
            lambda: time_to_remediate((day(0), day(9)), "control", in_sql=False),
            lambda: collection_gaps((day(0), day(9))),
            lambda: operating_effectiveness(CIS, (day(0), day(9))),
        ]
        for call in calls:
            with CaptureQueriesContext(connection) as ctx:
                call()
            out.append(len(ctx.captured_queries))
        return out

    history(make_host("one"), {0: "fail", 1: "fixed"})
    small = counts()
    for n in range(3):
        history(make_host(f"more{n}"), {0: "fail", 1: "fixed", 2: "fail", 5: "fixed", 8: "fail"})
    assert counts() == small == [1, 1, 1, 1, 2, 7]
    with django_assert_max_num_queries(7):
        result = operating_effectiveness(CIS, (day(0), day(9)))
    assert len(result.hosts) == 4


def test_it_rejects_bad_periods_and_names_with_a_clear_error():
    with pytest.raises(ValueError, match="start before it ends"):
        clip_period((day(2), day(1)))
    with pytest.raises(ValueError, match="time zone"):
        clip_period((datetime(2026, 1, 1), day(1)))
    with pytest.raises(ValueError, match="pair"):
        clip_period(day(1))
    with pytest.raises(ValueError, match="grouped by one of check, control, host"):
        time_to_remediate((day(0), day(1)), by="team")
    with pytest.raises(ValueError, match="unknown framework 'cis-9'; known: .*cis-docker-1.8.0"):
        operating_effectiveness("cis-9", (day(0), day(1)))
    with pytest.raises(ValueError, match="not controls of cis-docker-1.8.0: 99.9"):
        operating_effectiveness(CIS, (day(0), day(1)), controls=["5.5", "99.9"])
    # A period reaching into the future ends now: nothing is known about it yet.
    now = timezone.now()
    assert clip_period((now - DAY, now + 300 * DAY), now) == (now - DAY, now)


def test_it_does_interval_arithmetic_on_sorted_spans():
    assert merge([(day(3), day(4)), (day(0), day(1)), (day(1), day(2)), (day(5), day(5))]) == [
        (day(0), day(2)), (day(3), day(4))]
    assert subtract([(day(0), day(10))], [(day(2), day(3)), (day(5), day(12))]) == [
        (day(0), day(2)), (day(3), day(5))]


def _control_statuses(scan: ScanRun) -> dict[str, str]:
    """CIS control ref -> its status in the scan (the rollups' definition, before exceptions)."""
    from posture.models import Evaluation
    from posture.queries.rollups import control_status

    counts = Evaluation.objects.get(scan=scan, current=True).result_set.control_counts.get(CIS, {})
    return {ref: control_status(c) for ref, c in counts.items()}


@MERGES
def test_a_control_never_assessed_in_the_period_has_no_passing_share(range_agg):
    """The host probe off all period: host-file checks are not_assessed, their controls too;
    that time is "not assessed", never passing (as the PDF, controls.csv and the API show)."""
    host = make_host("noprobe")
    scans = history(host, {n: "probe-failed" for n in range(5)})
    statuses = _control_statuses(scans[0])
    refs = sorted(ref for ref, status in statuses.items() if status == "not_assessed")
    assert refs, statuses
    eff = operating_effectiveness(CIS, (day(0), day(5)), [host.pk], range_agg=range_agg)
    rows = {r.ref: r for r in eff.hosts[host.pk]}
    for ref in refs:
        row = rows[ref]
        if not row.checks:
            continue
        assert (row.expected, row.not_assessed, row.assessed, row.passing) == (5 * DAY, 5 * DAY, 0 * DAY, 0 * DAY), ref
        assert (row.share, row.coverage) == (None, 0), ref
    assessed = [r for r in rows.values() if statuses.get(r.ref) == "pass" and r.checks]
    assert assessed and all((r.share, r.coverage, r.not_assessed) == (1, 1, 0 * DAY) for r in assessed)
    fleet = {r.ref: r for r in eff.controls}
    assert all(fleet[ref].share is None for ref in refs if fleet[ref].checks)


@MERGES
def test_the_part_of_the_period_a_control_was_not_assessed_is_not_passing_time(range_agg):
    """Probe answering on days 0-2 and 4-5, failed on days 2-4: a host-file control passing
    whenever assessed passes 3 of 3 assessed days (share 1), over 3 of 5 expected (coverage)."""
    host = make_host("flaky-probe")
    scans = history(host, {0: "probe-bad", 1: "probe-bad", 2: "probe-failed", 3: "probe-failed", 4: "probe-bad"})
    assessed_then, missing_then = _control_statuses(scans[0]), _control_statuses(scans[2])
    refs = sorted(ref for ref, s in assessed_then.items() if s == "pass" and missing_then.get(ref) == "not_assessed")
    failing = sorted(ref for ref, s in assessed_then.items() if s == "fail" and missing_then.get(ref) == "not_assessed")
    assert refs and failing
    rows = {r.ref: r for r in operating_effectiveness(CIS, (day(0), day(5)), [host.pk], range_agg=range_agg).hosts[host.pk]}
    for ref in refs:
        row = rows[ref]
        assert (row.expected, row.not_assessed, row.assessed, row.passing, row.failing) == (
            5 * DAY, 2 * DAY, 3 * DAY, 3 * DAY, 0 * DAY), ref
        assert (row.share, row.coverage) == (1, pytest.approx(3 / 5)), ref
    # A failure window stays open while the probe cannot assess (nothing closes it): failing
    # wins over not assessed, as the worst status does in the rollups.
    for ref in failing:
        row = rows[ref]
        assert (row.failing, row.not_assessed, row.passing, row.share) == (5 * DAY, 0 * DAY, 0 * DAY, 0), ref


@pytest.mark.parametrize("in_sql", [True, False], ids=["in_sql", "portable"])
def test_a_control_whose_assessment_flips_several_times_is_not_assessed_exactly_while_it_was_not(in_sql):
    """The probe answers, fails, answers, fails, answers: each stretch without it is not
    assessed, from the scan that left the control out to the scan that assessed it again,
    whether the refs are picked out in SQL or in Python, and read again from the cache."""
    from posture.queries import effectiveness

    host = make_host("flip-flop")
    kinds = {0: "probe-bad", 1: "probe-failed", 2: "probe-failed", 3: "probe-bad", 4: "probe-bad",
             5: "probe-failed", 6: "probe-bad"}
    scans = history(host, kinds)
    assessed_then, missing_then = _control_statuses(scans[0]), _control_statuses(scans[1])
    refs = sorted(ref for ref, s in assessed_then.items() if s == "pass" and missing_then.get(ref) == "not_assessed")
    assert refs
    cov = host_coverage((day(0), day(8)), [host.pk])
    effectiveness._ASSESSED.clear()
    for _ in range(2):  # computed, then from the cache
        spans = effectiveness._unassessed(CIS, cov, set(refs), in_sql=in_sql)
        assert {ref: spans[(host.pk, ref)] for ref in refs} == {
            ref: [(day(1), day(3)), (day(5), day(6))] for ref in refs}
    rows = {r.ref: r for r in operating_effectiveness(CIS, (day(0), day(8)), [host.pk]).hosts[host.pk]}
    for ref in refs:
        assert (rows[ref].not_assessed, rows[ref].passing) == (3 * DAY, 5 * DAY), ref

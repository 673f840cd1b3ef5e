"""History written at evaluation: failure windows (opened by a failing scan, closed by a pass,
not_applicable or the resource gone; error and not_assessed change nothing) and daily
posture rows (the day's last scan, exceptions in force then), rebuilt identically by
``reevaluate`` and by a late scan."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

import posture.jobs.evaluate as evaluate
from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.jobs.history import rebuild_windows
from posture.models import ControlException, DailyPosture, DockerHost, FailureWindow, ScanRun
from scanners.checks.base import Status
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"
PRIV = ("container.privileged_disabled", "container", "rec-privileged")
DAY0 = timezone.make_aware(datetime(2026, 3, 2, 0, 0))


def variant(kind: str) -> dict:
    """SNAPSHOT with rec-privileged failing (``fail``), fixed, unreadable (its checks give
    ``error``) or gone; ``probe-bad``/``probe-failed`` add host evidence that fails or could
    not be collected (``not_assessed``)."""
    snap = copy.deepcopy(SNAPSHOT)
    priv = next(c for c in snap["containers"] if c["name"] == "rec-privileged")
    if kind == "fixed":
        priv["inspect"]["HostConfig"]["Privileged"] = False
    elif kind == "error":
        priv["inspect"]["HostConfig"] = "unreadable"
    elif kind == "gone":
        snap["containers"].remove(priv)
    elif kind.startswith("probe"):
        snap["host"] = json.loads((FIXTURES / "host-bad.json").read_text())
        if kind == "probe-failed":
            snap["host"].update(files={}, contents={}, mounts=[], docker_root_is_mount=None,
                                errors=["the host probe script failed: exit code 2"])
    return snap


def scan_at(host: DockerHost, kind: str, at: datetime) -> ScanRun:
    scan = stored_scan(host, variant(kind))
    ScanRun.objects.filter(pk=scan.pk).update(started_at=at, finished_at=at)
    scan.refresh_from_db()
    return scan


def windows(host: DockerHost, key=None) -> list[tuple]:
    rows = FailureWindow.objects.filter(host=host).order_by("opened_at", "check_id", "resource")
    if key:
        rows = rows.filter(check_id=key[0], resource_type=key[1], resource=key[2])
    return list(rows.values_list("check_id", "resource_type", "resource", "opened_scan_id", "opened_at",
                                 "closed_scan_id", "closed_at"))


def shape(host: DockerHost, scans: list[ScanRun]) -> list[tuple]:
    """Windows with scans named by their position, to compare two hosts' histories."""
    index = {s.pk: i for i, s in enumerate(scans)}
    return sorted((c, rt, r, index[o], index.get(cl)) for c, rt, r, o, _, cl, _ in windows(host))


@pytest.fixture
def host():
    return DockerHost.objects.create(name="h1", url="unix:///h1.sock")


def test_it_opens_windows_for_the_first_scans_failures_without_calling_them_new(host):
    first = scan_at(host, "fail", DAY0)
    evaluation = evaluate_scan(first)
    assert (evaluation.new_failures, evaluation.fixed) == (0, 0)
    assert FailureWindow.objects.filter(host=host, closed_scan=None).count() == evaluation.result_set.counts["fail"]
    assert windows(host, PRIV) == [(*PRIV, first.pk, DAY0, None, None)]


def test_it_keeps_a_window_open_across_errors_and_closes_it_on_a_pass(host):
    kinds = ["fail", "error", "fail", "fixed", "fixed", "fail", "gone"]
    scans = [scan_at(host, kind, DAY0 + timedelta(days=i)) for i, kind in enumerate(kinds)]
    for scan in scans:
        evaluate_scan(scan)
    assert windows(host, PRIV) == [
        (*PRIV, scans[0].pk, scans[0].finished_at, scans[3].pk, scans[3].finished_at),  # error kept it open
        (*PRIV, scans[5].pk, scans[5].finished_at, scans[6].pk, scans[6].finished_at),  # the container went away
    ]
    # The error scan is not "fixed" either (the Evaluation says so too).
    assert scans[1].evaluations.get().fixed == 0


def test_it_keeps_host_windows_open_while_the_probe_cannot_assess(host):
    scans = [scan_at(host, kind, DAY0 + timedelta(days=i))
             for i, kind in enumerate(["probe-bad", "probe-failed", "probe-bad", "fail"])]
    for scan in scans:
        evaluate_scan(scan)
    host_windows = FailureWindow.objects.filter(host=host, resource_type="host")
    assert host_windows.exists()
    # Opened by the first scan, kept through not_assessed and the second failure; the last scan
    # (no probe: not_assessed again) closes nothing.
    assert set(host_windows.values_list("opened_scan_id", "closed_scan_id")) == {(scans[0].pk, None)}


def test_it_rebuilds_the_same_windows_when_scans_are_evaluated_out_of_order(host):
    kinds = ["fail", "fixed", "error", "fail", "probe-bad", "probe-failed", "fixed", "gone", "fail"]
    in_order = [scan_at(host, kind, DAY0 + timedelta(days=i)) for i, kind in enumerate(kinds)]
    for scan in in_order:
        evaluate_scan(scan)
    late = DockerHost.objects.create(name="h2", url="unix:///h2.sock")
    shuffled = [scan_at(late, kind, DAY0 + timedelta(days=i)) for i, kind in enumerate(kinds)]
    for i in (4, 0, 8, 2, 1, 3, 7, 5, 6):
        evaluate_scan(shuffled[i])
    assert shape(late, shuffled) == shape(host, in_order)
    before = windows(host)
    rebuild_windows(host)
    assert windows(host) == before


def test_it_rebuilds_windows_and_days_with_reevaluate_after_a_check_changes(host, monkeypatch):
    scans = [scan_at(host, kind, DAY0 + timedelta(days=i)) for i, kind in enumerate(["fail", "fail", "fixed"])]
    for scan in scans:
        evaluate_scan(scan)
    assert windows(host, PRIV)
    day_before = DailyPosture.objects.get(host=host, framework="cis-docker-1.8.0", day=DAY0.date())
    # The privileged check changes: it now passes everything (new engine version, new verdicts).
    run_checks = evaluate.run_checks

    def changed_check(snapshot):
        return [dataclasses.replace(f, status=Status.PASS, detail="changed") if f.check_id == PRIV[0] else f
                for f in run_checks(snapshot)]

    monkeypatch.setattr(evaluate, "run_checks", changed_check)
    monkeypatch.setattr(evaluate, "engine_version", lambda: "changed")
    out = io.StringIO()
    call_command("reevaluate", "--all", stdout=out)
    assert "rebuilt the history of 1 hosts" in out.getvalue()
    assert windows(host, PRIV) == []
    rebuilt = windows(host)
    rebuild_windows(host)
    assert windows(host) == rebuilt and rebuilt
    day_after = DailyPosture.objects.get(host=host, framework="cis-docker-1.8.0", day=DAY0.date())
    assert (day_after.controls_fail, day_after.controls_pass) == (day_before.controls_fail - 1,
                                                                  day_before.controls_pass + 1)
    assert day_after.results_fail == day_before.results_fail - 1


def daily(host: DockerHost, framework: str = "cis-docker-1.8.0") -> dict:
    return {row.day: row for row in DailyPosture.objects.filter(host=host, framework=framework)}


def test_it_keeps_one_row_per_framework_and_day_from_the_days_last_scan(host):
    morning = scan_at(host, "fixed", DAY0 + timedelta(hours=9))
    evening = scan_at(host, "fail", DAY0 + timedelta(hours=18))
    evaluate_scan(evening)
    evaluate_scan(morning)  # evaluated late: the evening scan still wins
    rows = daily(host)
    assert list(rows) == [DAY0.date()] and rows[DAY0.date()].scan_id == evening.pk
    assert set(DailyPosture.objects.filter(host=host).values_list("framework", flat=True)) == {
        "cis-docker-1.8.0", "cis-docker-1.6.0", "soc2-2017"}
    row = rows[DAY0.date()]
    total = (row.controls_pass + row.controls_fail + row.controls_excepted + row.controls_manual
             + row.controls_not_assessed + row.controls_error + row.controls_not_applicable)
    assert total == 118 and row.controls_fail > 0 and row.results_fail > 0 and row.results_pass > 0


def test_it_leaves_days_without_a_scan_without_a_row(host):
    for day in (0, 2):
        evaluate_scan(scan_at(host, "fail", DAY0 + timedelta(days=day, hours=12)))
    assert list(daily(host)) == [DAY0.date(), (DAY0 + timedelta(days=2)).date()]


def test_it_applies_the_exceptions_in_force_when_each_days_scan_finished(host, operator, admin):
    exc = workflow.propose(operator, check_id=PRIV[0], host=host, resource_pattern="rec-priv*",
                           justification="vendor agent", expires_at=timezone.now() + timedelta(days=30))
    workflow.decide(admin, exc, approve=True)
    approved_at = ControlException.objects.get(pk=exc.pk).decided_at
    workflow.revoke(operator, exc)
    exc.refresh_from_db()
    # Revoking keeps the approval: the exception was in force from approval to revocation.
    assert exc.state == "revoked" and exc.decided_at == approved_at and exc.revoked_at >= approved_at
    assert exc.decided_by == admin and exc.revoked_by == operator
    # Place that history over four past days: approved on day 1, revoked on day 2.
    ControlException.objects.filter(pk=exc.pk).update(decided_at=DAY0 + timedelta(days=1, hours=8),
                                                      revoked_at=DAY0 + timedelta(days=2, hours=8))
    scans = [scan_at(host, "fail", DAY0 + timedelta(days=d, hours=12)) for d in range(4)]
    for scan in scans:
        evaluate_scan(scan)
    rows = [daily(host)[(DAY0 + timedelta(days=d)).date()] for d in range(4)]
    assert [r.controls_excepted - rows[0].controls_excepted for r in rows] == [0, 1, 0, 0]
    assert [rows[0].controls_fail - r.controls_fail for r in rows] == [0, 1, 0, 0]
    assert [rows[0].results_fail - r.results_fail for r in rows] == [0, 1, 0, 0]
    # Posture read at those moments agrees.
    from posture.queries.verdicts import findings

    def priv_at(scan):
        return findings(scans=[scan], at=scan.finished_at, check=PRIV[0], resource_type=PRIV[1],
                        resource=PRIV[2]).get().verdict

    assert [priv_at(s) for s in scans] == ["fail", "excepted", "fail", "fail"]


def test_it_fills_in_history_from_before_the_upgrade_at_the_hosts_next_scan(host):
    """An installation upgraded from stored results without windows or daily rows: the next
    evaluation rebuilds them from the host's earlier scans instead of starting today."""
    old = [scan_at(host, "fail", DAY0 + timedelta(days=d)) for d in range(2)]
    for scan in old:
        evaluate_scan(scan)
    FailureWindow.objects.all().delete()
    DailyPosture.objects.all().delete()
    evaluate_scan(scan_at(host, "fail", DAY0 + timedelta(days=2)))
    assert windows(host, PRIV) == [(*PRIV, old[0].pk, old[0].finished_at, None, None)]
    assert list(daily(host)) == [(DAY0 + timedelta(days=d)).date() for d in range(3)]


def test_it_writes_each_days_row_equal_to_the_rollup_of_that_days_scan(host, operator, admin):
    """Trends (DailyPosture) and rollups (overview, controls pages) cannot disagree: each day's
    row is the host's rollup of that day's scan read at its finish, with an exception for
    this host, one for every host by pattern and an attestation in force from day 1."""
    from posture.jobs.history import ROLLUP_ORDER, day_of, rebuild_history
    from posture.models import Attestation
    from posture.queries.rollups import host_rollups
    from posture.queries.verdicts import findings, verdict_counts

    scans = [scan_at(host, "fail", DAY0 + timedelta(days=d, hours=12)) for d in range(3)]
    for scan in scans:
        evaluate_scan(scan)
    other_fail = (findings(scans=[scans[0]], at=scans[0].finished_at, status="fail")
                  .exclude(check_id=PRIV[0]).order_by("check_id", "resource").values_list("check_id", "resource")
                  .first())
    for check_id, who, pattern in ((PRIV[0], host, "rec-priv*"), (other_fail[0], None, other_fail[1][:3] + "*")):
        exc = workflow.propose(operator, check_id=check_id, host=who, resource_pattern=pattern, justification="j",
                               expires_at=timezone.now() + timedelta(days=30))
        workflow.decide(admin, exc, approve=True)
    ControlException.objects.update(decided_at=DAY0 + timedelta(days=1))
    Attestation.objects.create(check_id="daemon.engine_version_current", host=None, statement="patched",
                               attested_by=operator, attested_at=DAY0 + timedelta(days=1),
                               valid_until=DAY0 + timedelta(days=9))
    rebuild_history(host)

    excepted = []
    for scan in scans:
        rows = {r.framework: r for r in DailyPosture.objects.filter(host=host, day=day_of(scan.finished_at))}
        rolled = host_rollups(sorted(rows), scans=[scan], at=scan.finished_at)[host.pk]
        for framework, row in rows.items():
            tally = {s: getattr(row, f"controls_{s}") for s in ROLLUP_ORDER if getattr(row, f"controls_{s}")}
            assert tally == rolled[framework].pair_tally, (scan.finished_at, framework)
            counts = verdict_counts(findings(scans=[scan], at=scan.finished_at, framework=framework))
            assert (row.results_pass, row.results_fail) == (counts.get("pass", 0), counts.get("fail", 0))
        excepted.append(rolled["cis-docker-1.8.0"].pair_tally.get("excepted", 0))
    assert excepted[0] == 0 and excepted[1] == excepted[2] >= 1

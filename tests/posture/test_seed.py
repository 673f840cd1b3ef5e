"""The seeded history (tests/support/seed.py) is what it says it is: deterministic, written
as production writes it (evidence, chain, verdicts, windows, daily rows), and its known
failure windows, collection gaps, exceptions and attestations are in the database exactly as
the event log says. Expectations here come from the event log and the declared tables, never
from reading the database back through posture's own history code."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date, timedelta

import pytest
from django.core.management import CommandError, call_command

from posture.jobs.evaluate import group_rows, set_digest
from posture.jobs.history import rebuild_history
from posture.jobs.ingest import canonical_json, load_snapshot, manifest_lines, sha256_hex, verify_chain
from posture.models import (
    Attestation,
    ControlException,
    DailyPosture,
    DockerHost,
    Evaluation,
    EvidenceSet,
    FailureWindow,
    ScanRun,
)
from scanners import snapshot as snap
from scanners.runner import run_checks
from tests.support import seed_docs as docs
from tests.support.seed import HostEvidence, SeedSpec, _fleet, day_start, plan, schedule, seed

SMALL = SeedSpec(hosts=3, containers=6, images=3, days=30, seed=11, end=date(2026, 6, 30), churn=0.08,
                 missed=0.04, failed_scans=2, probe_failures=2, exceptions=5, attestations=3, probe_share=0.5)


@pytest.fixture
def seeded(db):
    return seed(SMALL)


def planned_digests(spec: SeedSpec) -> dict[tuple[int, int], str]:
    """(host, day) -> evidence set digest of every planned succeeded scan, from a fresh
    replay of the plan (no database)."""
    events = plan(spec)
    repos, releases = _fleet(spec)
    out = {}
    for index in range(spec.hosts):
        sim = HostEvidence(spec, index, dict(repos), releases)
        mine = sorted((e for e in events if e.host == index), key=lambda e: e.day)
        times, i = schedule(spec, index, mine), 0
        for day in range(spec.days):
            while i < len(mine) and mine[i].day <= day:
                sim.apply(mine[i])
                i += 1
            if day in times and times[day][1]:
                probe_failed = any(e.day == day and e.kind == "probe_failed" for e in mine)
                entries = [(k, key, sha256_hex(canonical_json(p))) for k, key, p in snap.split(sim.snapshot(probe_failed))]
                out[(index, day)] = sha256_hex(manifest_lines(entries))
    return out


def test_it_declares_exactly_the_tracked_checks_each_template_and_fault_fail():
    now = day_start(SMALL, 0)
    for template in docs.TEMPLATES:
        image = docs.image_doc("team/app", 1, template, now)
        for fault in [None, *docs.faults_for(template)]:
            c = docs.container_doc(host_key="h", name="c", serial=1, template=template, fault=fault, image=image,
                                   created=now)
            snapshot = docs.snapshot_of(docs.daemon_docs("h", "h", [c], [image], ("26.1.4", "6.1")), [image], [c], None)
            seen = {f.check_id: str(f.status) for f in run_checks(snapshot) if f.resource_type == "container"}
            assert {c for c in docs.TRACKED if seen[c] == "fail"} == docs.expected_failing(template, fault), (
                template, fault)
            assert "error" not in seen.values(), (template, fault)


def test_it_plans_the_same_history_from_the_same_seed():
    assert plan(SMALL) == plan(SMALL)
    assert planned_digests(SMALL) == planned_digests(SMALL)
    other = SeedSpec(**{**SMALL.__dict__, "seed": 12})
    assert plan(other) != plan(SMALL)


def test_it_stores_the_evidence_and_verdicts_production_would(seeded):
    planned = planned_digests(SMALL)
    stored = {}
    for (name, day), scan_id in seeded.scans.items():
        index = int(name.rsplit("-", 1)[1])
        stored[(index, (day - SMALL.first_day).days)] = ScanRun.objects.get(pk=scan_id).evidence_set.digest
    assert stored == planned  # same seed, same digests: the database holds the planned evidence
    # Scored from what storage gives back (as reevaluate would), every scan gets the result set it has.
    for scan in ScanRun.objects.filter(pk__in=list(seeded.scans.values())[::7]):
        current = Evaluation.objects.get(scan=scan, current=True)
        assert current.result_set.digest == set_digest(group_rows(run_checks(load_snapshot(scan))))
    # Nothing the seed stored is missing from the chain: every payload, set and link verifies.
    for host_id in seeded.hosts.values():
        assert verify_chain(host_id) == []


def test_it_writes_the_failure_windows_the_event_log_implies(seeded):
    names = {v: k for k, v in seeded.hosts.items()}
    stored = {(names[w.host_id], w.check_id, w.resource, w.opened_scan_id, w.closed_scan_id)
              for w in FailureWindow.objects.filter(check_id__in=docs.TRACKED, resource_type="container")}
    expected = {(w.host, w.check_id, w.resource, w.opened_scan, w.closed_scan) for w in seeded.windows}
    assert stored == expected
    assert any(w.closed_scan is None for w in seeded.windows) and any(w.closed_scan for w in seeded.windows)
    # Some window spans a collection gap: opened before it, still failing after it.
    spans = [(w, g) for w in seeded.windows for g in seeded.gaps
             if w.host == g.host and seeded.finished[w.opened_scan] <= g.start
             and (w.closed_scan is None or seeded.finished[w.closed_scan] >= g.end)]
    assert spans


def test_it_keeps_the_same_history_when_rebuilt(seeded):
    def history():
        return (sorted(FailureWindow.objects.values_list("host_id", "check_id", "resource", "opened_scan_id",
                                                         "closed_scan_id")),
                sorted(DailyPosture.objects.values_list("host_id", "framework", "day", "scan_id", "controls_fail",
                                                        "controls_excepted", "controls_pass", "results_fail")))

    live = history()
    for host_id in seeded.hosts.values():
        rebuild_history(host_id)
    assert history() == live


def test_it_leaves_the_planned_collection_gaps_and_failed_scans(seeded):
    events = plan(SMALL)
    missed = {(f"{SMALL.prefix}-{e.host:03d}", SMALL.first_day + timedelta(days=e.day))
              for e in events if e.kind == "missed"}
    failed = {(f"{SMALL.prefix}-{e.host:03d}", SMALL.first_day + timedelta(days=e.day))
              for e in events if e.kind == "failed"}
    assert missed and failed
    assert set(seeded.failed) == failed
    for (_name, day), scan_id in seeded.failed.items():
        scan = ScanRun.objects.get(pk=scan_id)
        assert (scan.state, scan.evidence_set_id, scan.finished_at.date()) == ("failed", None, day)
    per_host = defaultdict(list)
    for host, at in ScanRun.objects.filter(state="succeeded").values_list("host__name", "finished_at"):
        per_host[host].append(at)
    for name in seeded.hosts:
        days = {at.date() for at in per_host[name]}
        assert not days & {d for h, d in missed | failed if h == name}
    # Gaps by the definition (2 x interval between consecutive succeeded scans), from the rows.
    limit = timedelta(minutes=2 * SMALL.interval_minutes)
    found = {(h, a, b) for h, times in per_host.items() for a, b in zip(sorted(times), sorted(times)[1:], strict=False)
             if b - a > limit}
    assert found == {(g.host, g.start, g.end) for g in seeded.gaps}
    assert found
    # None is borderline: a query using >= instead of > cannot pass by luck.
    for times in per_host.values():
        for a, b in zip(sorted(times), sorted(times)[1:], strict=False):
            assert abs((b - a) - limit) >= timedelta(minutes=10)


def test_it_writes_exceptions_and_attestations_in_force_as_planned(seeded):
    period_end = day_start(SMALL, SMALL.days)
    rows = {e.pk: e for e in ControlException.objects.all()}
    assert set(rows) == set(seeded.exceptions)
    for pk, meant in seeded.exceptions.items():
        row = rows[pk]
        assert (row.check_id, row.host_id, row.resource_pattern, row.decided_at, row.expires_at, row.revoked_at) == (
            meant["check_id"], meant["host_id"], meant["pattern"], meant["decided_at"], meant["expires_at"],
            meant["revoked_at"])
        assert row.in_force(meant["decided_at"]) and not row.in_force(meant["expires_at"])
    assert any(m["expires_at"] < period_end for m in seeded.exceptions.values())  # expires inside the period
    revoked = [rows[pk] for pk, m in seeded.exceptions.items() if m["revoked_at"]]
    assert len(revoked) == 1 and revoked[0].state == "revoked"
    assert not revoked[0].in_force(revoked[0].revoked_at) and revoked[0].in_force(revoked[0].decided_at)
    # Host-scoped exceptions accept a failure that really happened on that host while in force.
    for pk, meant in seeded.exceptions.items():
        if meant["host_id"] is None:
            continue
        until = meant["revoked_at"] or meant["expires_at"]
        windows = FailureWindow.objects.filter(host_id=meant["host_id"], check_id=meant["check_id"],
                                               opened_at__lt=until)
        assert any(rows[pk].matches(meant["host_id"], w.check_id, w.resource)
                   and (w.closed_at is None or w.closed_at > meant["decided_at"] - timedelta(days=3))
                   for w in windows), pk
    atts = {a.pk: a for a in Attestation.objects.all()}
    assert set(atts) == set(seeded.attestations)
    assert any(a.valid_until < period_end for a in atts.values())  # some expire inside the period


def test_it_seeds_from_the_command_and_refuses_next_to_real_hosts(db, settings):
    out = io.StringIO()
    call_command("seed_history", "--hosts", "1", "--containers", "2", "--images", "1", "--days", "3",
                 "--end", "2026-06-30", stdout=out)
    assert "seeded 1 hosts x 3 days" in out.getvalue()
    assert ScanRun.objects.filter(host__name="seed-000", state="succeeded").exists()
    with pytest.raises(CommandError, match="seed-NNN exist already"):
        call_command("seed_history", "--hosts", "1", "--days", "2")
    DockerHost.objects.create(name="prod-db-1", url="tcp://10.0.0.5:2376")
    with pytest.raises(CommandError, match="did not make .*prod-db-1"):
        call_command("seed_history", "--hosts", "1", "--days", "2", "--prefix", "more")
    call_command("seed_history", "--hosts", "1", "--containers", "2", "--images", "1", "--days", "2",
                 "--prefix", "more", "--force", stdout=io.StringIO())
    assert DockerHost.objects.filter(name="more-000").exists()
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="POSTURE_ENV=production"):
        call_command("seed_history", "--prefix", "prod", "--force")
    assert not EvidenceSet.objects.filter(scans__host__name__startswith="prod-0").exists()

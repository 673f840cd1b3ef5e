"""Migration 0005: result sets stored the old way (every verdict per set, ControlResult rows)
are regrouped into per-resource chunks with the same verdicts, identical chunks once, sets
renamed to their new content address with their evaluations; legacy revoked exceptions get
their approval time back. On PostgreSQL here, and on SQLite (the embedded default) in a
subprocess running the same scenario."""

from __future__ import annotations

import copy
from collections import defaultdict
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import migrations
from tests.support.migrations import roundtrip, run_on_sqlite

BEFORE = [("posture", "0004_host_archive")]
COUNT_FIELD = {"pass": "passed", "fail": "failed", "not_applicable": "not_applicable", "manual": "manual",
               "error": "errors", "not_assessed": "not_assessed"}


def _old_rows(findings) -> list[tuple]:
    from scanners import registry

    versions = {s.id: s.version for s in registry.all_checks()}
    return sorted((f.check_id, versions.get(f.check_id, 0), f.resource_type, f.resource, str(f.status), f.detail,
                   f.evidence_kind, f.evidence_key) for f in findings)


def store_the_old_way(apps, host_name: str, snapshot: dict):
    """What 0004's evaluate_scan stored for one scan of ``snapshot`` (one row per verdict in
    the set, ControlResult counts per control); returns (scan id, verdicts)."""
    from posture.jobs.evaluate import check_controls, worst
    from posture.jobs.ingest import canonical_json, sha256_hex
    from scanners import snapshot as snap
    from scanners.runner import run_checks

    Host, Scan = apps.get_model("posture", "DockerHost"), apps.get_model("posture", "ScanRun")
    EvidenceSet = apps.get_model("posture", "EvidenceSet")
    ResultSet, CheckResult = apps.get_model("posture", "ResultSet"), apps.get_model("posture", "CheckResult")
    ControlResult, Control = apps.get_model("posture", "ControlResult"), apps.get_model("posture", "Control")
    Evaluation = apps.get_model("posture", "Evaluation")
    host, _ = Host.objects.get_or_create(name=host_name, defaults={"url": "unix:///old.sock"})
    # The scan's evidence set (its items are not needed here).
    items = snap.split(snapshot)
    digest = sha256_hex(canonical_json([[k, key] for k, key, _ in items]))
    ev_set, _ = EvidenceSet.objects.get_or_create(digest=digest, defaults={"item_count": len(items)})
    now = timezone.now()
    scan = Scan.objects.create(host=host, state="succeeded", evidence_set=ev_set, started_at=now, finished_at=now)
    rows = _old_rows(run_checks(snapshot))
    set_digest = sha256_hex(canonical_json(rows))
    counts = defaultdict(int)
    for row in rows:
        counts[row[4]] += 1
    result_set, created = ResultSet.objects.get_or_create(
        digest=set_digest, defaults={"finding_count": len(rows), "counts": dict(counts)})
    if created:
        CheckResult.objects.bulk_create([
            CheckResult(result_set=result_set, check_id=c, check_version=v, resource_type=rt, resource=r, status=st,
                        detail=d, evidence_kind=ek, evidence_key=key) for c, v, rt, r, st, d, ek, key in rows])
        controls = {(c.framework.slug, c.ref): c for c in Control.objects.select_related("framework")}
        per_control = defaultdict(list)
        for row in rows:
            for key in check_controls().get(row[0], ()):
                if key in controls:
                    per_control[controls[key].pk].append(row[4])
        ControlResult.objects.bulk_create([
            ControlResult(result_set=result_set, control_id=pk, status=worst(sts),
                          **{COUNT_FIELD[s]: sts.count(s) for s in COUNT_FIELD}) for pk, sts in per_control.items()])
    Evaluation.objects.create(scan=scan, result_set=result_set, engine_version="old", current=True)
    return scan.pk, [list(r[:1] + r[2:]) for r in rows]


def legacy_revoked_exceptions(apps) -> tuple[int, int]:
    """One exception approved then revoked, one revoked while proposed, both as 0004's
    revoke() left them (decided_* overwritten with the revocation)."""
    Exc, Event = apps.get_model("posture", "ControlException"), apps.get_model("posture", "AuditEvent")
    now = timezone.now()
    approved_then_revoked = Exc.objects.create(
        check_id="container.privileged_disabled", resource_pattern="rec-priv*", justification="x",
        expires_at=now + timedelta(days=30), state="revoked", decided_at=now)
    event = Event.objects.create(action="exception.approved", target=f"exception #{approved_then_revoked.pk}",
                                 actor_label="admin")
    Event.objects.filter(pk=event.pk).update(at=now - timedelta(days=2))
    never_approved = Exc.objects.create(check_id="container.privileged_disabled", justification="y",
                                        expires_at=now + timedelta(days=30), state="revoked", decided_at=now)
    return approved_then_revoked.pk, never_approved.pk


def fewer_containers(snapshot: dict) -> dict:
    fewer = copy.deepcopy(snapshot)
    fewer["containers"] = [c for c in fewer["containers"] if c["name"] != "rec-privileged"]
    return fewer


def scenario_before(apps) -> dict:
    from tests.posture.conftest import SNAPSHOT

    fewer = fewer_containers(SNAPSHOT)
    a, verdicts_a = store_the_old_way(apps, "old-a", SNAPSHOT)
    a2, _ = store_the_old_way(apps, "old-a", SNAPSHOT)  # an unchanged rescan: the same set
    b, verdicts_b = store_the_old_way(apps, "old-b", fewer)
    revoked, withdrawn = legacy_revoked_exceptions(apps)
    return {"a": a, "a2": a2, "b": b, "verdicts": {a: verdicts_a, a2: verdicts_a, b: verdicts_b},
            "revoked": revoked, "withdrawn": withdrawn}


def check_after(before: dict) -> None:
    """Same verdicts through the read path, chunks shared, digests as evaluation computes them."""
    from posture.jobs.evaluate import control_counts, group_rows, set_digest
    from posture.models import AuditEvent, CheckResult, ControlException, ResultChunk, ResultSet, ScanRun
    from posture.queries.verdicts import findings
    from scanners.runner import run_checks
    from tests.posture.conftest import SNAPSHOT

    for scan_id, verdicts in before["verdicts"].items():
        scan = ScanRun.objects.get(pk=scan_id)
        got = [[r.check_id, r.resource_type, r.resource, r.verdict, r.detail, r.evidence_kind, r.evidence_key]
               for r in findings(scans=[scan], at=timezone.now() - timedelta(days=400))]
        assert sorted(got) == sorted(verdicts)
    findings = run_checks(SNAPSHOT)
    chunks = group_rows(findings)
    a = ScanRun.objects.get(pk=before["a"]).evaluations.get(current=True)
    assert a.result_set.digest == set_digest(chunks)  # what evaluating the scan today would store
    assert a.result_set.control_counts == control_counts(
        [row for rows in chunks.values() for row in rows])
    # Host b runs a's containers but one: their chunks are shared, each verdict stored once.
    chunks_b = group_rows(run_checks(fewer_containers(SNAPSHOT)))
    assert ResultSet.objects.count() == 2
    assert set(ResultChunk.objects.values_list("digest", flat=True)) == set(chunks) | set(chunks_b)
    assert CheckResult.objects.count() == sum(len(rows) for rows in {**chunks, **chunks_b}.values())
    assert len(set(chunks) & set(chunks_b)) >= len(SNAPSHOT["containers"]) - 1
    revoked = ControlException.objects.get(pk=before["revoked"])
    approved_at = AuditEvent.objects.get(action="exception.approved").at
    assert revoked.decided_at == approved_at and revoked.revoked_at > approved_at
    assert ControlException.objects.filter(ControlException.active_q(approved_at + timedelta(hours=1))).get() == revoked
    assert not ControlException.objects.filter(ControlException.active_q(timezone.now() + timedelta(seconds=1))).exists()
    withdrawn = ControlException.objects.get(pk=before["withdrawn"])
    assert withdrawn.decided_at is None and withdrawn.revoked_at is not None
    assert revoked.resource_regex and CheckResult.objects.filter(resource__regex=revoked.resource_regex).exists()


@pytest.mark.django_db(transaction=True)
def test_it_regroups_result_sets_stored_the_old_way_on_postgresql():
    roundtrip(BEFORE, scenario_before, check_after)


def sqlite_roundtrip() -> None:  # pragma: no cover - runs in the subprocess below
    migrations.sqlite_roundtrip(BEFORE, scenario_before, check_after)


def test_it_regroups_result_sets_stored_the_old_way_on_sqlite(tmp_path):
    run_on_sqlite("tests.posture.test_migration_result_chunks", tmp_path)
    assert (tmp_path / "posture.sqlite3").exists()

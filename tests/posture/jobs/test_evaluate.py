"""Verdict storage per resource: a chunk per resource's verdicts shared by every scan and host
that produced exactly them, a result set of memberships, control counts on the set; the
verdicts read back are exactly what the checks said."""

from __future__ import annotations

import copy
import threading

import pytest
from django.db import connection

import posture.jobs.evaluate as evaluate
from posture.jobs.evaluate import evaluate_scan, store_result_set
from posture.jobs.ingest import canonical_json, load_snapshot, sha256_hex
from posture.models import CheckResult, DockerHost, ResultChunk, ResultSet, ResultSetChunk
from posture.queries.verdicts import findings
from scanners import registry
from scanners.runner import run_checks
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


def rows_now() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (ResultChunk, ResultSetChunk, CheckResult, ResultSet)}


def chunk_of(result_set_id: str, resource: str) -> str:
    return ResultSetChunk.objects.get(result_set_id=result_set_id, chunk__resource=resource).chunk_id


def with_container(snapshot: dict, name: str, **host_config) -> dict:
    snap = copy.deepcopy(snapshot)
    container = next(c for c in snap["containers"] if c["name"] == name)
    container["inspect"]["HostConfig"].update(host_config)
    return snap


@pytest.fixture
def hosts():
    return [DockerHost.objects.create(name=f"h{i}", url=f"unix:///h{i}.sock") for i in (1, 2)]


def test_it_reads_back_exactly_the_verdicts_the_checks_gave(hosts):
    """The same rows the one-set-per-scan storage held (its digest is over them)."""
    scan = stored_scan(hosts[0], SNAPSHOT)
    evaluate_scan(scan)
    versions = {s.id: s.version for s in registry.all_checks()}
    # Evaluation reads the stored evidence (JSON key order is the database's).
    expected = sorted((f.check_id, versions[f.check_id], f.resource_type, f.resource, str(f.status), f.detail,
                       f.evidence_kind, f.evidence_key) for f in run_checks(load_snapshot(scan)))
    got = sorted((r.check_id, versions[r.check_id], r.resource_type, r.resource, r.verdict, r.detail,
                  r.evidence_kind, r.evidence_key) for r in findings(scans=[scan]))
    assert got == expected
    assert sha256_hex(canonical_json(got)) == sha256_hex(canonical_json(expected))
    result_set = scan.evaluations.get().result_set
    assert result_set.finding_count == len(expected) == CheckResult.objects.count()
    assert ResultChunk.objects.count() == len({(r[2], r[3]) for r in expected}) == result_set.memberships.count()
    # Per-control counts before exceptions, e.g. CIS 5.5 (privileged) fails on rec-privileged only.
    five_five = result_set.control_counts["cis-docker-1.8.0"]["5.5"]
    assert five_five["fail"] == 1 and five_five["pass"] == len(SNAPSHOT["containers"]) - 1


def test_it_shares_the_chunk_of_an_identical_container_between_hosts(hosts):
    fewer = copy.deepcopy(SNAPSHOT)
    fewer["containers"] = [c for c in fewer["containers"] if c["name"] in ("rec-hardened", "rec-privileged")]
    e1 = evaluate_scan(stored_scan(hosts[0], SNAPSHOT))
    e2 = evaluate_scan(stored_scan(hosts[1], fewer))
    assert e1.result_set_id != e2.result_set_id
    # (rec-privileged's verdicts differ: whether the daemon has a default bridge is read from
    # the other containers, and rec-default is not on host 2.)
    assert chunk_of(e1.result_set_id, "rec-hardened") == chunk_of(e2.result_set_id, "rec-hardened")
    shared = ResultChunk.objects.get(pk=chunk_of(e1.result_set_id, "rec-hardened"))
    assert shared.memberships.count() == 2
    assert CheckResult.objects.filter(chunk=shared).count() == shared.finding_count  # stored once


def test_it_adds_no_row_for_an_unchanged_rescan_even_when_re_scored(hosts, monkeypatch):
    e1 = evaluate_scan(stored_scan(hosts[0], SNAPSHOT))
    before = rows_now()
    e2 = evaluate_scan(stored_scan(hosts[0], SNAPSHOT))  # same evidence: verdicts reused
    # A new engine version re-runs every check; the same verdicts make the same chunks and set.
    monkeypatch.setattr(evaluate, "engine_version", lambda: "another engine")
    e3 = evaluate_scan(stored_scan(hosts[0], SNAPSHOT))
    assert e1.result_set_id == e2.result_set_id == e3.result_set_id
    assert rows_now() == before


def test_it_adds_one_chunk_and_one_set_of_memberships_for_one_changed_container(hosts):
    e1 = evaluate_scan(stored_scan(hosts[0], SNAPSHOT))
    before = rows_now()
    changed = with_container(SNAPSHOT, "rec-hardened", Privileged=True)
    e2 = evaluate_scan(stored_scan(hosts[0], changed))
    after = rows_now()
    new_chunk = chunk_of(e2.result_set_id, "rec-hardened")
    assert new_chunk != chunk_of(e1.result_set_id, "rec-hardened")
    assert after["ResultChunk"] == before["ResultChunk"] + 1
    assert after["ResultSet"] == before["ResultSet"] + 1
    assert after["ResultSetChunk"] == before["ResultSetChunk"] + e1.result_set.memberships.count()
    assert after["CheckResult"] == before["CheckResult"] + ResultChunk.objects.get(pk=new_chunk).finding_count
    assert (e2.new_failures, e2.fixed) == (
        CheckResult.objects.filter(chunk_id=new_chunk, status="fail").count()
        - CheckResult.objects.filter(chunk_id=chunk_of(e1.result_set_id, "rec-hardened"), status="fail").count(), 0)


@pytest.mark.django_db(transaction=True)
def test_it_stores_the_same_new_verdicts_once_when_two_workers_race():
    findings = run_checks(with_container(SNAPSHOT, "rec-stopped", Privileged=True))
    barrier = threading.Barrier(2)
    digests, errors = [], []

    def worker():
        try:
            barrier.wait()
            digests.append(store_result_set(findings).digest)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(set(digests)) == 1 and len(digests) == 2
    result_set = ResultSet.objects.get()
    assert result_set.memberships.count() == ResultChunk.objects.count()
    assert CheckResult.objects.count() == len(findings) == result_set.finding_count

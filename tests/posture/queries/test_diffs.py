"""Diff of two stored scans of a host: containers and images added and removed, fields
changed (old -> new from the stored payloads), checks that flipped (an error or a coverage
gap is never a fix), read from the chunks that differ only."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

import posture.queries.diffs as diffs
from posture.choices import ScanState
from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.models import DockerHost, ResultChunk, ResultSetChunk, ScanRun
from posture.queries.diffs import DiffError, diff_scans, flip_kind
from posture.queries.jsondiff import FieldChange, changes
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"
T0 = timezone.make_aware(datetime(2026, 4, 1, 6, 0))
HOSTILE = '<img src=x onerror="alert(1)">'


def container(snap: dict, name: str) -> dict:
    return next(c for c in snap["containers"] if c["name"] == name)


def before_snapshot() -> dict:
    snap = copy.deepcopy(SNAPSHOT)
    snap["host"] = json.loads((FIXTURES / "host-bad.json").read_text())  # host checks fail
    return snap


def after_snapshot() -> dict:
    """From ``before_snapshot``: rec-hardened recreated privileged (new id) with a new env
    entry, rec-stopped gone, a new container, rec/uid0:1 gone, a new image, rec-privileged
    unreadable (its checks error), the host probe failed (host checks not assessed), a
    daemon upgrade."""
    snap = before_snapshot()
    hardened = container(snap, "rec-hardened")
    hardened["id"] = "f" * 64
    hardened["inspect"]["Id"] = "f" * 64
    hardened["inspect"]["HostConfig"]["Privileged"] = True
    hardened["inspect"]["Config"]["Env"] = [*(hardened["inspect"]["Config"]["Env"] or []),
                                            {"name": "NEW_SECRET", "looks_secret": True}]
    snap["containers"].remove(container(snap, "rec-stopped"))
    added = copy.deepcopy(container(snap, "rec-default"))
    added["id"] = added["inspect"]["Id"] = "a" * 64
    added["name"] = "added" + HOSTILE
    snap["containers"].append(added)
    snap["images"] = [i for i in snap["images"] if i["tags"] != ["rec/uid0:1"]]
    new_image = copy.deepcopy(snap["images"][0])
    new_image["id"] = "sha256:" + "b" * 64
    new_image["tags"] = ["new/img:1"]
    snap["images"].append(new_image)
    container(snap, "rec-privileged")["inspect"]["HostConfig"] = "unreadable"
    snap["host"].update(files={}, contents={}, mounts=[], docker_root_is_mount=None,
                        errors=["the host probe script failed: exit code 2"])
    snap["daemon"]["version"] = {**snap["daemon"]["version"], "Version": "99.0.0"}
    return snap


def scan_at(host: DockerHost, snap: dict, hours: float, evaluate: bool = True) -> ScanRun:
    scan = stored_scan(host, snap)
    ScanRun.objects.filter(pk=scan.pk).update(started_at=T0 + timedelta(hours=hours),
                                              finished_at=T0 + timedelta(hours=hours))
    scan.refresh_from_db()
    if evaluate:
        evaluate_scan(scan)
    return scan


@pytest.fixture
def host() -> DockerHost:
    return DockerHost.objects.create(name="web1", url="unix:///var/run/docker.sock")


@pytest.fixture
def pair(host) -> tuple[ScanRun, ScanRun]:
    return scan_at(host, before_snapshot(), 0), scan_at(host, after_snapshot(), 24)


def statuses(scan: ScanRun) -> dict[tuple[str, str, str], str]:
    rows = findings(scans=[scan], at=scan.finished_at).values_list("check_id", "resource_type", "resource", "verdict")
    return {(check, rtype, resource): verdict for check, rtype, resource, verdict in rows}


def test_it_lists_containers_and_images_added_and_removed(pair):
    diff = diff_scans(*pair)
    assert [(r.name, r.key) for r in diff.containers_added] == [("added" + HOSTILE, "a" * 64)]
    assert [r.name for r in diff.containers_removed] == ["rec-stopped"]
    assert [(r.name, r.key) for r in diff.images_added] == [("new/img:1", "sha256:" + "b" * 64)]
    assert [r.name for r in diff.images_removed] == ["rec/uid0:1"]


def test_it_shows_changed_fields_old_to_new_from_the_stored_payloads(pair):
    diff = diff_scans(*pair)
    by_name = {(c.kind, c.name): c for c in diff.changed}
    hardened = by_name[("container", "rec-hardened")]
    # Recreated under its name with another id: one resource, with its field changes.
    assert hardened.recreated and hardened.previous_key == container(SNAPSHOT, "rec-hardened")["id"]
    assert FieldChange("HostConfig.Privileged", "changed", False, True) in hardened.changes
    assert FieldChange('Config.Env[name="NEW_SECRET"]', "added", None,
                       {"name": "NEW_SECRET", "looks_secret": True}) in hardened.changes
    assert FieldChange("Id", "changed", container(SNAPSHOT, "rec-hardened")["id"], "f" * 64) in hardened.changes
    assert "rec-hardened" not in [r.name for r in diff.containers_added + diff.containers_removed]
    version = by_name[("daemon.version", "daemon")]
    assert [(c.path, c.new) for c in version.changes] == [("Version", "99.0.0")]
    privileged = by_name[("container", "rec-privileged")]
    assert privileged.changes[0].path == "HostConfig" and privileged.changes[0].new == "unreadable"
    assert ("host", "probe") in by_name
    # Unchanged containers are not listed.
    assert not {"rec-default", "rec-mounts", "rec-sshd"} & {c.name for c in diff.changed}


def test_it_lists_flipped_checks_and_never_counts_an_error_as_fixed(pair):
    before, after = pair
    diff = diff_scans(after, before)  # either order: before is the earlier scan
    assert (diff.before.id, diff.after.id) == (before.pk, after.pk) and diff.verdicts_compared
    flips = {(f.check, f.resource_type, f.resource): f for f in diff.flips}
    assert flips[("container.privileged_disabled", "container", "rec-hardened")].kind == "new_failure"
    priv = flips[("container.privileged_disabled", "container", "rec-privileged")]
    assert (priv.before, priv.after, priv.kind) == ("fail", "error", "error")
    host_gaps = [f for f in diff.flips if f.resource_type == "host" and f.before == "fail"]
    assert host_gaps and {f.after for f in host_gaps} == {"not_assessed"}
    fixed = diff.flips_of("fixed")
    assert fixed and all(f.after in ("pass", "not_applicable", None) for f in fixed)
    assert {f.resource for f in fixed if f.after is None} == {"rec-stopped", "rec/uid0:1"}  # gone, failures too
    # The same answer as reading both scans in full and comparing every (check, resource).
    old, new = statuses(before), statuses(after)
    expected = {k: flip_kind(old.get(k), new.get(k)) for k in set(old) | set(new)}
    assert {k: f.kind for k, f in flips.items()} == {k: v for k, v in expected.items() if v}
    assert diff.counts["fixed"] == len(fixed) and diff.counts["error"] == len(diff.flips_of("error"))
    assert set(diff.counts) == set(diffs.FLIP_KINDS)


def test_it_reads_both_sides_with_the_exceptions_in_force_at_the_later_scan(pair, operator, admin):
    before, after = pair
    exc = workflow.propose(operator, check_id="container.privileged_disabled", host=before.host,
                           resource_pattern="rec-hard*", justification="debugging",
                           expires_at=timezone.now() + timedelta(days=30))
    workflow.decide(admin, exc, approve=True)
    exc.refresh_from_db()
    exc.decided_at = T0 + timedelta(hours=12)  # approved between the two scans
    exc.save(update_fields=["decided_at"])
    flip = next(f for f in diff_scans(before, after).flips if f.resource == "rec-hardened"
                and f.check == "container.privileged_disabled")
    assert (flip.before, flip.after, flip.kind) == ("pass", "excepted", "excepted")
    exc.decided_at = T0 + timedelta(hours=30)  # approved after the later scan: not in force then
    exc.save(update_fields=["decided_at"])
    flip = next(f for f in diff_scans(before, after).flips if f.resource == "rec-hardened"
                and f.check == "container.privileged_disabled")
    assert flip.kind == "new_failure"


def test_it_reads_flips_with_the_same_matcher_as_findings(pair, operator, admin):
    """Flips are read with the findings' SQL matchers, as of the later scan: an exception for
    every host by pattern, one for this host and an attestation give the same verdicts on
    the changed rows as reading both scans in full with ``findings``."""
    from posture.models import Attestation, ControlException

    before, after = pair
    for check_id, who, pattern in (("container.privileged_disabled", None, "rec-h*"),
                                   ("container.privileged_disabled", before.host, "rec-priv*")):
        exc = workflow.propose(operator, check_id=check_id, host=who, resource_pattern=pattern, justification="j",
                               expires_at=timezone.now() + timedelta(days=30))
        workflow.decide(admin, exc, approve=True)
    ControlException.objects.update(decided_at=T0)
    Attestation.objects.create(check_id="daemon.engine_version_current", host=None, statement="patched",
                               attested_by=operator, attested_at=T0, valid_until=T0 + timedelta(days=9))
    flips = {(f.check, f.resource_type, f.resource): f for f in diff_scans(*pair).flips}
    at = after.finished_at

    def read(scan: ScanRun) -> dict:
        rows = findings(scans=[scan], at=at).values_list("check_id", "resource_type", "resource", "verdict")
        return {(c, rt, r): v for c, rt, r, v in rows}

    old, new = read(before), read(after)
    expected = {k: (old.get(k), new.get(k)) for k in set(old) | set(new) if flip_kind(old.get(k), new.get(k))}
    assert {k: (f.before, f.after) for k, f in flips.items()} == expected
    assert expected[("container.privileged_disabled", "container", "rec-hardened")] == ("pass", "excepted")
    assert {v for k, v in new.items() if k[0] == "daemon.engine_version_current"} == {"pass"}  # attested


def test_it_reads_only_the_chunks_that_differ(host, django_assert_max_num_queries, monkeypatch):
    """A host with many unchanged containers costs the same queries and reads the verdicts of
    the changed resources only."""
    base = before_snapshot()
    for i in range(30):
        extra = copy.deepcopy(container(base, "rec-default"))
        extra["id"] = extra["inspect"]["Id"] = f"{i:064x}"
        extra["name"] = f"same-{i}"
        base["containers"].append(extra)
    changed = copy.deepcopy(base)
    container(changed, "rec-hardened")["inspect"]["HostConfig"]["Privileged"] = True
    a, b = scan_at(host, base, 0), scan_at(host, changed, 1)
    read: list[int] = []
    original = diffs._rows_only_in
    monkeypatch.setattr(diffs, "_rows_only_in", lambda *args: read.append(len(rows := original(*args))) or rows)
    with django_assert_max_num_queries(7):  # exceptions and attestations matched within the two row reads
        diff = diff_scans(a.pk, b.pk)
    sets = [s.evaluations.get(current=True).result_set_id for s in (a, b)]
    members = [set(ResultSetChunk.objects.filter(result_set_id=s).values_list("chunk_id", flat=True)) for s in sets]
    differing = members[0] ^ members[1]
    assert sum(read) == sum(ResultChunk.objects.filter(pk__in=differing).values_list("finding_count", flat=True))
    assert diff.unchanged_resources == len(members[0] & members[1]) > 30
    assert [c.name for c in diff.changed] == ["rec-hardened"]
    assert {(f.resource, f.kind) for f in diff.flips} == {("rec-hardened", "new_failure")}
    assert ("container.privileged_disabled", "rec-hardened") in {(f.check, f.resource) for f in diff.flips}


def test_it_finds_nothing_between_two_scans_of_unchanged_evidence(host, django_assert_max_num_queries):
    a, b = scan_at(host, SNAPSHOT, 0), scan_at(host, SNAPSHOT, 1)
    with django_assert_max_num_queries(3):
        diff = diff_scans(a, b)
    assert diff.identical and diff.unchanged_resources > 0 and diff.counts["fixed"] == 0


def test_it_compares_evidence_only_when_a_scan_is_not_evaluated(host):
    a, b = scan_at(host, before_snapshot(), 0), scan_at(host, after_snapshot(), 1, evaluate=False)
    diff = diff_scans(a, b)
    assert not diff.verdicts_compared and diff.flips == [] and not diff.after.evaluated
    assert [r.name for r in diff.containers_removed] == ["rec-stopped"]


def test_it_refuses_scans_of_two_hosts_or_without_evidence(host):
    other = DockerHost.objects.create(name="db1", url="unix:///db.sock")
    a, b = scan_at(host, SNAPSHOT, 0), scan_at(other, SNAPSHOT, 1)
    with pytest.raises(DiffError, match="'web1' and scan #.* of host 'db1': only two scans of the same host"):
        diff_scans(a, b)
    failed = ScanRun.objects.create(host=host, state=ScanState.FAILED, error="unreachable")
    with pytest.raises(DiffError, match=f"scan #{failed.pk} failed and has no evidence"):
        diff_scans(a, failed)
    with pytest.raises(DiffError, match="there is no scan #999999"):
        diff_scans(a, 999999)


def test_it_caps_the_changes_listed_per_resource_and_says_how_many(host):
    base = copy.deepcopy(SNAPSHOT)
    many = copy.deepcopy(base)
    container(many, "rec-default")["inspect"]["Config"]["Labels"] = {f"l{i:03}": "x" for i in range(80)}
    diff = diff_scans(scan_at(host, base, 0, evaluate=False), scan_at(host, many, 1, evaluate=False))
    (change,) = diff.changed
    assert len(change.changes) == diffs.MAX_CHANGES_PER_RESOURCE and change.total_changes == 80 and change.truncated


@pytest.mark.parametrize("old, new, expected", [
    ({"a": False}, {"a": 0}, [("a", "changed", False, 0)]),  # types count
    ({"CapAdd": ["A"]}, {"CapAdd": ["A", "B"]}, [("CapAdd", "changed", ["A"], ["A", "B"])]),
    ({"Mounts": [{"Destination": "/a", "RW": True}, {"Destination": "/b", "RW": True}]},
     {"Mounts": [{"Destination": "/b", "RW": False}, {"Destination": "/c", "RW": True}]},
     [('Mounts[Destination="/a"]', "removed", {"Destination": "/a", "RW": True}, None),
      ('Mounts[Destination="/b"].RW', "changed", True, False),
      ('Mounts[Destination="/c"]', "added", None, {"Destination": "/c", "RW": True})]),
    ({"Labels": {"com.x.y": "1"}}, {"Labels": {"com.x.y": "2"}}, [('Labels["com.x.y"]', "changed", "1", "2")]),
    ({"h": [{"c": 1}, {"c": 2}]}, {"h": [{"c": 1}, {"c": 3}]}, [("h[1].c", "changed", 2, 3)]),
])
def test_it_compares_json_sensibly(old, new, expected):
    assert [(c.path, c.change, c.old, c.new) for c in changes(old, new)] == expected


def test_it_summarises_a_huge_value():
    (change,) = changes({"x": "a"}, {"x": "b" * 100_000})
    assert change.new["truncated"] is True and change.new["chars"] == 100_002 and len(change.new["start"]) == 200

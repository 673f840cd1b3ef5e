"""run_checks: one finding per check x resource, resilience to broken checks and data, speed."""

from __future__ import annotations

import copy
import time

from scanners import registry
from scanners.checks.base import Scope, Severity, Status, check
from scanners.runner import run_checks
from scanners.snapshot import KIND_CONTAINER, KIND_DAEMON_INFO, KIND_HOST, KIND_IMAGE, join, split

from .helpers import load, snapshot


def _count(scope: Scope) -> int:
    return sum(1 for s in registry.all_checks() if s.scope is scope)


def test_it_makes_one_finding_per_check_and_resource():
    snap = snapshot()
    findings = run_checks(snap)
    expected = (_count(Scope.DAEMON) + _count(Scope.HOST) + _count(Scope.IMAGE) * len(snap["images"])
                + _count(Scope.CONTAINER) * len(snap["containers"]))
    assert len(findings) == expected
    keys = {(f.check_id, f.resource_type, f.resource) for f in findings}
    assert len(keys) == len(findings)


def test_it_names_resources_by_container_name_and_image_tag():
    findings = run_checks(snapshot())
    containers = {f.resource for f in findings if f.resource_type == "container"}
    assert "rec-hardened" in containers and "rec-privileged" in containers
    assert {f.resource for f in findings if f.resource_type == "image"} == {
        "local/busybox:1", "rec/good:1", "rec/bad:1", "rec/uid0:1"}
    assert {f.resource for f in findings if f.resource_type in ("daemon", "host")} == {"daemon", "host"}


def test_it_names_untagged_images_by_short_id():
    snap = snapshot()
    snap["images"][0]["tags"] = []
    short = snap["images"][0]["id"].removeprefix("sha256:")[:12]
    assert short in {f.resource for f in run_checks(snap) if f.resource_type == "image"}


def test_it_links_findings_to_their_stored_evidence():
    snap = snapshot(host="host-good.json")
    by_id = {(f.check_id, f.resource): f for f in run_checks(snap)}
    hardened = next(c for c in snap["containers"] if c["name"] == "rec-hardened")
    f = by_id[("container.privileged_disabled", "rec-hardened")]
    assert (f.evidence_kind, f.evidence_key) == (KIND_CONTAINER, hardened["id"])
    f = by_id[("image.no_secrets", "rec/bad:1")]
    assert f.evidence_kind == KIND_IMAGE and f.evidence_key.startswith("sha256:")
    assert (by_id[("daemon.live_restore_enabled", "daemon")].evidence_kind,
            by_id[("daemon.live_restore_enabled", "daemon")].evidence_key) == (KIND_DAEMON_INFO, "daemon")
    f = by_id[("host.etc_docker_mode", "host")]
    assert (f.evidence_kind, f.evidence_key) == (KIND_HOST, "probe")
    f = by_id[("manual.host_os_hardened", "host")]
    assert (f.evidence_kind, f.evidence_key) == ("", "")


def test_it_links_no_host_evidence_when_the_probe_is_off():
    f = next(f for f in run_checks(snapshot()) if f.check_id == "host.etc_docker_mode")
    assert (f.status, f.detail, f.evidence_kind) == (Status.NOT_ASSESSED, "host probe not enabled", "")


def test_it_turns_a_raising_check_into_an_error_and_carries_on():
    @check(id="container.test_broken", title="broken", scope=Scope.CONTAINER, severity=Severity.LOW,
           controls={}, remediation="none")
    def broken(c, ctx):
        raise ValueError("boom\nsecond line")

    specs = [broken.spec, registry.get("container.privileged_disabled")]
    findings = run_checks(snapshot(), specs)
    errors = [f for f in findings if f.check_id == "container.test_broken"]
    assert errors and all(f.status is Status.ERROR and f.detail == "ValueError: boom" for f in errors)
    assert {f.status for f in findings if f.check_id == "container.privileged_disabled"} == {
        Status.PASS, Status.FAIL}


def test_it_turns_a_malformed_return_into_an_error():
    @check(id="daemon.test_bad_return", title="bad", scope=Scope.DAEMON, severity=Severity.LOW,
           controls={}, remediation="none")
    def bad(ctx, _):
        return "pass"

    (finding,) = run_checks(snapshot(), [bad.spec])
    assert finding.status is Status.ERROR and "expected (Status, str)" in finding.detail


def test_it_reports_unreadable_evidence_as_errors_for_that_resource_only():
    snap = snapshot()
    snap["containers"].append({"id": "f" * 64, "name": "rec-garbled", "inspect": ["not", "a", "dict"]})
    findings = [f for f in run_checks(snap) if f.check_id == "container.memory_limited"]
    garbled = [f for f in findings if f.resource == "rec-garbled"]
    assert len(garbled) == 1 and garbled[0].status is Status.ERROR
    assert "unreadable container evidence" in garbled[0].detail
    assert len(findings) == len(snap["containers"])


def test_it_survives_an_empty_snapshot():
    findings = run_checks({})
    assert findings and all(f.resource_type in ("daemon", "host") for f in findings)
    info_checks = [f for f in findings if f.check_id == "daemon.live_restore_enabled"]
    assert info_checks[0].status is Status.ERROR


def test_it_gives_the_same_findings_on_a_snapshot_rebuilt_from_storage():
    snap = snapshot(host="host-bad.json")
    rebuilt = join(split(snap), snap["warnings"])
    assert run_checks(rebuilt) == run_checks(join(split(snap)))
    as_set = {(f.check_id, f.resource, f.status, f.detail) for f in run_checks(snap)}
    assert as_set == {(f.check_id, f.resource, f.status, f.detail) for f in run_checks(rebuilt)}


def test_it_writes_one_line_details():
    for f in run_checks(snapshot(host="host-bad.json")):
        assert f.detail and "\n" not in f.detail and len(f.detail) <= 500, f


def _fleet(containers: int = 200, images: int = 20) -> dict:
    snap = snapshot(host="host-good.json")
    base_c, base_i = snap["containers"], snap["images"]
    snap["containers"] = []
    for n in range(containers):
        c = copy.deepcopy(base_c[n % len(base_c)])
        c["id"] = f"{n:064x}"
        c["name"] = f"{c['name']}-{n}"
        snap["containers"].append(c)
    snap["images"] = []
    for n in range(images):
        i = copy.deepcopy(base_i[n % len(base_i)])
        i["id"] = f"sha256:{n:064x}"
        i["tags"] = [f"fleet/img{n}:1"]
        snap["images"].append(i)
    return snap


def test_it_evaluates_200_containers_and_20_images_well_under_a_second():
    snap = _fleet()
    run_checks(snap)  # warm the registry
    started = time.perf_counter()
    findings = run_checks(snap)
    elapsed = time.perf_counter() - started
    assert len(findings) > 200 * 27
    assert elapsed < 0.5, f"{elapsed:.3f}s"


def test_it_fixtures_are_real_recordings():
    # Guard against hand edits: the recorded snapshot says it came from our private daemon.
    snap = load("snapshot.json")
    assert snap["daemon"]["info"]["DockerRootDir"].startswith("/tmp/")
    assert all(c["name"].startswith("rec-") for c in snap["containers"])

"""Controls engine on stored evidence: results per check x resource, content-addressed result
sets, deltas, exceptions and attestations applied as of a moment, re-evaluation."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone

from posture.api.serializers import FindingSerializer
from posture.jobs import exceptions as workflow
from posture.jobs.evaluate import evaluate_scan
from posture.models import AuditEvent, CheckResult, Control, DockerHost, Evaluation, ResultSet
from posture.queries.rollups import rollup
from posture.queries.verdicts import findings, verdict_moment
from tests.posture.conftest import SNAPSHOT, stored_scan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checks"

pytestmark = pytest.mark.django_db


@pytest.fixture
def host():
    return DockerHost.objects.create(name="h1", url="unix:///x.sock")


def scan_results(scan, at=None) -> list[dict]:
    """The scan's verdicts in the API's shape, as read at ``at`` (default: the scan's own)."""
    return FindingSerializer(findings(scans=[scan], at=at or verdict_moment(scan)), many=True).data


def result(results, check, resource):
    return next(r for r in results if r["check"] == check and r["resource"] == resource)


def test_it_loads_the_catalogs_on_migrate():
    assert Control.objects.filter(framework__slug="cis-docker-1.8.0").count() == 118
    assert Control.objects.get(framework__slug="cis-docker-1.6.0", ref="2.7").title == \
        Control.objects.get(framework__slug="cis-docker-1.8.0", ref="2.8").title
    assert Control.objects.filter(framework__slug="soc2-2017", ref="CC6.1").exists()


def test_it_gives_every_check_a_verdict_per_resource_with_controls_and_evidence(host):
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    results = scan_results(scan)
    priv = result(results, "container.privileged_disabled", "rec-privileged")
    hard = result(results, "container.privileged_disabled", "rec-hardened")
    assert priv["status"] == "fail" and "Privileged" in priv["detail"]
    assert hard["status"] == "pass"
    assert priv["controls"]["cis-docker-1.8.0"] == ["5.5"] and priv["controls"]["cis-docker-1.6.0"] == ["5.5"]
    assert "soc2-2017" in priv["controls"]
    container_id = next(c["id"] for c in SNAPSHOT["containers"] if c["name"] == "rec-privileged")
    assert priv["evidence"] == {"kind": "container", "key": container_id}
    # Missing evidence is never a pass: this snapshot has no host probe.
    host_rows = [r for r in results if r["resource_type"] == "host" and r["check"].startswith("host.")]
    assert host_rows and all(r["status"] != "pass" for r in host_rows)


def test_it_reuses_the_result_set_of_an_unchanged_scan_and_reports_the_delta(host):
    first = stored_scan(host, SNAPSHOT)
    e1 = evaluate_scan(first)
    second = stored_scan(host, SNAPSHOT)
    e2 = evaluate_scan(second)
    assert e2.result_set_id == e1.result_set_id and ResultSet.objects.count() == 1
    assert (e2.new_failures, e2.fixed) == (0, 0)
    assert e2.unchanged_failures == ResultSet.objects.get().counts["fail"] > 0
    fixed = copy.deepcopy(SNAPSHOT)
    fixed["containers"] = [c for c in fixed["containers"] if c["name"] != "rec-privileged"]
    e3 = evaluate_scan(stored_scan(host, fixed))
    assert e3.fixed > 0 and e3.new_failures == 0
    assert CheckResult.objects.filter(chunk__memberships__result_set_id=e3.result_set_id, resource="rec-privileged").count() == 0


def test_it_turns_a_matching_failure_into_excepted_only_while_approved_and_unexpired(host, operator, admin):
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    exc = workflow.propose(operator, check_id="container.privileged_disabled", host=host,
                           resource_pattern="rec-priv*", justification="vendor agent needs it",
                           expires_at=timezone.now() + timedelta(days=30))
    assert result(scan_results(scan), "container.privileged_disabled", "rec-privileged")["status"] == "fail"
    workflow.decide(admin, exc, approve=True)
    excepted = result(scan_results(scan), "container.privileged_disabled", "rec-privileged")
    assert excepted["status"] == "excepted" and "Privileged" in excepted["detail"] and excepted["exception"] == exc.pk
    assert excepted["stored_status"] == "fail"
    # Scoped: other checks and other resources are untouched.
    assert result(scan_results(scan), "container.privileged_disabled", "rec-hardened")["status"] == "pass"
    # Expired: it stops applying by itself.
    later = timezone.now() + timedelta(days=31)
    assert result(scan_results(scan, at=later), "container.privileged_disabled", "rec-privileged")["status"] == "fail"
    # Before approval it did not apply either ("posture at T").
    earlier = exc.proposed_at - timedelta(seconds=1)
    assert result(scan_results(scan, at=earlier), "container.privileged_disabled", "rec-privileged")["status"] == "fail"
    actions = list(AuditEvent.objects.order_by("at").values_list("action", flat=True))
    assert actions[-2:] == ["exception.proposed", "exception.approved"]


def test_it_enforces_who_may_propose_and_approve(host, operator, auditor, admin):
    expires = timezone.now() + timedelta(days=1)
    with pytest.raises(PermissionDenied):
        workflow.propose(auditor, check_id="container.privileged_disabled", justification="x", expires_at=expires)
    exc = workflow.propose(operator, check_id="container.privileged_disabled", justification="x", expires_at=expires)
    with pytest.raises(PermissionDenied):
        workflow.decide(operator, exc, approve=True)
    with pytest.raises(ValidationError, match="justification"):
        workflow.propose(operator, check_id="container.privileged_disabled", justification=" ", expires_at=expires)
    with pytest.raises(ValidationError, match="unknown check"):
        workflow.propose(operator, check_id="nope.nope", justification="x", expires_at=expires)
    with pytest.raises(ValidationError, match="future"):
        workflow.propose(operator, check_id="container.privileged_disabled", justification="x",
                         expires_at=timezone.now() - timedelta(days=1))


def test_it_satisfies_a_manual_check_with_an_attestation_until_it_expires(host, operator):
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    manual = next(r for r in scan_results(scan) if r["status"] == "manual")
    att = workflow.attest(operator, check_id=manual["check"], statement="Reviewed the hardening baseline.",
                          valid_until=timezone.now() + timedelta(days=90))
    now_row = result(scan_results(scan), manual["check"], manual["resource"])
    assert now_row["status"] == "pass" and now_row["attestation"] == att.pk and now_row["stored_status"] == "manual"
    expired = result(scan_results(scan, at=att.valid_until + timedelta(seconds=1)), manual["check"], manual["resource"])
    assert expired["status"] == "manual"
    with pytest.raises(ValidationError, match="manual checks"):
        workflow.attest(operator, check_id="container.privileged_disabled", statement="x",
                        valid_until=timezone.now() + timedelta(days=1))


def test_it_rolls_results_up_to_framework_controls(host):
    scan = stored_scan(host, SNAPSHOT)
    evaluate_scan(scan)
    cis = rollup("cis-docker-1.8.0", scans=[scan]).by_ref
    assert cis["5.5"].status == "fail" and cis["5.5"].counts["fail"] >= 1
    soc2 = rollup("soc2-2017", scans=[scan]).by_ref
    assert soc2 and all(v.status in ("fail", "error", "not_assessed", "manual", "excepted", "pass", "not_applicable")
                        for v in soc2.values())


def test_it_reevaluates_stored_scans_keeping_old_results(host):
    scan = stored_scan(host, SNAPSHOT)
    first = evaluate_scan(scan)
    call_command("reevaluate", "--host", "h1", stdout=open("/dev/null", "w"))
    evaluations = list(Evaluation.objects.filter(scan=scan).order_by("id"))
    assert len(evaluations) == 2 and evaluations[0].pk == first.pk
    assert not evaluations[0].current and evaluations[1].current
    assert evaluations[1].result_set_id == first.result_set_id


def test_it_keeps_results_of_look_alike_long_names_apart(host):
    """Names are attacker-controlled: two 400-character names that differ only at the end
    must not collide into one stored result."""
    snap = copy.deepcopy(SNAPSHOT)
    privileged = next(c for c in snap["containers"] if c["name"] == "rec-privileged")
    hardened = next(c for c in snap["containers"] if c["name"] == "rec-hardened")
    privileged["name"], hardened["name"] = "a" * 400 + "-evil", "a" * 400 + "-good"
    scan = stored_scan(host, snap)
    evaluate_scan(scan)
    rows = {r["resource"]: r["status"] for r in scan_results(scan) if r["check"] == "container.privileged_disabled"}
    assert rows["a" * 400 + "-evil"] == "fail" and rows["a" * 400 + "-good"] == "pass"


def test_it_reports_nothing_new_or_fixed_on_the_first_scan_of_a_host(host):
    e1 = evaluate_scan(stored_scan(host, SNAPSHOT))
    assert e1.result_set.counts["fail"] > 0
    assert (e1.new_failures, e1.fixed, e1.unchanged_failures) == (0, 0, 0)


def test_it_does_not_count_a_failure_that_became_an_error_or_not_assessed_as_fixed(host):
    with_probe = copy.deepcopy(SNAPSHOT)
    with_probe["host"] = json.loads((FIXTURES / "host-bad.json").read_text())
    e1 = evaluate_scan(stored_scan(host, with_probe))
    host_failures = CheckResult.objects.filter(chunk__memberships__result_set_id=e1.result_set_id, resource_type="host", status="fail")
    assert host_failures.count() > 0
    probe_failed = copy.deepcopy(with_probe)
    probe_failed["host"].update(files={}, contents={}, mounts=[], docker_root_is_mount=None,
                                errors=["the host probe script failed: exit code 2"])
    e2 = evaluate_scan(stored_scan(host, probe_failed))
    assert CheckResult.objects.filter(chunk__memberships__result_set_id=e2.result_set_id, resource_type="host",
                                      status="not_assessed").count() >= host_failures.count()
    # Every failure that became not_assessed is neither fixed nor still failing.
    assert e2.result_set.counts["fail"] <= e1.result_set.counts["fail"] - host_failures.count()
    assert (e2.new_failures, e2.fixed, e2.unchanged_failures) == (0, 0, e2.result_set.counts["fail"])


def test_it_orders_every_check_status_in_one_enum():
    from posture.choices import ResultStatus
    from scanners.checks.base import Status

    assert {s.value for s in Status} | {"excepted"} == set(ResultStatus.order())
    assert set(ResultStatus.order(read_time=False)) == {s.value for s in Status}

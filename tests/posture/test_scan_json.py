"""``scan --json`` lists a scan's verdicts through the query layer: after the exceptions in
force, in the API's finding shape, ordered by check and resource."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from posture.jobs.evaluate import evaluate_scan
from posture.management.commands.scan import Command
from posture.models import ControlException, DockerHost, ExceptionState
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


def test_it_prints_every_verdict_after_the_exceptions_in_force():
    scan = stored_scan(DockerHost.objects.create(name="web1", url="unix:///x.sock"), SNAPSHOT)
    evaluate_scan(scan)
    exc = ControlException.objects.create(
        check_id="container.privileged_disabled", resource_pattern="rec-privileged", justification="vendor agent",
        state=ExceptionState.APPROVED, decided_at=timezone.now() - timedelta(hours=1),
        expires_at=timezone.now() + timedelta(days=9))
    out = io.StringIO()
    command = Command(stdout=out)
    command.report(scan, True, 0.1)
    doc = json.loads(out.getvalue())
    results = doc["results"]
    assert doc["scan"] == scan.pk and len(results) == scan.evaluations.get().result_set.finding_count
    keys = [(r["check"], r["resource_type"], r["resource"]) for r in results]
    assert keys == sorted(keys)
    priv = next(r for r in results if (r["check"], r["resource"]) == ("container.privileged_disabled", "rec-privileged"))
    assert (priv["status"], priv["stored_status"], priv["exception"]) == ("excepted", "fail", exc.pk)
    assert priv["controls"]["cis-docker-1.8.0"] == ["5.5"] and priv["evidence"]["kind"] == "container"
    assert priv["host"] == {"id": scan.host_id, "name": "web1"} and priv["severity"] == "critical"

"""A seeded audit period for the export tests: one host whose container names, exception
and attestation texts are formula-injection payloads, with known failure windows, a
collection gap, an exception in force for part of the period and a chained history."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from posture.jobs import exceptions as workflow
from posture.jobs import ingest
from posture.jobs.evaluate import evaluate_scan
from posture.models import Attestation, ControlException, DockerHost, ScanRun
from tests.posture.conftest import stored_scan
from tests.posture.jobs.test_history import variant

CIS = "cis-docker-1.8.0"
D0 = timezone.make_aware(datetime(2026, 3, 2))
DAY = timedelta(days=1)
#: Every payload the exports must neutralise; the first is the failing (privileged) container.
PAYLOADS = ["=cmd|' /C calc'!A0", "+1", "-1+1", "@SUM(1)", "\tinjected", "\rinjected"]
#: A name that must show as text in HTML and PDF (the container after the payloads').
MARKUP = "<script>alert(1)</script>"


def day(n: float) -> datetime:
    return D0 + n * DAY


def hostile(kind: str) -> dict:
    """A SNAPSHOT variant whose containers are named after the payloads."""
    snap = copy.deepcopy(variant(kind))
    priv = next(c for c in snap["containers"] if c["name"] == "rec-privileged")
    others = [c for c in snap["containers"] if c is not priv]
    for container, name in zip([priv, *others], [*PAYLOADS, MARKUP], strict=False):
        container["name"] = name
    return snap


def chained_history(host: DockerHost, kinds: dict[float, str]) -> list[ScanRun]:
    """Stored, chained and evaluated scans finished on the given days."""
    scans, previous = [], ingest.CHAIN_GENESIS
    for n, kind in sorted(kinds.items()):
        scan = stored_scan(host, hostile(kind))
        digest = ingest.chain_digest(previous, scan.pk, host.pk, day(n).isoformat(), scan.evidence_set.digest)
        ScanRun.objects.filter(pk=scan.pk).update(started_at=day(n), finished_at=day(n), chain_digest=digest)
        scan.refresh_from_db()
        previous = digest
        evaluate_scan(scan)
        scans.append(scan)
    return scans


@pytest.fixture
def period(db, operator, admin):
    """Host ``=h``-free name ``audit1``: failing days 0-1, a gap days 2-5, failing day 6,
    fixed day 7; an exception for the failing container in force days 1-3."""
    host = DockerHost.objects.create(name="audit1", url="unix:///audit1.sock", scan_interval_minutes=24 * 60)
    DockerHost.objects.filter(pk=host.pk).update(created_at=day(-1))
    scans = chained_history(host, {0: "fail", 1: "fail", 6: "fail", 7: "fixed", 8: "fixed"})
    exc = workflow.propose(operator, check_id="container.privileged_disabled", host=host,
                           resource_pattern="=cmd*", justification="=HYPERLINK(\"http://evil\")",
                           expires_at=timezone.now() + DAY)
    workflow.decide(admin, exc, approve=True)
    ControlException.objects.filter(pk=exc.pk).update(decided_at=day(1), expires_at=day(3))
    Attestation.objects.create(check_id="manual.host_os_hardened", host=host, statement="@SUM(1) hardened",
                               attested_by=operator, attested_at=day(0), valid_until=day(30))
    return {"host": host, "scans": scans, "start": day(0), "end": day(9), "exception": exc}

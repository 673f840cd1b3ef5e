"""A small API world shared by the permission matrix, the schemathesis run and the query-count
tests: a host with two evaluated scans (verdicts, a diff), a pending and an approved exception,
an attestation with a file, and one personal token per persona (plus an expired and a revoked
one). Built through the same jobs the API uses, so every row is as the product makes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from posture.jobs import exceptions as exception_jobs
from posture.jobs.evaluate import evaluate_scan
from posture.jobs.tokens import create_token, revoke_token
from posture.models import ApiToken, Attestation, ControlException, DockerHost, Report, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PRIV = "container.privileged_disabled"
MANUAL = "manual.host_os_hardened"


@dataclass
class World:
    host: DockerHost
    scans: list[ScanRun]
    pending: ControlException
    approved: ControlException
    attestation: Attestation
    #: persona -> raw token ("pst_..."); "expired" and "revoked" belong to the operator.
    tokens: dict[str, str] = field(default_factory=dict)
    token_rows: dict[str, ApiToken] = field(default_factory=dict)
    #: A report still queued (its download is a 409 until a worker renders it).
    report: Report | None = None


def build_world(personas: dict[str, User], *, name: str = "h1", scans: int = 2) -> World:
    host = DockerHost.objects.create(name=name, url="unix:///var/run/docker.sock")
    runs = []
    for _ in range(scans):
        run = stored_scan(host, SNAPSHOT)
        evaluate_scan(run)
        runs.append(run)
    now = timezone.now()
    operator, admin = personas["operator"], personas["admin"]
    pending = exception_jobs.propose(operator, check_id=PRIV, host=host, resource_pattern="rec-privileged",
                                     justification="vendor agent", expires_at=now + timedelta(days=7))
    approved = exception_jobs.propose(operator, check_id="container.pids_limited", host=host,
                                      resource_pattern="rec-*", justification="batch jobs",
                                      expires_at=now + timedelta(days=7))
    approved = exception_jobs.decide(admin, approved, approve=True)
    attestation = exception_jobs.attest(operator, check_id=MANUAL, statement="CIS Debian L1 applied", host=host,
                                        valid_until=now + timedelta(days=90),
                                        file=SimpleUploadedFile("hardening.pdf", PDF, content_type="application/pdf"))
    world = World(host=host, scans=runs, pending=pending, approved=approved, attestation=attestation)
    world.report = Report.objects.create(kind="csv", csv_kind="scans", framework="cis-docker-1.8.0",
                                         period_start=now - timedelta(days=30), period_end=now,
                                         hosts=[host.name], requested_by=personas["auditor"])
    for persona in ("admin", "operator", "auditor"):
        new = create_token(personas[persona], f"{persona} script")
        world.tokens[persona], world.token_rows[persona] = new.token, new.row
    expired = create_token(operator, "old script", expires_in_days=1)
    ApiToken.objects.filter(pk=expired.row.pk).update(expires_at=now - timedelta(hours=1))
    revoked = create_token(operator, "leaked script")
    revoke_token(operator, revoked.row)
    world.tokens |= {"expired": expired.token, "revoked": revoked.token}
    world.token_rows |= {"expired": expired.row, "revoked": revoked.row}
    return world

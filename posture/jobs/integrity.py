"""Verifying a host's evidence chain on request, and keeping the answer.

``verify_chain`` recomputes every payload digest, set digest and chain link of one host's
succeeded scans; its answer is recorded as an ``evidence.verified`` audit event (who, when,
how many scans, the head it reached, the problems), so the integrity page shows the last
verification of every host without recomputing the fleet, and the audit trail shows who
checked the evidence when. Any role may verify: it changes no evidence."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from posture import roles
from posture.jobs.ingest import verify_chain
from posture.models import AuditEvent, DockerHost
from posture.models.audit import record
from posture.queries.integrity import VERIFIED_ACTION, verification_target
from posture.queries.scans import current_scan

#: Problems kept in the audit event (the first one names the first broken scan).
KEPT_PROBLEMS = 50


def verify_host(user, host: DockerHost) -> AuditEvent:
    if not roles.can_read(user):
        raise PermissionDenied(roles.NO_ROLE)
    head = current_scan(host)  # read first: a scan finishing meanwhile is verified next time
    problems = verify_chain(host.pk)
    return record(VERIFIED_ACTION, verification_target(host), actor=user, host=host.name,
                  scans=host.scans.filter(state="succeeded").count(), head_scan=head.pk if head else None,
                  head_chain_digest=head.chain_digest if head else None,
                  problems=problems[:KEPT_PROBLEMS], problem_count=len(problems))

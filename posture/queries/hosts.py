"""Per-host posture for a list of hosts: how many controls of a framework pass and fail on
each host, its score with coverage, and how many findings fail, at any moment T.

The counts are each host's control tally of ``posture.queries.rollups.fleet_and_hosts``
(after the exceptions and attestations in force at T: the numbers the overview's per-host
scores show, and ``host_rollups``' pair tallies, without a row per control for every host) plus one GROUP BY over the failing findings
(``posture.queries.verdicts.findings``). Five queries whatever the number of hosts: a list
page asks once for the hosts it shows, never once per host. A host with no succeeded scan by
T has no summary (never a pass)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from posture.models import DockerHost
from posture.queries.groups import failing_by
from posture.queries.rollups import coverage, fleet_and_hosts, score
from posture.queries.scans import HostRef
from posture.queries.verdicts import findings

#: The framework a host list counts controls of when none is given.
DEFAULT_FRAMEWORK = "cis-docker-1.8.0"


@dataclass(frozen=True)
class HostSummary:
    """One host's controls per status (``tally``), score and coverage in ``framework``, and
    its failing findings (check x resource, after exceptions) over every check."""

    host_id: int
    framework: str
    tally: dict[str, int] = field(default_factory=dict)
    score: float | None = None
    coverage: float | None = None
    failing_findings: int = 0

    @property
    def passing(self) -> int:
        return self.tally.get("pass", 0)

    @property
    def failing(self) -> int:
        return self.tally.get("fail", 0)

    @property
    def excepted(self) -> int:
        return self.tally.get("excepted", 0)


def host_summaries(hosts: Iterable[HostRef] | QuerySet[DockerHost], at: datetime | None = None,
                   framework: str = DEFAULT_FRAMEWORK) -> dict[int, HostSummary]:
    """host id -> ``HostSummary`` of ``hosts`` in their current scans at ``at`` (default now),
    for the hosts that have one. Five queries, whatever the number of hosts."""
    hosts = hosts if isinstance(hosts, QuerySet) else [h.pk if isinstance(h, DockerHost) else int(h) for h in hosts]
    # Now (no ``at``) reads the current posture's read model, as the overview does.
    _fleet, per_host = fleet_and_hosts([framework], hosts, at)
    failing = failing_by(findings(hosts, at or timezone.now()), "host_id") if per_host else {}
    out = {}
    for host_id, tallies in per_host.items():
        tally = tallies[framework]
        out[host_id] = HostSummary(host_id, framework, dict(tally), score(tally), coverage(tally),
                                   failing.get(host_id, 0))
    return out

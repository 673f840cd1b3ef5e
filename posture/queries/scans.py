"""Current scans, now or at any moment T: the one definition used everywhere.

The current scan of a host at T is its latest *succeeded* scan with ``finished_at <= T``,
ties broken by id. Queued, running, failed and errored scans never are: a failed scan leaves
the previous posture in force, and a CLI scan that finished before a queued one started is
current even though its id is lower. Pages, the API, ``scan --json``, the hash chain's
``previous`` link and the evaluation's delta all read this module.

Fleet form: one SQL query whatever the number of hosts, one index probe per host on
``scan_host_state_finished_id`` (host, state, -finished_at, -id)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Expression, OuterRef, Q, QuerySet, Subquery

from posture.choices import FINISHED_STATES, ScanState
from posture.models import DockerHost, ScanRun

HostRef = DockerHost | int


def _host_id(host: HostRef) -> int:
    return host.pk if isinstance(host, DockerHost) else int(host)


def _succeeded(at: datetime | None) -> QuerySet[ScanRun]:
    scans = ScanRun.objects.filter(state=ScanState.SUCCEEDED)
    return scans if at is None else scans.filter(finished_at__lte=at)


def current_scan(host: HostRef, at: datetime | None = None) -> ScanRun | None:
    """The host's current scan at ``at`` (default: now), or None if it has none yet."""
    return _succeeded(at).filter(host_id=_host_id(host)).order_by("-finished_at", "-id").first()


def current_scan_id(host_ref: str | Expression = "pk", at: datetime | None = None) -> Subquery:
    """An expression for annotating hosts with their current scan's id (``host_ref`` names
    the host id in the outer query)."""
    ref = OuterRef(host_ref) if isinstance(host_ref, str) else host_ref
    return Subquery(_succeeded(at).filter(host_id=ref).order_by("-finished_at", "-id").values("id")[:1])


def current_scans(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None,
                  at: datetime | None = None) -> QuerySet[ScanRun]:
    """The current scan of every host (or of ``hosts``) at ``at``, as one query; hosts with
    no succeeded scan by then have none. Archived hosts are included: filter ``hosts``."""
    if hosts is None:
        host_rows = DockerHost.objects.all()
    elif isinstance(hosts, QuerySet):
        host_rows = hosts
    else:
        host_rows = DockerHost.objects.filter(pk__in=[_host_id(h) for h in hosts])
    ids = host_rows.order_by().annotate(current_id=current_scan_id("pk", at)).values("current_id")
    return ScanRun.objects.filter(pk__in=ids)


def previous_scan(scan: ScanRun) -> ScanRun | None:
    """The host's current scan just before ``scan`` (the one ``scan`` replaced as current):
    its latest succeeded scan ordered before it by (finished_at, id)."""
    return (
        ScanRun.objects.filter(host_id=scan.host_id, state=ScanState.SUCCEEDED)
        .filter(Q(finished_at__lt=scan.finished_at) | Q(finished_at=scan.finished_at, id__lt=scan.pk))
        .order_by("-finished_at", "-id")
        .first()
    )


def last_finished_scan_id(host_ref: str | Expression = "pk", at: datetime | None = None) -> Subquery:
    """An expression for annotating hosts with their latest *finished* scan's id at ``at``
    (succeeded, failed or errored, by finish time then id): the scan that says whether the
    host's last attempt worked, which the current scan (succeeded only) never does."""
    ref = OuterRef(host_ref) if isinstance(host_ref, str) else host_ref
    scans = ScanRun.objects.filter(host_id=ref, state__in=FINISHED_STATES)
    if at is not None:
        scans = scans.filter(finished_at__lte=at)
    return Subquery(scans.order_by("-finished_at", "-id").values("id")[:1])


def recent_scans(at: datetime | None = None, limit: int = 10) -> QuerySet[ScanRun]:
    """The ``limit`` scans queued last by ``at`` (default: now), newest first, with their
    host; logs and warnings deferred (a list never shows them). One query."""
    scans = ScanRun.objects.select_related("host").defer("log", "warnings")
    if at is not None:
        scans = scans.filter(queued_at__lte=at)
    return scans.order_by("-queued_at", "-id")[:limit]

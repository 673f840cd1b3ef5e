"""Rows over an audit period that no page lists yet: exceptions and attestations in force at
some moment of the period, the scans finished in it (the population an auditor samples
from), the evidence index of those scans, and each host's chain head at the period's end.

Each answer is one lazy ``values_list`` queryset ordered by a unique key, so an export
iterates it with a server-side cursor (``.iterator(chunk_size=...)``) in constant memory."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet

from posture.choices import ScanState
from posture.models import Attestation, ControlException, ScanRun
from posture.models.exceptions import ExceptionState
from posture.queries.history import Hosts, Period, clip_period, host_filter
from posture.queries.scans import current_scans


def _for_hosts(hosts: Hosts) -> Q:
    """Exceptions/attestations for one of ``hosts`` or for every host."""
    return Q() if hosts is None else Q(host__isnull=True) | host_filter(hosts)


def exceptions_during(period: Period, hosts: Hosts = None) -> QuerySet:
    """Approved exceptions in force at some moment of the period (a revoked one until its
    revocation), for the hosts or every host; ordered by id."""
    start, end = clip_period(period)
    return (ControlException.objects
            .filter(state__in=[ExceptionState.APPROVED, ExceptionState.REVOKED], decided_at__isnull=False,
                    decided_at__lt=end, expires_at__gt=start)
            .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=start))
            .filter(_for_hosts(hosts)).order_by("pk"))


def attestations_during(period: Period, hosts: Hosts = None) -> QuerySet:
    """Attestations valid at some moment of the period, for the hosts or every host."""
    start, end = clip_period(period)
    return (Attestation.objects.filter(attested_at__lt=end, valid_until__gt=start)
            .filter(_for_hosts(hosts)).order_by("pk"))


def scans_during(period: Period, hosts: Hosts = None) -> QuerySet[ScanRun]:
    """Every scan of the hosts that finished in the period (any final state), or was queued
    in it and has not finished: the population for sampling. Ordered by id."""
    start, end = clip_period(period)
    return (ScanRun.objects.filter(host_filter(hosts))
            .filter(Q(finished_at__gte=start, finished_at__lt=end)
                    | Q(finished_at__isnull=True, queued_at__gte=start, queued_at__lt=end))
            .order_by("pk"))


def evidence_index(period: Period, hosts: Hosts = None) -> QuerySet:
    """(scan id, host name, finished at, kind, key, payload sha256) of every evidence item of
    the succeeded scans in the period, ordered by scan, kind and key."""
    return (scans_during(period, hosts).filter(state=ScanState.SUCCEEDED, evidence_set__isnull=False)
            .order_by("pk", "evidence_set__items__kind", "evidence_set__items__key")
            .values_list("pk", "host__name", "finished_at", "evidence_set__items__kind",
                         "evidence_set__items__key", "evidence_set__items__evidence__digest"))


def chain_heads(at: datetime, hosts: list[int] | None = None) -> dict[str, dict]:
    """Host name -> its current scan at ``at`` (posture.queries.scans.current_scans: id,
    finished at, chain digest): the chain head a package records, so it can later be checked
    against the database. Hosts without a succeeded scan by then are absent."""
    rows = (current_scans(hosts, at).order_by("host__name")
            .values_list("host__name", "pk", "finished_at", "chain_digest"))
    return {name: {"scan": pk, "finished_at": finished_at.isoformat(), "chain_digest": digest}
            for name, pk, finished_at, digest in rows}

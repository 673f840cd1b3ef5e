"""What beat does: enqueue scans of due hosts, and re-send scans whose message was lost."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from posture.choices import ScanState, Trigger
from posture.models import DockerHost, ScanRun


def enqueue_due_scans(now: datetime | None = None) -> list[int]:
    """Create a scan for every enabled host whose next_scan_at has come; return their ids.

    Each host row is locked (SKIP LOCKED) and its next_scan_at moved forward in the same
    transaction, so two beats never enqueue the same host twice."""
    now = now or timezone.now()
    created: list[int] = []
    due = DockerHost.objects.filter(enabled=True).filter(Q(next_scan_at__isnull=True) | Q(next_scan_at__lte=now))
    for host_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            host = (
                DockerHost.objects.select_for_update(skip_locked=True)
                .filter(pk=host_id, enabled=True)
                .filter(Q(next_scan_at__isnull=True) | Q(next_scan_at__lte=now))
                .first()
            )
            if host is None:
                continue
            host.next_scan_at = now + timedelta(minutes=host.scan_interval_minutes)
            host.save(update_fields=["next_scan_at"])
            if not host.scans.filter(state__in=[ScanState.QUEUED, ScanState.RUNNING]).exists():
                created.append(ScanRun.objects.create(host=host, trigger=Trigger.SCHEDULE).pk)
    return created


def stale_scans(now: datetime | None = None) -> list[int]:
    """Scans whose worker vanished (running, heartbeat past the lease) or whose message was
    lost (queued for longer than the broker's visibility timeout, after which the broker
    itself would have redelivered it). Re-sending them is always safe: claims are fenced."""
    now = now or timezone.now()
    lease = timedelta(seconds=settings.POSTURE_SCAN_LEASE)
    queued_grace = timedelta(seconds=settings.POSTURE_BROKER_VISIBILITY_TIMEOUT) + lease
    return list(
        ScanRun.objects.filter(
            Q(state=ScanState.RUNNING, heartbeat_at__lt=now - lease)
            | Q(state=ScanState.QUEUED, queued_at__lt=now - queued_grace)
        ).values_list("pk", flat=True)
    )

"""Celery entry points: thin, id-only arguments, named posture.<verb>_<noun>."""

from __future__ import annotations

import os

from celery import shared_task
from django.db import transaction

from posture.jobs import scans, schedule


def worker_name(task) -> str:
    return f"{task.request.hostname or 'local'}:{os.getpid()}"


@shared_task(name="posture.run_scan", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_scan(self, scan_id: int) -> str:
    """Run one scan. Redelivery-safe: see posture.jobs.scans."""
    result = scans.execute_scan(scan_id, worker=worker_name(self))
    if result.outcome is scans.Outcome.BUSY:
        raise self.retry(countdown=result.retry_after)
    return result.outcome.value


def send_scan(scan_id: int) -> None:
    """Queue the task once the row that names it is committed."""
    transaction.on_commit(lambda: run_scan.delay(scan_id))


@shared_task(name="posture.enqueue_due_scans")
def enqueue_due_scans() -> int:
    ids = schedule.enqueue_due_scans()
    for scan_id in ids:
        run_scan.delay(scan_id)
    return len(ids)


@shared_task(name="posture.recover_stale_scans")
def recover_stale_scans() -> int:
    ids = schedule.stale_scans()
    for scan_id in ids:
        run_scan.delay(scan_id)
    return len(ids)

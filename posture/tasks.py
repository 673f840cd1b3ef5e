"""Celery entry points: thin, id-only arguments, named posture.<verb>_<noun>."""

from __future__ import annotations

import os

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction

from posture.jobs import scans, schedule


def worker_name(task) -> str:
    return f"{task.request.hostname or 'local'}:{os.getpid()}"


class WorkerTimeLimits(Task):
    """A task whose time limits are the worker's, never the sender's.

    Celery copies the *sending* process's ``time_limit``/``soft_time_limit`` into every
    message, and a worker obeys the message over its own configuration. The web process, beat
    or a shell that queues a scan may run with another ``POSTURE_SCAN_TIMEOUT`` (often the
    default 900 s) than the worker, so a worker started with 20 s got limits of 960/1020 s and
    they "never fired". Sending ``None`` lets the worker apply its own (see posture.celery).
    """

    abstract = True

    def apply_async(self, args=None, kwargs=None, task_id=None, producer=None, link=None, link_error=None,
                    shadow=None, **options):
        options.setdefault("time_limit", None)
        options.setdefault("soft_time_limit", None)
        return super().apply_async(args, kwargs, task_id, producer, link, link_error, shadow, **options)


@shared_task(name="posture.run_scan", base=WorkerTimeLimits, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=None)
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


@shared_task(name="posture.recover_stale_reports")
def recover_stale_reports() -> int:
    """Mark failed the reports whose worker died while rendering them (posture.jobs.reports)."""
    from posture.jobs import reports

    return len(reports.recover_stale_reports())


@shared_task(name="posture.render_report", base=WorkerTimeLimits, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=settings.POSTURE_REPORT_TIMEOUT, time_limit=settings.POSTURE_REPORT_TIMEOUT + 60)
def render_report(report_id: int) -> str:
    """Render one queued report (posture.jobs.reports); a second delivery finds it taken.

    Its time limits are ``POSTURE_REPORT_TIMEOUT`` (soft; hard 60 s later), not the scan
    timeout the worker's defaults derive from: a year's PDF or package of a fleet is not a
    scan. They are read when the *worker* imports this module (WorkerTimeLimits sends none),
    so the worker's setting applies. A report stopped by them is marked failed with the
    reason (SoftTimeLimitExceeded is an Exception, caught by the job)."""
    from posture.jobs import reports

    return str(reports.render_report(report_id))


def send_report(report_id: int) -> None:
    """Queue the rendering once the report's row is committed."""
    transaction.on_commit(lambda: render_report.delay(report_id))

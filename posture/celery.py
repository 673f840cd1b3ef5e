"""The Celery app: broker choice, delivery guarantees and the beat schedule.

Delivery choices, and why:
- ``acks_late`` + ``reject_on_worker_lost``: a scan message is acknowledged only after the
  task returns, so a worker killed mid-scan leaves the message to be redelivered.
- Redelivery can never double a scan: every run is a ``ScanRun`` row claimed with a
  conditional UPDATE and fenced by its attempt number (see ``posture.jobs.scans``). A
  redelivered message for a scan that another live worker holds retries later; one for a
  finished scan does nothing.
- ``visibility_timeout`` (Redis) is how long an unacknowledged message waits before it is
  handed to another worker; it defaults to more than a scan's time limit. A message that a
  live worker still holds may be redelivered after it anyway: the claim makes that harmless.
- ``worker_prefetch_multiplier=1``: each pool process holds one scan at a time, and the
  prefork pool's default "fair" scheduling gives a queued scan to an idle process, so with
  ``--concurrency`` >= 2 a slow host never parks other hosts' scans behind it. A slow host
  holds one process for at most ``POSTURE_SCAN_TIMEOUT``: the scan's deadline bounds every
  Docker call, whatever the host sends (``scanners.limits``).
- Time limits (soft = scan timeout + 60 s, hard = + 120 s) are a backstop behind that
  deadline (a stuck database, a bug). They are the *worker's*: Celery would otherwise take
  them from the message, i.e. from whichever process queued the scan and its own
  ``POSTURE_SCAN_TIMEOUT`` (see ``posture.tasks.WorkerTimeLimits``). They need the prefork
  pool (the default): solo and threads pools ignore them; the soft limit is SIGUSR1 to the
  pool process, which interrupts even a blocking ``recv``.
- Reports (``posture.render_report``) carry their own limits, ``POSTURE_REPORT_TIMEOUT``
  (see posture.tasks): a fleet's year of PDF or package is not bounded by a scan's timeout.
- With no broker configured the app uses kombu's filesystem transport under ``var/broker``:
  the embedded default needs no Redis.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")

app = Celery("posture")
app.config_from_object("django.conf:settings", namespace="CELERY")


def configure(app: Celery) -> None:
    from django.conf import settings

    visibility = settings.POSTURE_BROKER_VISIBILITY_TIMEOUT
    options: dict = {
        "visibility_timeout": visibility,
        # Sweep for abandoned (unacknowledged, past visibility) messages every few seconds on
        # every worker, instead of kombu's default of ~100 s (10 s x throttle 10).
        "unacked_restore_interval": max(1, min(10, visibility // 4)),
        "unacked_restore_throttle": 1,
    }
    if settings.EMBEDDED_BROKER:
        folder = settings.VAR_DIR / "broker"
        for sub in ("out", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folder / "out"),
            "data_folder_out": str(folder / "out"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),  # kombu's default is ./control, wherever the worker runs
            "store_processed": False,
        }
    app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.POSTURE_SCAN_TIMEOUT + 60,
        task_time_limit=settings.POSTURE_SCAN_TIMEOUT + 120,
        beat_schedule_filename=str(settings.VAR_DIR / "celerybeat-schedule"),
        beat_schedule={
            "enqueue-due-scans": {"task": "posture.enqueue_due_scans", "schedule": settings.POSTURE_BEAT_SECONDS},
            "recover-stale-scans": {"task": "posture.recover_stale_scans", "schedule": 60.0},
            "recover-stale-reports": {"task": "posture.recover_stale_reports", "schedule": 60.0},
        },
    )


configure(app)
app.autodiscover_tasks(["posture"])

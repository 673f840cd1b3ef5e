"""What a queued scan message carries: the worker, not the sender, decides its time limits."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish

from posture.tasks import render_report, run_scan

pytestmark = pytest.mark.redis


def published_limits(task) -> list[tuple]:
    """The ``timelimit`` header of each message ``task.delay(12345)`` publishes."""
    seen: list[dict] = []

    def capture(sender=None, headers=None, **_):
        if sender == task.name:
            seen.append(headers)

    before_task_publish.connect(capture, weak=False)
    try:
        task.delay(12345)
    finally:
        before_task_publish.disconnect(capture)
    return [tuple(h["timelimit"]) for h in seen]


def test_it_leaves_time_limits_to_the_worker(celery_env, settings):
    """Celery copies the sender's limits into the message and the worker obeys them: a web
    process on the default POSTURE_SCAN_TIMEOUT made a worker on 20 s wait 960 s."""
    assert published_limits(run_scan) == [(None, None)]
    # The worker's own configuration still has them (applied when the message has none).
    assert run_scan.soft_time_limit == settings.POSTURE_SCAN_TIMEOUT + 60
    assert run_scan.time_limit == settings.POSTURE_SCAN_TIMEOUT + 120


def test_it_gives_reports_their_own_time_limit_not_the_scans(celery_env, settings):
    """A fleet's year of PDF or package is not a scan: posture.render_report runs under
    POSTURE_REPORT_TIMEOUT (read by the worker), and its message carries no limits either."""
    assert published_limits(render_report) == [(None, None)]
    assert render_report.soft_time_limit == settings.POSTURE_REPORT_TIMEOUT
    assert render_report.time_limit == settings.POSTURE_REPORT_TIMEOUT + 60
    assert render_report.soft_time_limit != run_scan.soft_time_limit

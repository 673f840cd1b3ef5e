"""What a queued scan message carries: the worker, not the sender, decides its time limits."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish

from posture.tasks import render_report, run_scan

pytestmark = pytest.mark.redis


def test_it_leaves_time_limits_to_the_worker(celery_env, settings):
    """Celery copies the sender's limits into the message and the worker obeys them: a web
    process on the default POSTURE_SCAN_TIMEOUT made a worker on 20 s wait 960 s."""
    seen: list[dict] = []

    def capture(sender=None, headers=None, **_):
        if sender == "posture.run_scan":
            seen.append(headers)

    before_task_publish.connect(capture, weak=False)
    try:
        run_scan.delay(12345)
    finally:
        before_task_publish.disconnect(capture)
    assert len(seen) == 1
    assert tuple(seen[0]["timelimit"]) == (None, None)
    # The worker's own configuration still has them (applied when the message has none).
    assert run_scan.soft_time_limit == settings.POSTURE_SCAN_TIMEOUT + 60
    assert run_scan.time_limit == settings.POSTURE_SCAN_TIMEOUT + 120


def test_it_gives_reports_their_own_time_limit_not_the_scans(celery_env, settings):
    """A fleet's year of PDF or package is not a scan: posture.render_report runs under
    POSTURE_REPORT_TIMEOUT (read by the worker), and its message carries no limits either."""
    seen: list[dict] = []

    def capture(sender=None, headers=None, **_):
        if sender == "posture.render_report":
            seen.append(headers)

    before_task_publish.connect(capture, weak=False)
    try:
        render_report.delay(12345)
    finally:
        before_task_publish.disconnect(capture)
    assert [tuple(h["timelimit"]) for h in seen] == [(None, None)]
    assert render_report.soft_time_limit == settings.POSTURE_REPORT_TIMEOUT
    assert render_report.time_limit == settings.POSTURE_REPORT_TIMEOUT + 60
    assert render_report.soft_time_limit != run_scan.soft_time_limit

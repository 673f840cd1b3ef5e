"""A scan's log: every progress line while it runs and when it fails (that is when an operator
reads them), only the milestones once it succeeded, so a year of daily scans does not keep 30
progress lines each. Counts, warnings, evidence and verdicts never depend on the log."""

from __future__ import annotations

import re

import pytest

from posture.choices import ScanState
from posture.jobs import scans
from posture.models import DockerHost, ScanRun
from scanners.collectors._common import inspect_all
from tests.posture.conftest import SNAPSHOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def running():
    host = DockerHost.objects.create(name="h1", url="unix:///h1.sock")
    scan = ScanRun.objects.create(host=host)
    return scans.claim(scan.pk, "w1").scan


def progress_of_a_scan(scan: ScanRun, images: int = 20, containers: int = 50) -> scans.Heartbeat:
    """The heartbeat's lines after collecting a host this size (the collectors' own messages)."""
    hb = scans.Heartbeat(scan)
    hb.progress(f"attempt 1 on w1: connecting to {scan.host.url}")
    inspect_all([f"i{n}" for n in range(images)], lambda _i: {}, kind="image", deadline=None, progress=hb.progress)
    inspect_all([f"c{n}" for n in range(containers)], lambda _c: {}, kind="container", deadline=None,
                progress=hb.progress)
    hb.progress(f"collected {images} images, {containers} containers; storing")
    return hb


def messages(lines: list[str]) -> list[str]:
    return [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in lines]


def test_it_keeps_the_milestones_of_a_succeeded_scan(running):
    hb = progress_of_a_scan(running)
    assert len(hb.lines) == 24
    assert scans._store_success(running, SNAPSHOT, hb.lines)
    scan = ScanRun.objects.get(pk=running.pk)
    assert scan.state == ScanState.SUCCEEDED
    assert messages(scan.log) == ["attempt 1 on w1: connecting to unix:///h1.sock", "inspecting images 20/20",
                                  "inspecting containers 50/50", "collected 20 images, 50 containers; storing"]
    assert [line[:8] for line in scan.log] == [line[:8] for line in (hb.lines[0], hb.lines[11], hb.lines[22],
                                                                    hb.lines[23])]  # when each phase ended
    assert scan.counts["containers"] == len(SNAPSHOT["containers"]) and scan.evidence_set_id


def test_it_keeps_every_line_of_a_failed_scan(running):
    hb = progress_of_a_scan(running)
    hb.lines.append("12:00:00 failed: connection reset")
    assert scans._finish(running, ScanState.FAILED, error="connection reset", lines=hb.lines)
    assert ScanRun.objects.get(pk=running.pk).log == hb.lines[-scans.LOG_LINES:]


def test_it_keeps_a_line_that_only_looks_like_a_counter_when_it_is_not_one():
    lines = ["10:00:00 inspecting containers 0/0", "10:00:01 probe: reading host files",
             "10:00:02 inspecting containers 3/7 ", "10:00:03 collected 0 images, 0 containers; storing"]
    assert scans.kept_log(lines) == lines

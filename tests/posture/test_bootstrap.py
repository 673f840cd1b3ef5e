"""manage.py bootstrap (run by bin/run at every start) queues a first scan only for hosts that
have never been scanned: a restart must not rescan the whole fleet."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db


def test_it_queues_a_first_scan_only_for_hosts_never_scanned(admin):
    scanned = DockerHost.objects.create(name="scanned", url="tcp://127.0.0.1:2376")
    stored_scan(scanned, SNAPSHOT)
    failed_once = DockerHost.objects.create(name="failed-once", url="tcp://127.0.0.1:2377")
    ScanRun.objects.create(host=failed_once, state=ScanState.FAILED, error="connection refused")
    new = DockerHost.objects.create(name="new", url="tcp://127.0.0.1:2378")
    out = StringIO()
    call_command("bootstrap", stdout=out)
    assert list(ScanRun.objects.filter(state=ScanState.QUEUED).values_list("host__name", flat=True)) == ["new"]
    assert ScanRun.objects.filter(host=scanned).count() == 1 and ScanRun.objects.filter(host=failed_once).count() == 1
    assert "first scan of new" in out.getvalue() and "first scan of scanned" not in out.getvalue()
    call_command("bootstrap", stdout=StringIO())  # a second start queues nothing more
    assert ScanRun.objects.filter(host=new).count() == 1


def test_it_skips_archived_hosts():
    archived = DockerHost.objects.create(name="gone", url="tcp://127.0.0.1:2379")
    from posture.jobs.hosts import archive_host

    archive_host(archived, actor_label="test")
    call_command("bootstrap", stdout=StringIO())
    assert not ScanRun.objects.filter(host=archived).exists()

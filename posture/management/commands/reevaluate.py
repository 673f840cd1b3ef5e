"""manage.py reevaluate [--scan N | --host NAME | --all]: re-score stored evidence.

Adds a new evaluation per scan and keeps the old ones (only the newest is current), then
rebuilds the failure windows and daily posture rows of every host it touched."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from posture.choices import ScanState
from posture.jobs.evaluate import evaluate_scan
from posture.jobs.history import rebuild_history
from posture.models import ScanRun


class Command(BaseCommand):
    help = "Re-score stored evidence with the current checks, keeping earlier results."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--scan", type=int, metavar="N")
        which.add_argument("--host", metavar="NAME")
        which.add_argument("--all", action="store_true")

    def handle(self, *args, scan=None, host=None, all=False, **opts):
        scans = ScanRun.objects.filter(state=ScanState.SUCCEEDED).order_by("host_id", "finished_at", "id")
        if scan is not None:
            scans = scans.filter(pk=scan)
            if not scans.exists():
                raise CommandError(f"no succeeded scan #{scan}")
        elif host:
            scans = scans.filter(host__name=host)
            if not scans.exists():
                raise CommandError(f"no succeeded scan of a host named {host!r}")
        total = scans.count()
        t0 = time.monotonic()
        changed = 0
        hosts: list[int] = []
        for i, s in enumerate(scans.iterator(chunk_size=200), 1):
            before = s.evaluations.filter(current=True).values_list("result_set_id", flat=True).first()
            evaluation = evaluate_scan(s, history=False)
            changed += before != evaluation.result_set_id
            if not hosts or hosts[-1] != s.host_id:
                hosts.append(s.host_id)
            if i % 100 == 0 or i == total:
                self.stdout.write(f"  {i}/{total} scans re-scored ({time.monotonic() - t0:.1f}s)")
        self.stdout.write(f"re-evaluated {total} scans; {changed} got different results")
        # Failure windows and daily rows follow the new verdicts: rebuilt once per host.
        windows = days = 0
        for host_id in hosts:
            w, d = rebuild_history(host_id)
            windows, days = windows + w, days + d
        self.stdout.write(f"rebuilt the history of {len(hosts)} hosts: {windows} failure windows, {days} days "
                          f"({time.monotonic() - t0:.1f}s)")

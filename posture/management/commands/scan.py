"""manage.py scan NAME [--json]: run one scan now, in this process, without a broker.

Exit status: 0 the scan succeeded; 1 it failed or errored (the reason is on stderr and in
the stored scan); 75 (EX_TEMPFAIL) another scan of the host is running, so this one did not
run and nothing was recorded: try again later."""

from __future__ import annotations

import json
import os
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from posture.choices import ScanState
from posture.jobs import scans
from posture.jobs.hosts import host_named
from posture.jobs.rollup import scan_results
from posture.models import DockerHost, ScanRun

#: sysexits.h EX_TEMPFAIL: the host is busy with another scan; retrying later will work.
EXIT_BUSY = 75


def scan_json(scan: ScanRun, results: list | None = None) -> dict:
    """The --json document (also the shape the API returns for a scan)."""
    counts = scan.counts or {}
    return {
        "scan": scan.pk,
        "host": scan.host.name,
        "state": scan.state,
        "error": scan.error or None,
        "started_at": scan.started_at.isoformat() if scan.started_at else None,
        "finished_at": scan.finished_at.isoformat() if scan.finished_at else None,
        "manifest_digest": scan.evidence_set.digest if scan.evidence_set_id else None,
        "chain_digest": scan.chain_digest or None,
        "evidence": {
            "images": counts.get("images", 0),
            "containers": counts.get("containers", 0),
            "running": counts.get("running", 0),
            "host_probe": counts.get("host_probe", False),
            "new_payloads": counts.get("new_payloads", 0),
        },
        "warnings": scan.warnings,
        # Filled by the controls engine (check x resource verdicts).
        "results": results if results is not None else [],
    }


class Command(BaseCommand):
    help = (
        "Scan one registered host now (synchronously, no broker needed). Exit 0 on success, 1 when the scan "
        "failed, 75 when another scan of the host is running; -v 2 shows progress."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="print the scan as JSON")

    def handle(self, *args, name, json: bool = False, **opts):
        host = host_named(name)
        if host is None:
            known = ", ".join(DockerHost.objects.filter(archived_at__isnull=True).values_list("name", flat=True))
            raise CommandError(f"no host named {name[:100]!r} (known: {known or 'none registered'}); "
                               "add one with: manage.py addhost NAME URL")
        if host.archived:
            raise CommandError(f"host {host.name!r} is archived (its history is kept); unarchive it to scan it")
        t0 = time.monotonic()
        echo = (lambda line: self.stderr.write(f"  {line}")) if opts.get("verbosity", 1) >= 2 else None
        result = scans.scan_now(host, worker=f"cli:{os.getpid()}", echo=echo)
        if result.outcome is scans.Outcome.BUSY:
            # Not a scan of the host, and not its failure: nothing was recorded.
            which = f" (scan #{result.scan.pk})" if result.scan is not None else ""
            self.stderr.write(f"host {host.name} is already being scanned{which}; try again when it has finished")
            sys.exit(EXIT_BUSY)
        if result.outcome is scans.Outcome.LOST:
            self.stderr.write(f"scan #{result.scan.pk} of {host.name} was taken over by another worker, which finishes it")
            sys.exit(EXIT_BUSY)
        if result.scan is None:
            raise CommandError(f"the scan of {host.name} disappeared while it ran (was the host deleted?)")
        scan = result.scan
        scan.refresh_from_db()
        self.report(scan, json, time.monotonic() - t0)
        if scan.state != ScanState.SUCCEEDED:
            sys.exit(1)

    def report(self, scan: ScanRun, as_json: bool, elapsed: float) -> None:
        if as_json:
            self.stdout.write(_dumps(scan_json(scan, scan_results(scan))))
            return
        if scan.state == ScanState.SUCCEEDED:
            c = scan.counts
            self.stdout.write(
                f"scan #{scan.pk} of {scan.host.name} succeeded in {elapsed:.1f}s: {c.get('images', 0)} images, "
                f"{c.get('containers', 0)} containers ({c.get('running', 0)} running)"
                f"{', host probe' if c.get('host_probe') else ''}; {c.get('new_payloads', 0)} new evidence documents"
            )
            evaluation = scan.evaluations.filter(current=True).first()
            if evaluation:
                counts = evaluation.result_set.counts
                self.stdout.write(
                    "  results: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("pass", "fail", "manual", "not_assessed", "not_applicable", "error"))
                    + f"; since the previous scan: {evaluation.new_failures} new failures, {evaluation.fixed} fixed"
                )
            for w in scan.warnings:
                self.stdout.write(f"  warning: {w['resource_type']} {w['resource']}: {w['message']}")
        else:
            self.stderr.write(f"scan #{scan.pk} of {scan.host.name} {scan.state}: {scan.error}")


def _dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)

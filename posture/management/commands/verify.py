"""manage.py verify: is the stored history intact?

    manage.py verify                  every host's evidence chain and verdicts, every report file
    manage.py verify --host NAME      one host (reports are skipped)
    manage.py verify --export FILE    an evidence package: its files against its manifest and
                                      SHA256SUMS, its chain heads against this database

One line per finding, naming what was tampered with; exit 0 when intact, 1 when something
is not, 2 on a usage error (unknown host, unreadable file)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from posture.jobs.hosts import host_named
from posture.jobs.integrity import verify_host, verify_reports
from posture.models import DockerHost
from posture.reports.package import verify_package


class Command(BaseCommand):
    help = "Verify evidence chains, verdicts and report files (or an exported package); exit 1 if tampered."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="one host by name (default: every host and report)")
        parser.add_argument("--export", default=None, metavar="FILE", help="check an evidence package (zip)")

    def handle(self, *args, host=None, export=None, **opts):
        if export:
            sys.exit(self.check_package(export))
        hosts = DockerHost.objects.order_by("name")
        if host:
            one = host_named(host)
            if one is None:
                raise CommandError(f"no host named {host[:100]!r}")
            hosts = hosts.filter(pk=one.pk)
        broken = 0
        for row in hosts:
            result = verify_host(row)
            if result.ok:
                self.stdout.write(f"{row.name}: {result.scans} scans intact")
                continue
            broken += 1
            self.stderr.write(f"{row.name}: {len(result.problems)} problem(s) in {result.scans} scans")
            for problem in result.problems:
                self.stderr.write(f"  {row.name}: {problem}")
        if not host:
            reports = bad = 0
            for _report, problem in verify_reports():
                reports += 1
                if problem:
                    bad += 1
                    self.stderr.write(problem)
            broken += bad
            self.stdout.write(f"reports: {reports - bad} of {reports} intact")
        if broken:
            sys.exit(1)

    def check_package(self, path: str) -> int:
        try:
            handle = open(path, "rb")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
        with handle:
            result = verify_package(handle)
        if result.ok:
            self.stdout.write(f"{path}: intact ({result.files} files, {result.hosts} chain heads match the database)")
            return 0
        for problem in result.problems:
            self.stderr.write(f"{path}: {problem}")
        return 1

"""manage.py verify_chain [NAME]: recompute evidence digests and the scan hash chain."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from posture.jobs.hosts import host_named
from posture.jobs.ingest import verify_chain
from posture.models import DockerHost


class Command(BaseCommand):
    help = "Verify that stored evidence and the chain of succeeded scans are intact (exit 1 if not)."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="one host (default: all)")

    def handle(self, *args, name=None, **opts):
        hosts = DockerHost.objects.all()
        if name:
            host = host_named(name)
            if host is None:
                raise CommandError(f"no host named {name[:100]!r}")
            hosts = hosts.filter(pk=host.pk)
        broken = 0
        for host in hosts:
            problems = verify_chain(host.pk)
            scans = host.scans.filter(state="succeeded").count()
            if problems:
                broken += 1
                self.stderr.write(f"{host.name}: {len(problems)} problem(s) in {scans} scans")
                for p in problems:
                    self.stderr.write(f"  {p}")
            else:
                self.stdout.write(f"{host.name}: {scans} scans intact")
        if broken:
            sys.exit(1)

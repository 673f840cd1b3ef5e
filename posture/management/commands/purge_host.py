"""manage.py purge_host NAME [--confirm]: the retention action, for whoever runs the server.

Ordinary actions never delete history (the API's DELETE and the admin archive a host). A
real purge needs shell access to the deployment, an archived host, and ``--confirm``;
without it the command only says what would go. It is audited as ``host.purged``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from posture.jobs.hosts import PurgeRefused, host_named, purge_host


class Command(BaseCommand):
    help = "Delete an archived host with its scans and unshared evidence (retention; audited)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--confirm", action="store_true", help="really delete (otherwise only report)")

    def handle(self, *args, name: str, confirm: bool, **opts):
        host = host_named(name)
        if host is None:
            raise CommandError(f"no host named {name[:100]!r}")
        if not host.archived:
            raise CommandError(f"host {host.name!r} is not archived; archive it first, then purge")
        if not confirm:
            self.stdout.write(f"would delete host {host.name} and its {host.scans.count()} scans with the evidence "
                              "no other scan shares; re-run with --confirm to do it")
            return
        try:
            counts = purge_host(host, actor_label="cli")
        except PurgeRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"purged host {name}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))

"""manage.py bootstrap: first-run set-up used by bin/run (idempotent).

Creates the admin user when there is none (printing its one-time password), registers the
local Docker daemon when its socket answers, and queues a first scan of every enabled host
that has never been scanned (bin/run calls it at every start: hosts with a history are left
to their schedule)."""

from __future__ import annotations

import os
import secrets
import socket
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from posture.choices import Trigger
from posture.jobs.hosts import save_host
from posture.models import DockerHost
from posture.models.audit import record


def local_docker_url() -> str | None:
    """DOCKER_HOST when it is a unix socket, else /var/run/docker.sock, if something listens."""
    candidates = [os.environ.get("DOCKER_HOST", ""), "unix:///var/run/docker.sock"]
    for url in candidates:
        if not url.startswith("unix://"):
            continue
        path = urlsplit(url).path
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(path)
            return url
        except OSError:
            continue
    return None


class Command(BaseCommand):
    help = "First-run set-up: admin user, local Docker host, first scans."

    def add_arguments(self, parser):
        parser.add_argument("--no-scan", action="store_true", help="do not queue first scans")

    def handle(self, *args, no_scan: bool = False, **opts):
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            record("user.created", "admin", actor_label="bootstrap")
            self.stdout.write(self.style.SUCCESS(f"created user admin with one-time password: {password}"))
            self.stdout.write("  (change it after logging in; it is not shown again)")
        url = local_docker_url()
        if url and not DockerHost.objects.filter(url=url).exists():
            name = "local" if not DockerHost.objects.filter(name="local").exists() else f"local-{secrets.token_hex(2)}"
            save_host(None, {"name": name, "url": url}, actor_label="bootstrap")
            self.stdout.write(f"registered the local Docker daemon as host {name!r} ({url})")
        elif not url:
            self.stdout.write("no local Docker socket answered; add hosts with: manage.py addhost NAME URL")
        if no_scan:
            return
        from posture.jobs.scans import ScanRefused, queue_scan

        # Only hosts that have never been scanned: a restart leaves hosts with a history to
        # their schedule. A first scan moves next_scan_at like any request, so beat does not
        # queue a second one when this one ends quickly.
        for host in DockerHost.objects.filter(enabled=True, archived_at__isnull=True, scans__isnull=True).distinct():
            try:
                scan, created = queue_scan(host, Trigger.SCHEDULE, actor_label="bootstrap")
            except ScanRefused as exc:  # archived or deleted since the query
                self.stdout.write(f"first scan of {host.name}: not queued ({exc})")
                continue
            self.stdout.write(f"first scan of {host.name}: scan #{scan.pk} ({'queued' if created else scan.state})")

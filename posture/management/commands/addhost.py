"""manage.py addhost NAME URL: register a Docker host, or update the one with that name.

Validation and the audit event are `posture.jobs.hosts.save_host`'s, shared with the API and
the admin: a bad value is a one-line error, exit status 1, and nothing written."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from posture.jobs.hosts import INTERVAL_MAX_MINUTES, INTERVAL_MIN_MINUTES, host_named, save_host


def read_pem(path: str, role: str) -> str:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read the TLS {role} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"the TLS {role} file {path} is not PEM text") from None
    if "-----BEGIN " not in text:
        raise CommandError(f"the TLS {role} file {path} is not PEM (no '-----BEGIN' line)")
    return text


class Command(BaseCommand):
    help = "Register a Docker host (unix://, tcp:// with TLS, ssh://) or update an existing one."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("url", help="unix:///var/run/docker.sock, tcp://host:2376, ssh://user@host")
        parser.add_argument("--tls-ca", help="CA certificate (PEM) that signed the daemon's certificate")
        parser.add_argument("--tls-cert", help="client certificate (PEM)")
        parser.add_argument("--tls-key", help="client key (PEM); stored encrypted")
        probe = parser.add_mutually_exclusive_group()
        probe.add_argument("--probe", dest="probe", action="store_true", default=None, help="enable the read-only host probe")
        probe.add_argument("--no-probe", dest="probe", action="store_false", help="disable the host probe")
        parser.add_argument("--interval", type=int, metavar="MINUTES",
                            help=f"minutes between scheduled scans, {INTERVAL_MIN_MINUTES} to {INTERVAL_MAX_MINUTES} (one year)")
        parser.add_argument("--disable", action="store_true", help="keep the host but stop scheduling scans")

    def handle(self, *args, name, url, tls_ca, tls_cert, tls_key, probe, interval, disable, **opts):
        changes = {"name": name, "url": url, "enabled": not disable}
        given = {k: v for k, v in {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}.items() if v}
        changes.update({field: read_pem(path, field.removeprefix("tls_")) for field, path in given.items()})
        if probe is not None:
            changes["probe_enabled"] = probe
        if interval is not None:
            changes["scan_interval_minutes"] = interval
        existing = host_named(name)
        try:
            host = save_host(existing, changes, actor_label="cli")
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        created = existing is None
        verb = "registered" if created else "updated"
        extras = ", ".join(
            part
            for part in (
                "TLS" if host.uses_tls else "",
                "probe on" if host.probe_enabled else "",
                f"every {host.scan_interval_minutes} min",
                "disabled" if not host.enabled else "",
            )
            if part
        )
        self.stdout.write(f"{verb} host {host.name} ({host.url}; {extras})")

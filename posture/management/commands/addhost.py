"""manage.py addhost NAME URL: register a Docker host, or update the one with that name."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from posture.models import DockerHost
from posture.models.audit import record
from posture.models.hosts import validate_docker_url
from scanners.client import HostConfig, validate_tls
from scanners.errors import TLSFailure


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
        parser.add_argument("--interval", type=int, metavar="MINUTES", help="minutes between scheduled scans")
        parser.add_argument("--disable", action="store_true", help="keep the host but stop scheduling scans")

    def handle(self, *args, name, url, tls_ca, tls_cert, tls_key, probe, interval, disable, **opts):
        try:
            validate_docker_url(url)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        if interval is not None and interval < 1:
            raise CommandError("--interval must be at least 1 minute")
        tls = {"tls_ca": tls_ca, "tls_cert": tls_cert, "tls_key": tls_key}
        given = {k: v for k, v in tls.items() if v}
        if given and not url.startswith("tcp://"):
            raise CommandError("TLS files only apply to tcp:// URLs")
        if given and len(given) != 3:
            raise CommandError("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
        if given:
            pems = {field: read_pem(path, field.removeprefix("tls_")) for field, path in given.items()}
            try:
                validate_tls(HostConfig(url=url, **pems))
            except TLSFailure as exc:
                raise CommandError(f"TLS files refused: {exc}") from None
        host, created = DockerHost.objects.get_or_create(name=name, defaults={"url": url})
        host.url = url
        for field, pem in (pems if given else {}).items():
            setattr(host, field, pem)
        if probe is not None:
            host.probe_enabled = probe
        if interval is not None:
            host.scan_interval_minutes = interval
        host.enabled = not disable
        host.full_clean()
        host.save()
        record("host.created" if created else "host.updated", host.name, actor_label="cli", url=url, tls=host.uses_tls,
               probe=host.probe_enabled, interval=host.scan_interval_minutes)
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

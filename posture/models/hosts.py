"""DockerHost: one Docker daemon we collect evidence from.

The field validators here are the single definition of a valid host field; the write
side (`posture.jobs.hosts.save_host`) adds the rules that span fields (TLS, names taken,
archived hosts) and is the only path the API, `addhost` and the admin use to write a host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from posture.fields import EncryptedTextField

URL_SCHEMES = ("unix", "tcp", "ssh")
NAME_MAX_LENGTH = 100
URL_MAX_LENGTH = 500
#: One minute to one year: a longer interval is a disabled host, and a huge one would
#: overflow the next_scan_at arithmetic (and the integer column) after the row was written.
INTERVAL_MIN_MINUTES = 1
INTERVAL_MAX_MINUTES = 365 * 24 * 60

# A name is used on command lines (`scan NAME`), in URLs filters and in audit targets:
# keep it to characters that need no quoting anywhere.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = (f"a host name is 1 to {NAME_MAX_LENGTH} characters: letters, digits, '.', '_' and '-', "
             "starting with a letter or digit")
INTERVAL_RULE = (f"the scan interval must be between {INTERVAL_MIN_MINUTES} and {INTERVAL_MAX_MINUTES} "
                 "minutes (one year)")
# Whitespace and control characters (C0, DEL, C1): urlsplit silently drops tabs and
# newlines, so "unix:///x.sock\nX: y" would validate and later break an HTTP header.
_URL_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def validate_host_name(value: str) -> None:
    if not isinstance(value, str) or len(value) > NAME_MAX_LENGTH or not _NAME_RE.fullmatch(value):
        raise ValidationError(NAME_RULE, code="name")


def validate_scan_interval(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (
            INTERVAL_MIN_MINUTES <= value <= INTERVAL_MAX_MINUTES):
        raise ValidationError(INTERVAL_RULE, code="interval")


def validate_docker_url(value: str) -> None:
    """A Docker URL we can connect to; the message never echoes an overlong or control-laden value."""
    if len(value) > URL_MAX_LENGTH:
        raise ValidationError(f"the URL is longer than {URL_MAX_LENGTH} characters", code="url")
    if _URL_BAD_CHARS.search(value):
        raise ValidationError("the URL contains a space or a control character", code="url")
    parts = urlsplit(value)
    if parts.scheme not in URL_SCHEMES:
        raise ValidationError(f"{value!r}: the URL must start with unix://, tcp:// or ssh://")
    if parts.scheme == "unix" and not parts.path:
        raise ValidationError(f"{value!r}: a unix:// URL needs a socket path, e.g. unix:///var/run/docker.sock")
    if parts.scheme in ("tcp", "ssh") and not parts.hostname:
        raise ValidationError(f"{value!r}: a {parts.scheme}:// URL needs a host name")
    if parts.scheme == "tcp":
        try:
            if parts.port is None:
                raise ValidationError(f"{value!r}: a tcp:// URL needs a port, e.g. tcp://host:2376")
        except ValueError:
            raise ValidationError(f"{value!r}: the port is not a number") from None


def default_interval() -> int:
    return settings.POSTURE_DEFAULT_INTERVAL


class DockerHost(models.Model):
    """A registered Docker daemon. TLS material is encrypted at rest; only workers read it."""

    name = models.CharField(max_length=NAME_MAX_LENGTH, unique=True, validators=[validate_host_name],
                            help_text="kept reserved while the host is archived: its history carries the name")
    url = models.CharField(max_length=URL_MAX_LENGTH, validators=[validate_docker_url])
    tls_ca = EncryptedTextField(blank=True, help_text="PEM of the CA that signed the daemon's certificate")
    tls_cert = EncryptedTextField(blank=True, help_text="PEM client certificate")
    tls_key = EncryptedTextField(blank=True, help_text="PEM client key (encrypted at rest)")
    probe_enabled = models.BooleanField(
        default=False, help_text="Run the read-only host probe container to collect host file evidence"
    )
    scan_interval_minutes = models.PositiveIntegerField(default=default_interval, validators=[validate_scan_interval])
    next_scan_at = models.DateTimeField(null=True, blank=True, db_index=True)
    enabled = models.BooleanField(default=True)
    archived_at = models.DateTimeField(
        null=True, blank=True, help_text="set when the host is taken out of service; its history is kept"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # The scheduler only looks at `enabled`: an archived host can never be scanned.
            models.CheckConstraint(condition=Q(archived_at__isnull=True) | Q(enabled=False),
                                   name="archived_host_disabled",
                                   violation_error_message="an archived host cannot be enabled; unarchive it first"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert or self.tls_key)

    def host_config(self):
        """The pure connection description the scanners understand."""
        from scanners.client import HostConfig

        return HostConfig(
            url=self.url,
            tls_ca=self.tls_ca or None,
            tls_cert=self.tls_cert or None,
            tls_key=self.tls_key or None,
            timeout=float(settings.POSTURE_DOCKER_TIMEOUT),
        )

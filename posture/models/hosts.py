"""DockerHost: one Docker daemon we collect evidence from."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from posture.fields import EncryptedTextField

URL_SCHEMES = ("unix", "tcp", "ssh")


def validate_docker_url(value: str) -> None:
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

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(max_length=500, validators=[validate_docker_url])
    tls_ca = EncryptedTextField(blank=True, help_text="PEM of the CA that signed the daemon's certificate")
    tls_cert = EncryptedTextField(blank=True, help_text="PEM client certificate")
    tls_key = EncryptedTextField(blank=True, help_text="PEM client key (encrypted at rest)")
    probe_enabled = models.BooleanField(
        default=False, help_text="Run the read-only host probe container to collect host file evidence"
    )
    scan_interval_minutes = models.PositiveIntegerField(default=default_interval)
    next_scan_at = models.DateTimeField(null=True, blank=True, db_index=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

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

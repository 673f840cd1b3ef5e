"""Hosts: URL validation and TLS material encrypted at rest."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from posture.models import DockerHost
from posture.models.hosts import validate_docker_url

PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIcanaryKEYmaterial\n-----END PRIVATE KEY-----\n"


@pytest.mark.django_db
def test_it_stores_tls_material_encrypted_and_reads_it_back():
    host = DockerHost.objects.create(name="tls", url="tcp://127.0.0.1:2376", tls_key=PEM_KEY, tls_ca="CA", tls_cert="CERT")
    with connection.cursor() as cur:
        cur.execute("SELECT tls_key, tls_ca FROM posture_dockerhost WHERE id = %s", [host.pk])
        raw_key, raw_ca = cur.fetchone()
    assert "canary" not in raw_key and raw_key.startswith("gAAAA")  # a Fernet token
    assert raw_ca != "CA"
    assert DockerHost.objects.get(pk=host.pk).tls_key == PEM_KEY


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://127.0.0.1:2375", "must start with unix://, tcp:// or ssh://"),
        ("tcp://127.0.0.1", "needs a port"),
        ("tcp://127.0.0.1:port", "not a number"),
        ("unix://", "needs a socket path"),
        ("ssh://", "needs a host name"),
    ],
)
def test_it_rejects_bad_urls_with_a_clear_message(url, message):
    with pytest.raises(ValidationError, match=message):
        validate_docker_url(url)


@pytest.mark.parametrize("url", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2376", "ssh://ops@host.example"])
def test_it_accepts_the_three_transports(url):
    validate_docker_url(url)

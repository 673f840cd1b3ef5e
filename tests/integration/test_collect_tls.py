"""tcp+TLS against a real dockerd started with --tlsverify on 127.0.0.1."""

from __future__ import annotations

import glob
import os
import stat
import tempfile

import pytest

from scanners.client import open_client
from scanners.collect import collect
from scanners.errors import TLSFailure

pytestmark = pytest.mark.docker


def _tls_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "posture-tls-*")))


def test_it_scans_over_tls_with_valid_certificates(dockerd_tls):
    before = _tls_dirs()
    with open_client(dockerd_tls.host_config()) as client:
        assert client.api.api_version == "1.41"
        (directory,) = _tls_dirs() - before
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        for name in os.listdir(directory):
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o600
        snapshot = collect(client)
    assert snapshot["daemon"]["info"]["DockerRootDir"] == dockerd_tls.daemon.data_root
    assert not os.path.exists(directory)  # key material removed on exit


def test_it_works_without_hostname_verification(dockerd_tls):
    url = dockerd_tls.url.replace("127.0.0.1", "localhost")
    with open_client(dockerd_tls.host_config(url=url, verify_hostname=False)) as client:
        assert client.ping()


def test_it_refuses_an_expired_client_certificate(dockerd_tls):
    expired = dockerd_tls.bundle.expired_client
    day = expired.cert.not_valid_after_utc.strftime("%Y-%m-%d")
    with pytest.raises(TLSFailure, match=f"^client certificate expired on {day}"):
        with open_client(dockerd_tls.host_config(tls_cert=expired.cert_pem, tls_key=expired.key_pem)):
            pass


def test_it_says_the_daemon_rejected_a_client_cert_from_another_ca(dockerd_tls):
    foreign = dockerd_tls.bundle.foreign_client
    with pytest.raises(TLSFailure, match="rejected the client certificate"):
        with open_client(dockerd_tls.host_config(tls_cert=foreign.cert_pem, tls_key=foreign.key_pem)):
            pass


def test_it_says_the_daemon_certificate_is_not_from_our_ca(dockerd_tls):
    with pytest.raises(TLSFailure, match="not signed by the configured CA"):
        with open_client(dockerd_tls.host_config(tls_ca=dockerd_tls.bundle.other_ca.cert_pem)):
            pass


def test_it_refuses_a_certificate_and_key_from_different_pairs(dockerd_tls):
    with pytest.raises(TLSFailure, match="do not belong together"):
        with open_client(dockerd_tls.host_config(tls_key=dockerd_tls.bundle.foreign_client.key_pem)):
            pass


def test_it_says_plain_tcp_to_a_tls_port_needs_tls(dockerd_tls):
    with pytest.raises(TLSFailure, match="requires TLS"):
        with open_client(dockerd_tls.host_config(tls_ca=None, tls_cert=None, tls_key=None)):
            pass


def test_it_says_a_daemon_without_client_certificate_rejects_us(dockerd_tls):
    with pytest.raises(TLSFailure, match="requires a client certificate"):
        with open_client(dockerd_tls.host_config(tls_cert=None, tls_key=None)):
            pass


def test_no_key_material_is_left_behind_after_failures(dockerd_tls):
    before = _tls_dirs()
    foreign = dockerd_tls.bundle.foreign_client
    with pytest.raises(TLSFailure):
        with open_client(dockerd_tls.host_config(tls_cert=foreign.cert_pem, tls_key=foreign.key_pem)):
            pass
    assert _tls_dirs() == before

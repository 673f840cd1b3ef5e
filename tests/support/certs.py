"""Throwaway TLS material for tests, generated with ``cryptography`` (EC P-256: fast).

bundle = make_bundle()
bundle.ca.cert_pem, bundle.server.cert_pem, bundle.client.key_pem, bundle.expired_client,
bundle.foreign_client (signed by another CA), bundle.other_ca
bundle.write_server_files(directory) -> {"tlscacert": ..., "tlscert": ..., "tlskey": ...}
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertKey", "TLSBundle", "issue", "make_bundle", "make_ca"]


@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key, both PEM text."""

    cert_pem: str
    key_pem: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CertKey:
    return CertKey(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        cert=cert,
        key=key,
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(cn: str = "posture test CA") -> CertKey:
    """A self-signed CA valid for a day either side of now."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key)


def issue(
    ca: CertKey,
    cn: str,
    *,
    server: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> CertKey:
    """A leaf certificate signed by ``ca``; servers get SAN 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _now() - dt.timedelta(hours=1))
        .not_valid_after(not_after or _now() + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return _pem(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class TLSBundle:
    """Everything a TLS test needs: one daemon CA and several client identities."""

    ca: CertKey
    server: CertKey
    client: CertKey
    expired_client: CertKey
    other_ca: CertKey
    foreign_client: CertKey  # valid, but signed by other_ca

    def write_server_files(self, directory: str) -> dict[str, str]:
        """Write the daemon's CA/cert/key (0600) and return dockerd's flag -> path."""
        paths = {}
        for flag, name, text in (
            ("tlscacert", "ca.pem", self.ca.cert_pem),
            ("tlscert", "server-cert.pem", self.server.cert_pem),
            ("tlskey", "server-key.pem", self.server.key_pem),
        ):
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            paths[flag] = path
        return paths


def make_bundle() -> TLSBundle:
    ca = make_ca()
    other = make_ca("another CA")
    return TLSBundle(
        ca=ca,
        server=issue(ca, "dockerd", server=True),
        client=issue(ca, "posture client"),
        expired_client=issue(
            ca,
            "expired client",
            not_before=_now() - dt.timedelta(days=30),
            not_after=_now() - dt.timedelta(days=1),
        ),
        other_ca=other,
        foreign_client=issue(other, "foreign client"),
    )

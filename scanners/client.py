"""The only place that builds a ``docker.DockerClient``.

Why one place: connection handling is where scans fail, and failures must come out as the
small set of :mod:`scanners.errors` types with a reason an operator can act on. Building
the client here also lets us get the dangerous defaults right once:

* no implicit ``version="auto"``: docker-py would call the daemon inside the constructor
  and wrap any failure into an unclassifiable ``DockerException``. We ``_ping`` first
  (unversioned, so any daemon answers), classify failures, then pick
  ``min(daemon's Api-Version, docker-py's newest)``. dockerd 20.10 gives 1.41; daemons that
  dropped old API versions (Engine 29 needs >= 1.44) still work because we never ask for
  less than the daemon offers.
* ``trust_env = False``: the worker's ``HTTPS_PROXY``/``.netrc`` must not apply to
  ``tcp://`` Docker hosts.
* every call is bounded in time and size whatever the peer does (:mod:`scanners.limits`):
  a total deadline per call (headers and body, trickled or not), the scan's deadline, and
  a cap on each answer; redirects are never followed.
* TLS material is validated before connecting, so "client certificate expired on DATE" is
  said plainly instead of as an opaque handshake alert, and it lives on disk only in a
  private 0700 directory (files 0600) for the lifetime of the context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import docker
import docker.constants
import docker.tls
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from scanners.errors import ConfigError, NotDocker, ScanError, TLSFailure, classify, one_line
from scanners.limits import DEFAULT_MAX_RESPONSE_BYTES, Guard, api_call

__all__ = ["HostConfig", "negotiate_api_version", "open_client", "validate_tls"]

_SCHEMES = ("unix://", "tcp://", "ssh://")
#: Docker's ping answers "OK"; a longer answer is not a ping (and is never read whole).
_PING_MAX_BYTES = 64 * 1024
#: The newest API version docker-py 7.2 knows how to speak.
CLIENT_MAX_API = docker.constants.DEFAULT_DOCKER_API_VERSION
#: The oldest docker-py still accepts; also what we construct with before negotiating.
CLIENT_MIN_API = docker.constants.MINIMUM_DOCKER_API_VERSION


@dataclass
class HostConfig:
    """How to reach one Docker host. PEMs are text, as stored (encrypted) in the database."""

    url: str
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timeout: float = 30.0  # total seconds per Docker API call (not an idle timeout)
    verify_hostname: bool = True
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # largest answer accepted per call

    def __repr__(self) -> str:  # never print key material into logs
        return f"HostConfig(url={self.url!r}, tls={self.uses_tls}, timeout={self.timeout})"

    @property
    def uses_tls(self) -> bool:
        return any((self.tls_ca, self.tls_cert, self.tls_key))


class _NoHostnameAdapter(requests.adapters.HTTPAdapter):
    """Verify the daemon's chain against our CA but not its name (``verify_hostname=False``).

    For daemons reached through an address that is not in their certificate (NAT, tunnels).
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def negotiate_api_version(server_version: str | None, server_min: str | None = None) -> str:
    """Choose the API version to speak: the newest both sides know.

    Raises :class:`NotDocker` when the daemon is older than anything docker-py supports.
    """
    if not server_version:
        return CLIENT_MIN_API
    try:
        chosen = min(server_version, CLIENT_MAX_API, key=_version_tuple)
    except ValueError:
        raise NotDocker(f"the daemon reported a malformed API version {server_version!r}") from None
    if _version_tuple(chosen) < _version_tuple(CLIENT_MIN_API):
        raise NotDocker(
            f"the daemon speaks Docker API {server_version}, older than the oldest supported ({CLIENT_MIN_API})"
        )
    if server_min and _version_tuple(chosen) < _version_tuple(server_min):
        raise NotDocker(f"the daemon requires Docker API >= {server_min}; we speak {chosen}")
    return chosen


# --------------------------------------------------------------------------- TLS material


def _load_certs(pem: str, role: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        raise TLSFailure(f"the {role} is not a readable PEM certificate") from None
    if not certs:
        raise TLSFailure(f"the {role} is not a readable PEM certificate")
    return certs


def _check_validity(cert: x509.Certificate, role: str, now: datetime) -> None:
    if cert.not_valid_after_utc < now:
        raise TLSFailure(f"{role} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC")
    if cert.not_valid_before_utc > now:
        raise TLSFailure(f"{role} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC")


def validate_tls(cfg: HostConfig) -> None:
    """Check the PEMs before connecting, so the failure names the bad file and why."""
    now = datetime.now(UTC)
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        missing = "key" if cfg.tls_cert else "certificate"
        raise TLSFailure(f"a client {missing} is required too: give both certificate and key")
    if cfg.tls_ca:
        for ca in _load_certs(cfg.tls_ca, "CA certificate"):
            _check_validity(ca, "CA certificate", now)
    if cfg.tls_cert and cfg.tls_key:
        cert = _load_certs(cfg.tls_cert, "client certificate")[0]
        try:
            key = serialization.load_pem_private_key(cfg.tls_key.encode(), password=None)
        except TypeError:
            raise TLSFailure("the client key is encrypted; give an unencrypted PEM key") from None
        except Exception:  # cryptography raises several types for junk input
            raise TLSFailure("the client key is not a readable PEM private key") from None
        pub = serialization.PublicFormat.SubjectPublicKeyInfo
        enc = serialization.Encoding.DER
        if cert.public_key().public_bytes(enc, pub) != key.public_key().public_bytes(enc, pub):
            raise TLSFailure("the client certificate and the client key do not belong together")
        _check_validity(cert, "client certificate", now)


def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@contextlib.contextmanager
def _tls_files(cfg: HostConfig) -> Iterator[docker.tls.TLSConfig | None]:
    """Write PEMs to a private temp dir that lives exactly as long as the client.

    requests re-reads the files on every new connection, so they cannot be deleted earlier.
    """
    if not cfg.uses_tls:
        yield None
        return
    validate_tls(cfg)
    directory = tempfile.mkdtemp(prefix="posture-tls-")  # mode 0700
    try:
        ca = _write_private(directory, "ca.pem", cfg.tls_ca) if cfg.tls_ca else None
        pair = None
        if cfg.tls_cert and cfg.tls_key:
            pair = (
                _write_private(directory, "cert.pem", cfg.tls_cert),
                _write_private(directory, "key.pem", cfg.tls_key),
            )
        # verify=True without a CA means "the system trust store".
        yield docker.tls.TLSConfig(client_cert=pair, ca_cert=ca, verify=ca or True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- the client


def _ping(client: docker.DockerClient, cfg: HostConfig) -> str:
    """Unversioned ``GET /_ping``: tells Docker from anything else; returns the API version."""
    api = client.api
    try:
        # A ping answers "OK": anything longer than _PING_MAX_BYTES is not Docker's ping.
        with api_call("pinging the Docker API", max_bytes=_PING_MAX_BYTES):
            resp = api.get(api.base_url + "/_ping", timeout=cfg.timeout)
    except Exception as exc:
        err = classify(exc, url=cfg.url, tls=cfg.uses_tls)
        if isinstance(err, TLSFailure) and not cfg.tls_cert and "client certificate" in err.reason:
            err = TLSFailure("the daemon requires a client certificate (--tlsverify): give a certificate and key")
        raise (_not_a_socket(cfg.url) or err) from exc
    body = resp.content[:200]
    api_version = resp.headers.get("Api-Version")
    if b"HTTP request to an HTTPS server" in body:
        raise TLSFailure(f"the Docker host at {cfg.url} requires TLS: give its CA and a client certificate")
    if resp.status_code != 200 or body.strip() != b"OK" or not api_version:
        raise NotDocker(
            f"the endpoint at {cfg.url} is not a Docker API "
            f"(GET /_ping answered HTTP {resp.status_code}"
            f"{'' if api_version else ' without an Api-Version header'})"
        )
    return api_version


def _not_a_socket(url: str) -> NotDocker | None:
    """Linux answers "connection refused" for a unix:// path that is a plain file: say so."""
    if not url.startswith("unix://"):
        return None
    try:
        mode = os.stat(url[len("unix://") :]).st_mode
    except OSError:
        return None
    return None if stat.S_ISSOCK(mode) else NotDocker(f"{url} is not a socket")


def _check_url(cfg: HostConfig) -> None:
    url = cfg.url.strip()
    if not url.startswith(_SCHEMES):
        raise ConfigError(f"unsupported Docker host URL {one_line(url, 100)!r}: use unix://, tcp:// or ssh://")
    if url.startswith(("unix://", "ssh://")) and cfg.uses_tls:
        raise ConfigError("TLS certificates only apply to tcp:// hosts")


def _build(cfg: HostConfig, tls: docker.tls.TLSConfig | None, guard: Guard) -> docker.DockerClient:
    url = cfg.url.strip()
    try:
        client = docker.DockerClient(
            base_url=url,
            version=CLIENT_MIN_API,  # no network in the constructor; negotiated below
            timeout=cfg.timeout,
            tls=tls or False,
            use_ssh_client=False,  # paramiko in-process: no ssh binary, errors we can classify
            max_pool_size=16,
        )
    except ScanError:
        raise
    except Exception as exc:
        err = classify(exc, url=cfg.url, tls=cfg.uses_tls)
        if type(err) is ScanError:  # unknown constructor error: the URL itself is bad
            err = ConfigError(f"cannot use Docker host URL {one_line(url, 100)!r}: {err.reason}")
        raise err from exc
    client.api.trust_env = False
    if tls is not None and not cfg.verify_hostname:
        client.api.mount("https://", _NoHostnameAdapter(pool_connections=16, pool_maxsize=16))
    guard.install(client.api)  # last: it wraps every mounted adapter
    return client


@contextlib.contextmanager
def open_client(cfg: HostConfig, *, deadline: float | None = None) -> Iterator[docker.DockerClient]:
    """Connect to a Docker host, ping it, negotiate the API version, and yield the client.

    Raises :class:`ConfigError`, :class:`TLSFailure`, :class:`HostUnreachable` or
    :class:`NotDocker` before yielding. Every call on the yielded client, the ping included,
    ends within ``cfg.timeout`` seconds in total and before ``deadline`` (a
    ``time.monotonic()`` value: the scan's), else raises :class:`ScanTimeout`; an answer
    over ``cfg.max_response_bytes`` raises :class:`ResponseTooLarge`. TLS files are removed
    and connections closed on exit.
    """
    _check_url(cfg)
    guard = Guard(timeout=cfg.timeout, deadline=deadline, max_response_bytes=cfg.max_response_bytes)
    with _tls_files(cfg) as tls:
        try:
            client = _build(cfg, tls, guard)
        except BaseException:
            guard.close()
            raise
        try:
            server_api = _ping(client, cfg)
            # docker-py has no public setter; _version is what every versioned URL uses.
            client.api._version = negotiate_api_version(server_api)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.close()
            guard.close()

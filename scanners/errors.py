"""Why a scan could not complete, as a small closed set of exception types.

A scan run stores ``str(error)`` as the reason it failed and shows it to operators, so every
error here carries one human line (no tracebacks, no multi-line library dumps), and the type
says what kind of problem it is so the UI can suggest a fix (start the daemon, renew a
certificate, raise the timeout...).

docker-py surfaces failures as a zoo of requests/urllib3/ssl/socket/paramiko exceptions,
often wrapped two or three levels deep. :func:`classify` is the one place that maps them.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

import docker.errors
import requests.exceptions

from scanners.text import one_line  # re-exported: client.py and the probe import it from here

__all__ = [
    "ConfigError",
    "DaemonLost",
    "HostUnreachable",
    "MalformedAnswer",
    "NotDocker",
    "ResponseTooLarge",
    "ScanError",
    "ScanTimeout",
    "TLSFailure",
    "classify",
    "one_line",
]

_MAX_REASON = 500


class ScanError(Exception):
    """Base of every expected scan failure; ``reason`` is one human-readable line."""

    def __init__(self, reason: str) -> None:
        self.reason = one_line(reason, _MAX_REASON)
        super().__init__(self.reason)

    def __str__(self) -> str:
        return self.reason


class HostUnreachable(ScanError):
    """Nothing answers: connection refused, no such socket, DNS failure, connect timeout."""


class NotDocker(ScanError):
    """Something answers, but it does not speak the Docker Engine API."""


class TLSFailure(ScanError):
    """The TLS handshake or the TLS material itself is wrong (expired, wrong CA, bad PEM...)."""


class DaemonLost(ScanError):
    """The daemon answered at first and then stopped answering during the scan."""


class ScanTimeout(ScanError):
    """A single Docker call or the scan as a whole took longer than allowed."""


class ResponseTooLarge(ScanError):
    """The Docker host sent more than we accept for one answer (see ``scanners.limits``):
    a broken or hostile peer must not be able to exhaust the worker's memory."""


class ConfigError(ScanError):
    """The host configuration itself is unusable (bad URL scheme, half a key pair...)."""


class MalformedAnswer(ScanError):
    """The daemon answered a call, but with data of the wrong shape (not JSON, a list where
    an object belongs, a string where a number belongs, a missing ``Id``...).

    A peer's bad answer is the host's failure, not a bug in posture: the scan ends
    ``failed`` and the reason names the call, e.g. "the daemon answered /info with
    malformed data: expected an object, got a list"."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"the daemon answered {path} with malformed data: {problem}")


class ProbeFailed(ScanError):
    """The host probe could not run (image missing, container refused, script failed) while
    the daemon itself answers: the rest of the scan is kept, host checks report the reason."""


#: Failures of the connection itself: a scan cannot go on after one of these.
FATAL = (HostUnreachable, NotDocker, TLSFailure, DaemonLost, ScanTimeout, ConfigError, ResponseTooLarge)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Walk an exception, its ``args`` that are exceptions, ``__cause__`` and ``__context__``.

    urllib3 hides the interesting error (``ConnectionRefusedError``, ``ssl.SSLError``) inside
    ``MaxRetryError.reason`` or inside ``ProtocolError.args``; we look everywhere, once each.
    """
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        nested: list[object] = [getattr(e, "reason", None), e.__cause__, e.__context__, *e.args]
        stack.extend(n for n in nested if isinstance(n, BaseException))


def _find(exc: BaseException, *types: type[BaseException]) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, types)), None)


def _tls_reason(exc: BaseException) -> str:
    """Turn an OpenSSL error into a sentence that says which side's material is wrong."""
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if "ip address mismatch" in text or "hostname mismatch" in text or "doesn't match" in text:
        return "the daemon's certificate does not match the host name or IP in the URL"
    if "certificate has expired" in text:
        return "the daemon's certificate has expired"
    if "self-signed certificate" in text or "self signed certificate" in text:
        return "the daemon's certificate is self-signed and not trusted by the configured CA"
    if "unable to get local issuer" in text or "certificate verify failed" in text:
        return "the daemon's certificate is not signed by the configured CA certificate"
    if "unknown ca" in text or "bad certificate" in text or "certificate required" in text:
        return "the daemon rejected the client certificate (is it signed by the CA the daemon trusts with --tlscacert?)"
    if "key values mismatch" in text:
        return "the client certificate and key do not belong together"
    if "wrong version number" in text or "record layer failure" in text or "packet length" in text:
        return "the endpoint does not speak TLS (is it a plain-HTTP port?)"
    return "TLS handshake failed: " + one_line(exc, 200)


def classify(exc: BaseException, *, url: str = "", during_scan: bool = False, tls: bool = False) -> ScanError:
    """Map any exception raised while talking to Docker to one :class:`ScanError`.

    ``during_scan`` says the daemon already answered a ping: a lost connection is then the
    daemon going away (:class:`DaemonLost`) rather than a host that never answered. ``tls``
    says the connection used TLS: a daemon that hangs up right after the handshake is then
    rejecting our client certificate (TLS 1.3 reports that only on the first read).
    """
    if isinstance(exc, ScanError):
        return exc
    where = f" at {url}" if url else ""

    # Timeouts first: ConnectTimeout is also a ConnectionError.
    if _find(exc, requests.exceptions.ConnectTimeout):
        return HostUnreachable(f"timed out connecting to the Docker host{where}")
    if _find(exc, requests.exceptions.ReadTimeout, TimeoutError, socket.timeout):
        return ScanTimeout(f"the Docker daemon{where} did not answer in time")

    ssl_err = _find(exc, ssl.SSLError, requests.exceptions.SSLError)
    hung_up = _find(exc, ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError) is not None
    if during_scan and hung_up:
        return DaemonLost(f"the Docker daemon{where} closed the connection during the scan")
    if ssl_err is not None or (tls and hung_up):
        text = _tls_reason(ssl_err or exc)
        if hung_up and text.startswith("TLS handshake failed"):
            text = (
                "the daemon closed the connection during the TLS handshake "
                "(it probably rejected the client certificate: wrong CA, or none given)"
            )
        return TLSFailure(text)

    ssh = _ssh_reason(exc)
    if ssh is not None:
        return HostUnreachable(ssh + where) if not during_scan else DaemonLost(ssh + where)

    if isinstance(exc, docker.errors.TLSParameterError):
        return TLSFailure(one_line(exc, _MAX_REASON))
    if isinstance(exc, docker.errors.APIError):
        # An HTTP answer that is an error. Before the ping succeeded this means "not Docker".
        status = exc.status_code
        if not during_scan:
            return NotDocker(f"the endpoint{where} answered HTTP {status} to a Docker API ping")
        return ScanError(f"the Docker daemon{where} returned HTTP {status}: {one_line(exc.explanation or exc, 300)}")
    if isinstance(exc, docker.errors.DockerException) and not isinstance(exc, docker.errors.APIError):
        msg = str(exc)
        if "protocol" in msg.lower() or "scheme" in msg.lower() or "invalid bind address" in msg.lower():
            return ConfigError(one_line(msg, _MAX_REASON))

    if _find(exc, requests.exceptions.ConnectionError, ConnectionError, OSError):
        if during_scan:
            return DaemonLost(f"lost the connection to the Docker daemon{where} during the scan")
        return _connect_reason(exc, where)
    if _find(exc, requests.exceptions.InvalidJSONError, ValueError):
        return NotDocker(f"the endpoint{where} did not answer with Docker API JSON")
    return ScanError(f"{type(exc).__name__}: {one_line(exc, 300)}")


def _connect_reason(exc: BaseException, where: str) -> ScanError:
    """A connection that failed before the daemon ever answered."""
    if _find(exc, socket.gaierror):
        return HostUnreachable(f"cannot resolve the Docker host name{where}")
    if _find(exc, FileNotFoundError):
        return HostUnreachable(f"no such socket{where}")
    if _find(exc, ConnectionRefusedError):
        return HostUnreachable(f"connection refused{where} (is the Docker daemon running?)")
    if _find(exc, PermissionError):
        return HostUnreachable(f"permission denied opening the Docker socket{where}")
    os_err = _find(exc, OSError)
    if isinstance(os_err, OSError) and os_err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return HostUnreachable(f"no route to the Docker host{where}")
    if isinstance(os_err, OSError) and os_err.errno == errno.ENOTSOCK:
        return NotDocker(f"the path{where} is not a socket")
    # It accepted the connection and then said something that is not HTTP, or hung up.
    text = " ".join(str(e) for e in _chain(exc))
    if any(s in text for s in ("BadStatusLine", "RemoteDisconnected", "Connection aborted", "reset by peer")):
        return NotDocker(f"the endpoint{where} accepted the connection but does not speak the Docker API")
    return HostUnreachable(f"cannot connect to the Docker host{where}: {one_line(exc, 200)}")


def _ssh_reason(exc: BaseException) -> str | None:
    """paramiko is optional at import time; recognise its errors by module name."""
    for e in _chain(exc):
        if type(e).__module__.startswith("paramiko"):
            name = type(e).__name__
            if name in ("AuthenticationException", "BadAuthenticationType", "PasswordRequiredException"):
                return "SSH authentication failed"
            if name == "BadHostKeyException":
                return "SSH host key does not match known_hosts"
            return f"SSH connection failed: {one_line(e, 200)}"
    return None

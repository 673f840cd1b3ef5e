"""The "Test connection" button: can posture reach this Docker host, and what answers?

Why a use case of its own: the host form tests values that are not saved yet (a URL being
typed, TLS files just chosen), so it cannot go through a scan. It opens the client the way a
scan does (``scanners.client.open_client``: same URL rules, TLS checks, size caps and error
classification), reads ``/version`` and ``/info`` under a short deadline, and reports. It
writes nothing: no host, no scan row, no evidence, no audit event.

It runs in the process that asks (the web server), not on a worker: a person is waiting on
the answer. Where the web server and the workers do not share the same network or sockets
(compose mounts the Docker socket into ``worker`` only) the answer can differ from what a
scan would see; the page says so."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from django.conf import settings

from scanners.client import HostConfig, open_client
from scanners.collectors.daemon import collect_daemon
from scanners.errors import (
    ConfigError,
    DaemonLost,
    HostUnreachable,
    MalformedAnswer,
    NotDocker,
    ResponseTooLarge,
    ScanError,
    ScanTimeout,
    TLSFailure,
)
from scanners.text import one_line

#: A person is waiting: the whole test (connect, ping, version, info) ends within this many
#: seconds, or sooner when POSTURE_DOCKER_TIMEOUT is lower.
CONNECTION_TEST_SECONDS = 10.0

#: Error classes as the page names them, with what to do about each.
_KINDS: tuple[tuple[type[ScanError], str, str], ...] = (
    (ConfigError, "configuration", "Check the URL and the TLS files."),
    (TLSFailure, "tls", "Check the CA, client certificate and key, and that the daemon uses --tlsverify."),
    (HostUnreachable, "unreachable", "Is the Docker daemon running, and is the address right from this server?"),
    (NotDocker, "not_docker", "Something answers at this address, but it is not the Docker Engine API."),
    (ScanTimeout, "timeout", "The daemon did not answer in time."),
    (ResponseTooLarge, "too_large", "The answer was larger than posture accepts."),
    (MalformedAnswer, "malformed", "The daemon answered with data of an unexpected shape."),
    (DaemonLost, "lost", "The daemon stopped answering during the test."),
)


@dataclass
class ConnectionReport:
    """What the test found. ``ok`` with the daemon's facts, or ``error_kind`` + ``error``."""

    ok: bool
    url: str
    seconds: float
    api_version: str = ""  # the version posture negotiated and speaks
    server_api_version: str = ""  # the newest the daemon offers
    server_version: str = ""
    os: str = ""
    containers: int | None = None
    images: int | None = None
    error_kind: str = ""
    error: str = ""
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any, limit: int = 200) -> str:
    return one_line(value, limit) if isinstance(value, str) else ""


def check_connection(cfg: HostConfig, *, limit: float = CONNECTION_TEST_SECONDS) -> ConnectionReport:
    """Connect to ``cfg`` as a scan would and report. Never raises for a host's failure; a bug
    in posture is reported as ``error_kind="internal"`` with its type, never a traceback."""
    limit = min(limit, float(settings.POSTURE_DOCKER_TIMEOUT))
    cfg = replace(cfg, timeout=limit, max_response_bytes=settings.POSTURE_MAX_RESPONSE_BYTES)
    started = time.monotonic()
    deadline = started + limit
    try:
        with open_client(cfg, deadline=deadline) as client:
            daemon = collect_daemon(client.api, deadline=deadline)
            negotiated = client.api.api_version
    except ScanError as exc:
        kind, hint = next(((k, h) for t, k, h in _KINDS if isinstance(exc, t)), ("failed", ""))
        return ConnectionReport(ok=False, url=cfg.url, seconds=round(time.monotonic() - started, 2),
                                error_kind=kind, error=str(exc), hint=hint)
    except Exception as exc:  # a bug in posture or docker-py: say so, in one line
        return ConnectionReport(ok=False, url=cfg.url, seconds=round(time.monotonic() - started, 2),
                                error_kind="internal", error=f"internal error: {type(exc).__name__}: {one_line(exc, 200)}")
    info, version = daemon["info"], daemon["version"]
    return ConnectionReport(
        ok=True, url=cfg.url, seconds=round(time.monotonic() - started, 2),
        api_version=_text(negotiated, 20), server_api_version=_text(version.get("ApiVersion"), 20),
        server_version=_text(version.get("Version"), 100), os=_text(info.get("OperatingSystem")),
        containers=_count(info.get("Containers")), images=_count(info.get("Images")),
    )

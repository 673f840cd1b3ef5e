"""A fake Docker Engine API that a hostile or broken host could be: for limit tests.

It answers like a tiny, healthy daemon (``/_ping`` 200 ``OK`` with an ``Api-Version``
header, small ``/version`` and ``/info``, no images, no containers), so a scan gets past
the connection checks, and any chosen path can instead be answered by a misbehaving reply:

* :class:`Trickle` sends the answer one byte per ``interval`` seconds (the body only, or the
  status line and headers too), so no single read ever waits long enough for an idle/read
  timeout, yet the call never finishes in useful time;
* :class:`Huge` streams an ``N`` MB body generated chunk by chunk (nothing is held in the
  test's memory), with a ``Content-Length`` or chunked;
* :class:`Answer` is an ordinary complete reply (status, body, headers, optional ``delay``
  before it); ``Answer.json(value)`` any JSON value (a list where an object belongs...),
  ``Answer.raw(bytes)`` exactly these bytes (invalid JSON labelled as JSON), for tests of how
  posture treats a peer's garbage.

``upgrade=True`` on a Trickle or Huge answers like ``POST /exec/{id}/start``: ``101
UPGRADED`` and then a raw multiplexed stream (:func:`frame` builds its records), so the host
probe's exec output can be trickled or made huge too.

Usage::

    with FakeDocker({"/info": Trickle()}) as fake:                 # unix socket in a temp dir
        ... HostConfig(url=fake.url) ...
    with FakeDocker({"/_ping": Huge(400)}, tcp=True) as fake:       # 127.0.0.1, free port
        ...
    FakeDocker(routes, tcp=True, tls=make_bundle())                 # tcp + TLS (server cert)

Paths are matched without the ``/v1.NN`` prefix and the query string, exactly first, then as
``fnmatch`` patterns (``/containers/*/json``; ``*`` matches across ``/`` too). ``fake.requests``
lists the paths asked for; ``fake.bytes_sent`` counts what was written. Only 127.0.0.1 and
unix sockets are ever used. Each connection is served by its own daemon thread; ``close()``
stops the listener and drops every connection (a trickle ends at once).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ROUTES", "Answer", "FakeDocker", "Huge", "Route", "Trickle", "frame"]

API_VERSION = "1.41"
_VERSIONED = re.compile(r"^/v\d+\.\d+(?=/)")
_MAX_REQUEST_HEAD = 64 * 1024


@dataclass
class Answer:
    """A complete, ordinary reply."""

    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (holds a scan in the middle of a call)

    @classmethod
    def json(cls, value: Any, status: int = 200, *, delay: float = 0.0) -> Answer:
        """Any JSON value as the body (a list, a string, a number...)."""
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"}, delay)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, *, content_type: str = "application/json") -> Answer:
        """Exactly these bytes, e.g. invalid JSON labelled as JSON."""
        return cls(status, body, {"Content-Type": content_type})

    def payload(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Trickle:
    """Answer slowly: one byte every ``interval`` seconds.

    ``body`` defaults to a valid JSON object long enough (10 kB) to take hours at 1 byte/s.
    With ``headers_too`` the status line and headers are trickled as well (a peer that stalls
    before the client even knows the status); otherwise they are sent at once with a
    ``Content-Length`` that promises the whole body.
    """

    interval: float = 1.0
    body: bytes = b'{"ID": "' + b"x" * 10_000 + b'"}'
    headers_too: bool = False
    status: int = 200
    upgrade: bool = False  # 101 and a raw stream, like an exec's output


@dataclass
class Huge:
    """Stream a body of ``megabytes`` MiB, generated ``chunk`` bytes at a time.

    The body is ``prefix`` followed by ``fill`` repeated (a JSON string that never closes by
    default); ``chunked`` uses chunked transfer encoding instead of a ``Content-Length``.
    """

    megabytes: int = 400
    chunk: int = 1024 * 1024
    prefix: bytes = b'{"ID": "'
    fill: bytes = b"a"
    chunked: bool = False
    status: int = 200
    content_type: str = "application/json"
    upgrade: bool = False  # 101 and stdout frames of ``chunk`` bytes, like an exec's output


Route = Answer | Trickle | Huge

#: What a small healthy daemon says; any of these can be overridden per FakeDocker.
DEFAULT_ROUTES: dict[str, Route] = {
    "/_ping": Answer(200, b"OK", {"Api-Version": API_VERSION, "Content-Type": "text/plain; charset=utf-8"}),
    "/version": Answer(200, {"Version": "20.10.99-fake", "ApiVersion": API_VERSION, "MinAPIVersion": "1.12",
                             "Os": "linux", "Arch": "amd64"}),
    "/info": Answer(200, {"ID": "FAKE", "Name": "fake-docker", "DockerRootDir": "/var/lib/docker",
                          "ServerVersion": "20.10.99-fake", "SecurityOptions": ["name=seccomp,profile=default"],
                          "Containers": 0, "Images": 0, "Swarm": {"LocalNodeState": "inactive"}}),
    "/images/json": Answer(200, []),
    "/containers/json": Answer(200, []),
}


class FakeDocker:
    """A fake Docker API on a unix socket (default) or on 127.0.0.1 tcp, optionally TLS.

    ``routes`` override :data:`DEFAULT_ROUTES`; an unknown path gets a Docker-style 404.
    """

    def __init__(
        self,
        routes: dict[str, Route] | None = None,
        *,
        tcp: bool = False,
        tls: Any = None,  # tests.support.certs.TLSBundle: serve TLS with its server certificate
        unix_path: str | None = None,
    ) -> None:
        self.routes: dict[str, Route] = {**DEFAULT_ROUTES, **(routes or {})}
        self.requests: list[str] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closed = threading.Event()
        self._tmpdir: str | None = None
        self._sockdir: str | None = None
        self._ssl: ssl.SSLContext | None = None
        self.tls = tls
        if tls is not None:
            self._tmpdir = tempfile.mkdtemp(prefix="fakedocker-tls-")
            files = tls.write_server_files(self._tmpdir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(files["tlscert"], files["tlskey"])
            ctx.load_verify_locations(files["tlscacert"])
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._ssl = ctx
            tcp = True
        if tcp:
            self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.bind(("127.0.0.1", 0))
            self.path = None
            self.url = f"tcp://127.0.0.1:{self._server.getsockname()[1]}"
        else:
            if unix_path is None:
                self._sockdir = tempfile.mkdtemp(prefix="fakedocker-", dir="/tmp")
                unix_path = os.path.join(self._sockdir, "docker.sock")
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._server.bind(unix_path)
            self.path = unix_path
            self.url = f"unix://{unix_path}"
        self._server.listen(64)
        self._thread = threading.Thread(target=self._accept, name="fakedocker-accept", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public helpers

    def host_config(self, **overrides: Any):  # -> scanners.client.HostConfig
        """A HostConfig that reaches this endpoint (with the bundle's client certificate)."""
        from scanners.client import HostConfig

        values: dict[str, Any] = {"url": self.url, "timeout": 10.0}
        if self.tls is not None:
            values.update(tls_ca=self.tls.ca.cert_pem, tls_cert=self.tls.client.cert_pem,
                          tls_key=self.tls.client.key_pem)
        values.update(overrides)
        return HostConfig(**values)

    def route_for(self, route: str) -> Route:
        """The reply for a path: an exact route, else the first matching pattern, else 404."""
        if route in self.routes:
            return self.routes[route]
        for pattern, reply in self.routes.items():
            if any(c in pattern for c in "*?[") and fnmatch.fnmatchcase(route, pattern):
                return reply
        return Answer(404, {"message": f"page not found: {route}"})

    def close(self) -> None:
        """Stop listening and drop every open connection (trickles end at once)."""
        self._closed.set()
        try:
            self._server.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _hang_up(c)
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> FakeDocker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ serving

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="fakedocker-conn", daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn: socket.socket = raw
        try:
            if self._ssl is not None:
                raw.settimeout(10)
                conn = self._ssl.wrap_socket(raw, server_side=True)
                conn.settimeout(None)
                with self._lock:
                    self._conns.add(conn)
            buf = b""
            while not self._closed.is_set():
                head, buf = _read_request(conn, buf)
                if head is None:
                    return
                method, path, headers = head
                length = int(headers.get("content-length", "0") or 0)
                while len(buf) < length:
                    more = conn.recv(65536)
                    if not more:
                        return
                    buf += more
                buf = buf[length:]
                route = _VERSIONED.sub("", path.split("?", 1)[0])
                with self._lock:
                    self.requests.append(route)
                reply = self.route_for(route)
                if not self._reply(conn, reply):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(raw)
                self._conns.discard(conn)
            _hang_up(conn)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _reply(self, conn: socket.socket, reply: Route) -> bool:
        """Write one reply; True when the connection may serve another request."""
        if isinstance(reply, Answer):
            if reply.delay and self._closed.wait(reply.delay):
                return False
            body = reply.payload()
            headers = {"Content-Type": "application/json", "Api-Version": API_VERSION, **reply.headers}
            self._send(conn, _head(reply.status, headers, len(body)) + body)
            return True
        if isinstance(reply, Trickle):
            head = _UPGRADED if reply.upgrade else _head(
                reply.status, {"Content-Type": "application/json", "Api-Version": API_VERSION}, len(reply.body))
            data = head + reply.body
            if not reply.headers_too:
                self._send(conn, head)
                data = reply.body
            for i in range(len(data)):
                if self._closed.wait(reply.interval):
                    return False
                self._send(conn, data[i : i + 1])
            return not reply.upgrade
        # Huge
        total = reply.megabytes * 1024 * 1024
        if reply.upgrade:
            self._send(conn, _UPGRADED)
            data = frame(1, reply.fill * reply.chunk)[: 8 + reply.chunk]
            for _ in range(max(1, total // reply.chunk)):
                if self._closed.is_set():
                    break
                self._send(conn, data)
            return False
        # No "Connection: close": docker-py's ssh transport would close the channel under the
        # response (http.client closes the connection object; a paramiko channel dies at once).
        headers = {"Content-Type": reply.content_type, "Api-Version": API_VERSION}
        if reply.chunked:
            headers["Transfer-Encoding"] = "chunked"
        self._send(conn, _head(reply.status, headers, None if reply.chunked else total))
        block = (reply.fill * (reply.chunk // max(1, len(reply.fill)) + 1))[: reply.chunk]
        sent = 0
        first = reply.prefix[:total]
        while sent < total and not self._closed.is_set():
            piece = first if sent == 0 and first else block[: min(reply.chunk, total - sent)]
            self._send(conn, b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece)
            sent += len(piece)
        if reply.chunked and sent >= total:
            self._send(conn, b"0\r\n\r\n")
        return sent >= total


_UPGRADED = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
             b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")


def frame(stream: int, data: bytes) -> bytes:
    """One record of Docker's multiplexed stream: 1 stdout, 2 stderr."""
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def _head(status: int, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_request(conn: socket.socket, buf: bytes) -> tuple[tuple[str, str, dict[str, str]] | None, bytes]:
    while b"\r\n\r\n" not in buf:
        if len(buf) > _MAX_REQUEST_HEAD:
            return None, b""
        more = conn.recv(65536)
        if not more:
            return None, b""
        buf += more
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None, b""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return (parts[0], parts[1], headers), rest


def _hang_up(conn: socket.socket) -> None:
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        conn.close()
    except OSError:
        pass

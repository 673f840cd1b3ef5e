"""A fake Docker Engine endpoint on a unix socket that answers whatever a test tells it to.

Why: a real dockerd never answers ``/info`` with a JSON list, so the only way to prove how
posture treats a peer's garbage is an endpoint that sends it. Everything it answers comes
from one map of path pattern -> :class:`Reply` (status, headers, body, optional delay).

    with FakeDocker({"/info": Reply.json([1, 2]), "/containers/*/json": Reply.raw(b"{oops")}) as fake:
        HostConfig(url=fake.url)      # unix:///tmp/.../docker.sock
        fake.requests                 # ["/_ping", "/v1.41/info", ...] as received

Paths are matched without the ``/vX.Y`` version prefix and without the query string, with
``fnmatch`` patterns (``*`` matches across ``/`` too). Unless a test overrides them,
``/_ping`` answers like dockerd 20.10 (200, body ``OK``, ``Api-Version: 1.41``) and the
calls of a scan (``/info``, ``/version``, ``/images/json``, ``/containers/json``) answer
minimal valid documents of an empty host, so a test only states what it breaks. Anything
else is a 404 with Docker's JSON error body. ``Reply.delay`` sleeps before answering (to
hold a scan in the middle of a call). Only this process's own socket and threads are used.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import socketserver
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_ROUTES", "FakeDocker", "Reply"]

_VERSION_PREFIX = re.compile(r"\A/v\d+\.\d+(?=/)")


@dataclass
class Reply:
    """One canned answer."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0

    @classmethod
    def json(cls, value: Any, status: int = 200, *, delay: float = 0.0) -> Reply:
        """A JSON body (any JSON value: a list, a string, a number...)."""
        return cls(status, {"Content-Type": "application/json"}, json.dumps(value).encode(), delay)

    @classmethod
    def raw(cls, body: bytes, status: int = 200, *, content_type: str = "application/json") -> Reply:
        """Exactly these bytes, e.g. invalid JSON labelled as JSON."""
        return cls(status, {"Content-Type": content_type}, body)


#: An empty dockerd 20.10 as far as a scan is concerned.
DEFAULT_ROUTES: dict[str, Reply] = {
    "/_ping": Reply(200, {"Api-Version": "1.41", "Content-Type": "text/plain"}, b"OK"),
    "/info": Reply.json({"ID": "FAKE", "Name": "fake", "ServerVersion": "20.10.24", "Containers": 0,
                         "Images": 0, "DockerRootDir": "/var/lib/docker", "SecurityOptions": [],
                         "Swarm": {"LocalNodeState": "inactive"}}),
    "/version": Reply.json({"Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12",
                            "Os": "linux", "Arch": "amd64"}),
    "/images/json": Reply.json([]),
    "/containers/json": Reply.json([]),
}  # fmt: skip


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        path = _VERSION_PREFIX.sub("", self.path.split("?", 1)[0])
        self.server.owner.requests.append(self.path)
        reply = self.server.owner.reply_for(path)
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = _answer

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    owner: FakeDocker

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        request, _ = super().get_request()
        return request, ("fake-docker-client", 0)


class FakeDocker:
    """See the module docstring. Start with ``with`` (or ``start()``/``stop()``)."""

    def __init__(self, routes: dict[str, Reply] | None = None) -> None:
        self.routes: dict[str, Reply] = {**DEFAULT_ROUTES, **(routes or {})}
        self.requests: list[str] = []
        self.dir = tempfile.mkdtemp(prefix="h6fake")
        self.socket_path = os.path.join(self.dir, "docker.sock")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def reply_for(self, path: str) -> Reply:
        if path in self.routes:
            return self.routes[path]
        for pattern, reply in self.routes.items():
            if fnmatch.fnmatchcase(path, pattern):
                return reply
        return Reply.json({"message": f"page not found: {path}"}, 404)

    def start(self) -> FakeDocker:
        self._server = _Server(self.socket_path, _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-docker", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def __enter__(self) -> FakeDocker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Bounded peer I/O: a total deadline on every Docker API call and a cap on every response.

Why: a Docker host is a peer we do not control. A read timeout only bounds how long one
``recv`` may idle, so a host that answers ``/_ping`` and then sends ``/info`` one byte per
second never trips it and holds a scan (and a worker process) for hours; and docker-py
reads every answer whole into memory, so a host that answers with 400 MB costs 400 MB.
The :class:`Guard` that :func:`scanners.client.open_client` installs on every client fixes
both for every transport docker-py builds (unix socket, tcp and tcp+TLS, ssh via paramiko):

* **Total deadline per call** = ``min(now + per-call timeout, scan deadline)``, covering
  connect, TLS handshake, status line and headers, and body. Each HTTP request registers
  with a watchdog thread; the connection it takes from the pool is attached to that
  registration; when the deadline passes, the watchdog shuts the connection's socket down
  (a paramiko channel is closed), which wakes the thread blocked in ``recv`` at once. The
  call then fails with :class:`~scanners.errors.ScanTimeout` "... time limit ... while
  <doing>". Non-streamed answers are also read under socket timeouts clipped to the time
  left, so even a missed wake-up cannot overrun by more than one read.
* **Size cap per answer** (``max_response_bytes``, default :data:`DEFAULT_MAX_RESPONSE_BYTES`):
  answers are read with ``stream=True`` in 64 KiB chunks and the call fails with
  :class:`~scanners.errors.ResponseTooLarge` as soon as more arrived (or a
  ``Content-Length`` announces more); memory stays within about the cap. Bodies are never
  decompressed (we ask for ``identity``), so a compressed bomb cannot expand past the cap.
  Streamed calls (exec output of the host probe) use :func:`read_multiplexed`, which
  applies the same cap.
* Redirects are never followed: the Docker API does not redirect, and a hostile host must
  not steer the worker to another address.

What to do and how long is said by the caller with :func:`api_call` (the collectors'
``call`` helper does it), so errors name the step: "scan time limit reached while reading
docker info". Calls made outside a scope are still bounded, and named by method and path;
only a *streamed* answer read outside a scope is left to socket timeouts (the watchdog is
disarmed when the scope ends, and without one we cannot know when the caller is done).

Not covered: the SSH handshake of an ``ssh://`` host happens inside docker-py's client
constructor and is bounded by paramiko's own banner and auth timeouts, not by the deadline.
Pure: no Django, no global state besides two context variables (one per thread).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import requests.adapters
import requests.exceptions

from scanners.errors import ResponseTooLarge, ScanError, ScanTimeout

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "CallScope",
    "Guard",
    "api_call",
    "guard_of",
    "hijacked_stream",
    "read_multiplexed",
]

#: Largest answer accepted from a Docker host for one API call. Real answers are far
#: smaller (``docker info`` ~10 kB; the container list ~2 kB per container, so 16 MiB is
#: ~8000 containers); parsing JSON can take several times its size in Python objects.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Time a cleanup call (removing the probe container) gets even after the scan deadline.
CLEANUP_SECONDS = 10.0
_CHUNK = 64 * 1024
#: How often the watchdog retries a connection whose socket did not exist yet at expiry.
_RETRY = 0.1


def _mib(n: int) -> str:
    if n >= 1048576:
        return f"{n / 1048576:.4g} MiB"
    return f"{n / 1024:.4g} KiB" if n >= 1024 else f"{n} bytes"


@dataclass
class CallScope:
    """One logical Docker API call as the caller sees it (may span several HTTP requests)."""

    doing: str
    deadline: float | None = None  # the scan's deadline (time.monotonic()), if any
    max_bytes: int | None = None  # a smaller cap for this call (e.g. the ping)
    cleanup: bool = False  # runs after the deadline: gets CLEANUP_SECONDS instead
    registrations: list[_Registration] = field(default_factory=list)

    def expired(self) -> _Registration | None:
        return next((r for r in self.registrations if r.expired), None)


_scope: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("posture_call_scope", default=None)
_request: contextvars.ContextVar[_Registration | None] = contextvars.ContextVar("posture_request", default=None)


@contextlib.contextmanager
def api_call(
    doing: str, deadline: float | None = None, *, max_bytes: int | None = None, cleanup: bool = False
) -> Iterator[CallScope]:
    """Name and bound the Docker API calls made inside (in this thread).

    Streamed answers read inside the block stay under the watchdog until the block ends.
    """
    scope = CallScope(doing=doing, deadline=deadline, max_bytes=max_bytes, cleanup=cleanup)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        for reg in scope.registrations:
            reg.watchdog.disarm(reg)


@dataclass(eq=False)
class _Registration:
    """One HTTP request under the watchdog: its deadline and the connections it used."""

    watchdog: _Watchdog
    deadline: float
    reason: str  # what the ScanTimeout says if the deadline passes
    conns: list[Any] = field(default_factory=list)
    expired: bool = False
    retry_until: float = 0.0

    def error(self) -> ScanTimeout:
        return ScanTimeout(self.reason)


def _socket_of(conn: Any) -> Any:
    """The connection's socket: http.client drops ``conn.sock`` once a response says
    ``Connection: close`` (the response keeps reading it), so we remember the last one."""
    return getattr(conn, "sock", None) or getattr(conn, "_posture_sock", None)


def _track(conn: Any) -> None:
    """Remember each socket ``conn`` connects with (see :func:`_socket_of`)."""
    if getattr(conn, "sock", None) is not None:
        conn._posture_sock = conn.sock
    if getattr(conn, "_posture_tracked", False):
        return
    original = conn.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            if getattr(conn, "sock", None) is not None:
                conn._posture_sock = conn.sock

    conn.connect = connect
    conn._posture_tracked = True


def _abort(conn: Any) -> bool:
    """Wake whoever is blocked reading ``conn``; False when it has no socket yet."""
    sock = _socket_of(conn)
    if sock is None:
        return False
    with contextlib.suppress(Exception):
        if isinstance(sock, socket.socket):
            # The plain socket call: for an SSLSocket it cuts the TCP stream under OpenSSL
            # without touching the SSL object another thread is reading with.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:  # a paramiko Channel: close() wakes a reader blocked on its buffer
            sock.close()
    return True


class _Watchdog:
    """A daemon thread that shuts down connections whose call outlived its deadline."""

    def __init__(self, name: str) -> None:
        self._cv = threading.Condition()
        self._regs: set[_Registration] = set()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._name = name

    def arm(self, deadline: float, reason: str) -> _Registration:
        reg = _Registration(self, deadline, reason)
        with self._cv:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._regs.add(reg)
            self._cv.notify()
        return reg

    def disarm(self, reg: _Registration) -> None:
        with self._cv:
            self._regs.discard(reg)

    def attach(self, reg: _Registration, conn: Any) -> None:
        with self._cv:
            reg.conns.append(conn)
            late = reg.expired
            if late:  # expired before it even got a connection: keep trying briefly
                reg.retry_until = time.monotonic() + 5
                self._regs.add(reg)
                self._cv.notify()
        if late:
            _abort(conn)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._regs.clear()
            self._cv.notify()

    def _run(self) -> None:
        to_abort: list[Any] = []
        while True:
            for conn in to_abort:  # outside the lock: closing a paramiko channel may block briefly
                _abort(conn)
            to_abort = []
            with self._cv:
                if self._stopped:
                    return
                now = time.monotonic()
                wake: float | None = None
                for reg in list(self._regs):
                    if now < reg.deadline:
                        wake = reg.deadline if wake is None else min(wake, reg.deadline)
                        continue
                    if not reg.expired:
                        reg.expired = True
                        reg.retry_until = now + 5
                    to_abort.extend(reg.conns)
                    if any(_socket_of(c) is None for c in reg.conns) and now < reg.retry_until:
                        wake = now + _RETRY if wake is None else min(wake, now + _RETRY)
                    else:
                        self._regs.discard(reg)
                if not to_abort:  # waiting under the same lock hold: no notify is ever lost
                    self._cv.wait(None if wake is None else max(0.0, wake - now))


def _hook_pool(pool: Any) -> Any:
    """Make the pool attach each connection it hands out to the current request."""
    if getattr(pool, "_posture_hooked", False):
        return pool
    original = pool._get_conn

    def _get_conn(*args: Any, **kwargs: Any) -> Any:
        conn = original(*args, **kwargs)
        _track(conn)
        reg = _request.get()
        if reg is not None:
            reg.watchdog.attach(reg, conn)
        return conn

    pool._get_conn = _get_conn
    pool._posture_hooked = True
    return pool


_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")


def _describe(request: requests.PreparedRequest) -> str:
    path = _VERSION_PREFIX.sub("", request.path_url.split("?", 1)[0])
    return f"calling {request.method} {path[:80]}"


def _clip_timeout(timeout: Any, remaining: float) -> tuple[float, float]:
    """requests' (connect, read) timeouts, each no longer than the time left."""
    remaining = max(0.001, remaining)
    if isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = getattr(timeout, "_read", timeout)  # urllib3 Timeout, number or None
    connect = remaining if not isinstance(connect, (int, float)) else min(connect, remaining)
    read = remaining if not isinstance(read, (int, float)) else min(read, remaining)
    return connect, read


class Guard:
    """Bounds every HTTP request of one docker-py ``APIClient`` (see the module docstring).

    ``timeout`` is the per-call limit in seconds, ``deadline`` a ``time.monotonic()`` after
    which no call may run (the scan's), ``max_response_bytes`` the cap on each answer.
    """

    def __init__(self, *, timeout: float, deadline: float | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.timeout = timeout
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.watchdog = _Watchdog("docker-call-watchdog")

    def install(self, api: Any) -> None:
        """Wrap every adapter mounted on ``api`` (call after all adapters are mounted)."""
        api.headers["Accept-Encoding"] = "identity"
        api.max_redirects = 0
        api.posture_guard = self
        for adapter in {id(a): a for a in api.adapters.values()}.values():
            self._wrap_adapter(adapter)

    def close(self) -> None:
        self.watchdog.stop()

    # ------------------------------------------------------------------ wrapping

    def _wrap_adapter(self, adapter: requests.adapters.HTTPAdapter) -> None:
        if getattr(adapter, "_posture_guarded", False):
            return
        for name in ("get_connection_with_tls_context", "get_connection"):
            method = getattr(adapter, name, None)
            if method is not None:
                setattr(adapter, name, self._pool_hooker(method))
        original_send = adapter.send

        def send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            return self._send(original_send, request, **kwargs)

        adapter.send = send
        adapter._posture_guarded = True

    @staticmethod
    def _pool_hooker(method: Any) -> Any:
        def get(*args: Any, **kwargs: Any) -> Any:
            return _hook_pool(method(*args, **kwargs))

        return get

    def limits(self, scope: CallScope | None) -> tuple[float, float | None, int]:
        """(this call's deadline, the scan deadline that applies, the size cap)."""
        now = time.monotonic()
        if scope is not None and scope.cleanup:
            return now + min(self.timeout, CLEANUP_SECONDS), None, scope.max_bytes or self.max_response_bytes
        scan = self.deadline
        if scope is not None and scope.deadline is not None:
            scan = scope.deadline if scan is None else min(scan, scope.deadline)
        per_call = now + self.timeout
        cap = self.max_response_bytes if scope is None or scope.max_bytes is None else scope.max_bytes
        return (per_call if scan is None else min(per_call, scan)), scan, cap

    def _timeout_reason(self, doing: str, call_deadline: float, scan_deadline: float | None) -> str:
        if scan_deadline is not None and call_deadline >= scan_deadline:
            return (f"scan time limit reached while {doing}: the Docker host was still answering "
                    "when the scan's deadline passed")
        return (f"time limit of {self.timeout:g}s per Docker API call reached while {doing}: "
                "the Docker host did not answer in time")

    def _send(self, original_send: Any, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        scope = _scope.get()
        doing = scope.doing if scope is not None else _describe(request)
        call_deadline, scan_deadline, cap = self.limits(scope)
        reason = self._timeout_reason(doing, call_deadline, scan_deadline)
        remaining = call_deadline - time.monotonic()
        if remaining <= 0:
            raise ScanTimeout(f"scan time limit reached before {doing}: the scan's deadline has passed")
        stream = bool(kwargs.get("stream"))
        kwargs["stream"] = True
        kwargs["timeout"] = _clip_timeout(kwargs.get("timeout"), remaining)
        reg = self.watchdog.arm(call_deadline, reason)
        if scope is not None:
            scope.registrations.append(reg)
        token = _request.set(reg)
        keep_armed = False
        try:
            response = original_send(request, **kwargs)
            if response.is_redirect:
                response.close()
                raise ScanError(f"the Docker host answered with a redirect (HTTP {response.status_code}) while "
                                f"{doing}; the Docker API never redirects, so it was not followed")
            if stream:
                keep_armed = scope is not None  # disarmed when the caller's scope ends
            else:
                self._read_body(response, reg, cap, doing, call_deadline)
            return response
        except (ScanError, requests.exceptions.ConnectTimeout):
            raise  # a connect that timed out is an unreachable host, said by classify()
        except Exception as exc:
            if reg.expired or time.monotonic() >= call_deadline - 0.05:
                raise reg.error() from exc
            raise
        finally:
            _request.reset(token)
            if not keep_armed:
                self.watchdog.disarm(reg)

    def _read_body(self, response: requests.Response, reg: _Registration, cap: int, doing: str,
                   call_deadline: float) -> None:
        """Read the whole body in chunks, within the cap and the deadline; keep it as content."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            response.close()
            raise ResponseTooLarge(f"the Docker host's answer while {doing} is {_mib(int(declared))}, over the "
                                   f"limit of {_mib(cap)} per answer")
        body = bytearray()
        raw = response.raw
        try:
            while True:
                chunk = raw.read(_CHUNK, decode_content=False)
                if not chunk:
                    break
                body += chunk
                if len(body) > cap:
                    raise ResponseTooLarge(f"the Docker host's answer while {doing} exceeded the limit of "
                                           f"{_mib(cap)} per answer")
                if reg.expired or time.monotonic() >= call_deadline:
                    raise reg.error()
        except BaseException:
            response.close()
            if reg.expired:
                raise reg.error() from None
            raise
        if reg.expired:  # cut short by the watchdog: what we have is not the whole answer
            response.close()
            raise reg.error()
        response._content = bytes(body)
        response._content_consumed = True


def guard_of(api: Any) -> Guard | None:
    """The Guard installed on a docker-py APIClient (or DockerClient), if any."""
    return getattr(getattr(api, "api", api), "posture_guard", None)


def _recv(sock: Any, n: int) -> bytes:
    if hasattr(sock, "recv"):
        return sock.recv(n)
    return sock.read(n) or b""  # a file: socket.SocketIO, http.client's buffered reader, paramiko's


def hijacked_stream(sock: Any) -> Any:
    """What to read a hijacked stream (``exec_start(socket=True)``) from.

    docker-py hands out the raw socket under the HTTP response, but http.client may already
    have buffered the first bytes of the stream with the ``101`` headers: read through the
    response's buffered file when there is one, so those bytes are not lost."""
    response = getattr(sock, "_response", None)
    fp = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    return fp if fp is not None and hasattr(fp, "read") else sock


def read_multiplexed(sock: Any, *, max_bytes: int, doing: str) -> tuple[bytes, bytes]:
    """Read a hijacked, multiplexed Docker stream (exec/attach without a TTY) to its end.

    Returns (stdout, stderr). Reads at most ``max_bytes`` (else :class:`ResponseTooLarge`);
    call it inside :func:`api_call`, whose deadline bounds it (:class:`ScanTimeout`). Frames
    are parsed only once the stream ended, so a forged frame length costs nothing.
    """
    scope = _scope.get()
    raw = bytearray()
    try:
        while True:
            chunk = _recv(sock, _CHUNK)
            if not chunk:
                break
            raw += chunk
            if len(raw) > max_bytes:
                raise ResponseTooLarge(f"the Docker host's output while {doing} exceeded the limit of "
                                       f"{_mib(max_bytes)} per answer")
    except ScanError:
        raise
    except Exception:
        late = scope.expired() if scope is not None else None
        if late is not None:
            raise late.error() from None
        raise
    late = scope.expired() if scope is not None else None
    if late is not None:  # the watchdog cut the stream: it is incomplete
        raise late.error()
    out: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    view = memoryview(raw)
    i = 0
    while i + 8 <= len(raw):
        kind, length = struct.unpack(">BxxxL", view[i : i + 8])
        payload = view[i + 8 : i + 8 + length]
        if kind in out:
            out[kind] += payload
        i += 8 + length
    return bytes(out[1]), bytes(out[2])

"""bin/run: migrate, bootstrap, then serve the web app with a Celery worker and beat.

One command for a laptop or a single server. With no DATABASE_URL / CELERY_BROKER_URL it
runs on the embedded default (SQLite and a filesystem broker under var/); with them set it
uses PostgreSQL and Redis. Ctrl-C stops everything it started.

Start-up either succeeds, printing "posture is running", or stops whatever it had started
and exits non-zero with a one-line reason. To tell its own server from another one on the
same port, the launcher binds the listening socket itself, before doing anything else, and
hands that very socket to gunicorn (``--bind fd://N``): a taken port or a bad address fails
at once, and the readiness check can only reach our gunicorn. DEBUG is off unless
POSTURE_DEBUG=1 is set (settings.py)."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

#: Seconds the web server and the Celery worker each get to become ready.
READY_TIMEOUT = 120
#: Celery logs this line once the worker (and its embedded beat) consumes.
WORKER_READY = re.compile(r"celery@\S+ ready\.")


class StartupError(Exception):
    """Start-up cannot go on; the message is the one line the user sees."""


def parse_bind(bind: str) -> tuple[str, int]:
    """HOST:PORT (or [IPv6]:PORT) -> (host, port), refusing what cannot be an address.

    Dotted numbers are checked here rather than by the resolver, which would send
    "256.1.1.1" to DNS as a host name."""
    host, sep, port_text = bind.rpartition(":")
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise StartupError(f"POSTURE_BIND={bind!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
    if re.fullmatch(r"[\d.]+", host) or ":" in host:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise StartupError(f"POSTURE_BIND={bind!r}: {host} is not an IP address") from None
    return host, int(port_text)


def listen(bind: str) -> socket.socket:
    """The listening socket gunicorn will serve on, bound now so a taken port fails first."""
    host, port = parse_bind(bind)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise StartupError(f"POSTURE_BIND={bind!r}: cannot resolve {host} ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is no conflict
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"POSTURE_BIND={bind}: port {port} is already in use on {host} "
                               "(another posture or server?); stop it or set POSTURE_BIND to a free port") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(f"POSTURE_BIND={bind}: {host} is not an address of this machine") from None
        raise StartupError(f"POSTURE_BIND={bind}: cannot listen there ({exc.strerror})") from None
    sock.set_inheritable(True)
    return sock


def lock_var_dir(var_dir: Path) -> IO[str]:
    """Hold var/run.lock while running: a second bin/run on the same data would start a second
    worker and beat (with the port check, one on another port still would)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    handle = open(var_dir / "run.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise StartupError(f"another bin/run (pid {owner}) is using {var_dir}; stop it first") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise StartupError(f"{name}={raw!r} must be a whole number of at least 1")
    return int(raw)


class Child:
    """A process bin/run started, its output relayed line by line to ours."""

    def __init__(self, name: str, args: list[str], pass_fds: tuple[int, ...] = (), watch: re.Pattern | None = None,
                 cwd: Path | None = None, env: dict[str, str] | None = None):
        self.name = name
        self.ready = threading.Event()
        self.proc = subprocess.Popen(args, pass_fds=pass_fds, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     bufsize=0, cwd=cwd, env=env)
        self._watch = watch
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            if self._watch and self._watch.search(line.decode(errors="replace")):
                self.ready.set()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_reason(self) -> str:
        return f"the {self.name} exited with code {self.proc.returncode} (its log is above)"


def wait_web_ready(web: Child, sock: socket.socket, timeout: float = READY_TIMEOUT) -> None:
    """Until our gunicorn answers HTTP on the socket we gave it. The socket is ours (no other
    process can listen on that port while we hold it), so an answer is our server's."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if sock.family == socket.AF_INET else "::1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not web.alive():
            raise StartupError(web.exit_reason())
        try:
            with socket.create_connection((host, port), timeout=5) as conn:
                conn.sendall(f"GET /login/ HTTP/1.0\r\nHost: {'localhost' if host in ('127.0.0.1', '::1') else host}"
                             f"\r\n\r\n".encode())
                status = conn.recv(64).split(b" ", 2)
            if len(status) > 1 and status[1].isdigit():
                if int(status[1]) >= 500:
                    raise StartupError(f"the web server answers {int(status[1])} on /login/ (its log is above)")
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise StartupError(f"the web server did not answer within {timeout:.0f} s")


def stop(children: list[Child]) -> None:
    """Stop what we started, politely, then firmly."""
    for child in children:
        if child.alive():
            child.proc.terminate()
    for child in children:
        try:
            child.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def prepare() -> tuple[socket.socket, IO[str]]:
    """Settings, port, lock, database, static files, first-run set-up: nothing runs yet."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    bind = os.environ.get("POSTURE_BIND") or "127.0.0.1:8000"
    sock = listen(bind)  # before anything else: a taken port starts nothing
    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        raise StartupError(f"configuration error: {exc}") from None
    from django.conf import settings
    from django.core.management import call_command
    from django.db import DatabaseError

    lock = lock_var_dir(settings.VAR_DIR)
    db = settings.DATABASES["default"]
    print(f"database: {db['ENGINE'].rsplit('.', 1)[-1]}"
          f"{' (embedded, ' + str(db['NAME']) + ')' if not settings.DATABASE_URL else ''}")
    print(f"broker: {'embedded filesystem broker under ' + str(settings.VAR_DIR / 'broker') if settings.EMBEDDED_BROKER else settings.CELERY_BROKER_URL.split('@')[-1]}")
    try:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("bootstrap")
    except DatabaseError as exc:
        raise StartupError(f"database {db['NAME']}: {str(exc).strip().splitlines()[0]}") from None
    return sock, lock


def start(sock: socket.socket, children: list[Child]) -> None:
    """gunicorn on our socket, then the Celery worker with embedded beat; both must be ready."""
    python = sys.executable
    web_workers = positive_int("POSTURE_WEB_WORKERS", 2)
    workers = positive_int("POSTURE_WORKERS", 2)
    web = Child("web server", [python, "-m", "gunicorn", "posture.wsgi:application", "--bind", f"fd://{sock.fileno()}",
                               "--workers", str(web_workers), "--access-logfile", "-", "--no-control-socket"],
                pass_fds=(sock.fileno(),))
    children.append(web)
    wait_web_ready(web, sock)
    from django.conf import settings

    # The worker runs in var/, so nothing it writes relative to its working directory lands in
    # the checkout (kombu's filesystem broker control/ folder is set under var/broker in posture.celery).
    path = os.pathsep.join(filter(None, [str(settings.BASE_DIR), os.environ.get("PYTHONPATH")]))
    worker = Child("Celery worker", [python, "-m", "celery", "-A", "posture", "worker", "-B", "--loglevel", "INFO",
                                     "--concurrency", str(workers)], watch=WORKER_READY,
                   cwd=settings.VAR_DIR, env={**os.environ, "PYTHONPATH": path})
    children.append(worker)
    deadline = time.monotonic() + READY_TIMEOUT
    while not worker.ready.wait(0.2):
        for child in children:
            if not child.alive():
                raise StartupError(child.exit_reason())
        if time.monotonic() > deadline:
            raise StartupError(f"the Celery worker was not ready within {READY_TIMEOUT} s")


def main() -> int:
    children: list[Child] = []

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        sock, _lock = prepare()
        start(sock, children)
        bind = os.environ.get("POSTURE_BIND") or "127.0.0.1:8000"
        print(f"\nposture is running: http://{bind}/  (log in as admin; Ctrl-C stops it)\n", flush=True)
        while all(child.alive() for child in children):
            time.sleep(0.5)
        failed = next(child for child in children if not child.alive())
        raise StartupError(f"{failed.exit_reason()}; stopping")
    except StartupError as exc:
        print(f"posture: {exc}", file=sys.stderr, flush=True)
        stop(children)
        return 1
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(children)
        return 0


if __name__ == "__main__":
    sys.exit(main())

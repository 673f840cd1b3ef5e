"""The test command (bin/test runs it): provide real services, then run pytest.

- PostgreSQL: DATABASE_URL when given, else a throwaway cluster started with the local
  initdb/pg_ctl (removed afterwards). Without either the suite cannot run: we say so.
- Redis: REDIS_URL when given, else a private redis-server on a free port.
- Docker: the fixtures start private dockerd(s) themselves (tests/support/dockerd.py).
With CI=true a missing service is an error, never a skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

CI = os.environ.get("CI", "").lower() == "true"


def say(message: str) -> None:
    print(f"[test] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def find_pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


@contextmanager
def throwaway_postgres():
    initdb, pg_ctl = find_pg_bin("initdb"), find_pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise SystemExit(
            "[test] PostgreSQL is needed: set DATABASE_URL=postgres://USER@HOST:PORT/DB, or install the server "
            "(apt-get install postgresql) so the test command can start a throwaway cluster."
        )
    root = Path(tempfile.mkdtemp(prefix="posture-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres (or nobody) account
        account = "postgres" if _user_exists("postgres") else "nobody"
        shutil.chown(root, account)
        root.chmod(0o755)
        as_user = ["runuser", "-u", account, "--"]
    port = free_port()
    log = root / "log"
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or b"").decode(errors="replace")[-800:]
        if log.exists():
            tail += log.read_text(errors="replace")[-800:]
        shutil.rmtree(root, ignore_errors=True)
        raise SystemExit(f"[test] could not start a throwaway PostgreSQL: {tail}") from None
    say(f"throwaway PostgreSQL on 127.0.0.1:{port}")
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextmanager
def private_redis():
    server = shutil.which("redis-server")
    if not server:
        yield None
        return
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="posture-redis-")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_port(port):
            raise SystemExit("[test] redis-server did not start")
        say(f"private Redis on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def docker_status() -> str | None:
    """None when private daemons can be started, else what is missing."""
    if not (shutil.which("dockerd") or Path("/usr/sbin/dockerd").exists()):
        return "dockerd is not installed (apt-get install docker.io busybox-static)"
    if os.geteuid() != 0:
        return "dockerd needs root to start private daemons"
    if not (shutil.which("busybox") or Path("/bin/busybox").exists()):
        return "busybox is not installed (apt-get install busybox-static): it makes the base image"
    return None


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    with ExitStack() as stack:
        if os.environ.get("DATABASE_URL"):
            say("PostgreSQL from DATABASE_URL")
        else:
            os.environ["DATABASE_URL"] = stack.enter_context(throwaway_postgres())
        if os.environ.get("REDIS_URL"):
            say("Redis from REDIS_URL")
        else:
            url = stack.enter_context(private_redis())
            if url:
                os.environ["REDIS_URL"] = url
                os.environ.setdefault("CELERY_BROKER_URL", url.rsplit("/", 1)[0] + "/15")
            elif CI:
                raise SystemExit("[test] CI=true: Redis is needed (apt-get install redis-server, or set REDIS_URL)")
            else:
                say("Redis missing (apt-get install redis-server or set REDIS_URL): Celery tests will be skipped")
        problem = docker_status()
        if problem and CI:
            raise SystemExit(f"[test] CI=true: {problem}")
        say(f"Docker: {problem + '; Docker tests will be skipped' if problem else 'private daemons started by the fixtures'}")
        # Settings must not create keys in the checkout while testing.
        os.environ.setdefault("POSTURE_VAR_DIR", stack.enter_context(tempfile.TemporaryDirectory(prefix="posture-var-")))
        import pytest

        return int(pytest.main(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

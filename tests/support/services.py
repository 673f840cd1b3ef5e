"""pytest plugin: the real services the suite runs against (PostgreSQL, Redis, Celery).

bin/test (tests/support/runner.py) provides DATABASE_URL and REDIS_URL; run plain pytest
with them set yourself. A missing service fails under CI=true and skips, saying what to
install, otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]


def need(what: str, hint: str):
    """Fail under CI, skip elsewhere, always saying what is missing."""
    message = f"{what} is needed: {hint}"
    if CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def pytest_sessionstart(session):
    try:
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
    except Exception:  # Django not in play (e.g. -p no:django for pure scanner tests)
        return
    if "postgresql" not in engine:
        pytest.exit(
            "the suite runs on PostgreSQL: use bin/test (it starts a throwaway cluster) "
            "or set DATABASE_URL=postgres://USER@HOST:PORT/DB",
            returncode=2,
        )


def wait_until(predicate, timeout: float, what: str, procs=()):
    """Poll ``predicate`` until it returns something truthy (returned), or fail after
    ``timeout`` seconds naming ``what`` with the tail of each process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    logs = "\n".join(p.log()[-3000:] for p in procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        need("Redis", "run bin/test with redis-server installed, or set REDIS_URL")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        need("Redis", f"{url} does not answer ({exc})")
    return url


def database_url_of_test_db() -> str:
    """The URL of the test database pytest-django created, for worker subprocesses."""
    from django.db import connection

    s = connection.settings_dict
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{s['NAME']}"


class CeleryProcess:
    """A real `celery worker` or `celery beat` subprocess on the test database and Redis."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "posture", *args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"celery exited early:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"celery did not log {text!r} within {timeout}s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children): a crash."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@pytest.fixture
def celery_env(redis_url, tmp_path, transactional_db):
    """Environment for Celery subprocesses: the test database, a fresh Redis db, short leases."""
    from django.conf import settings

    broker = settings.CELERY_BROKER_URL
    _purge(broker)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "CELERY_BROKER_URL": broker,
        "POSTURE_VAR_DIR": str(tmp_path / "var"),
        "POSTURE_SCAN_LEASE": "4",
        "POSTURE_BEAT_SECONDS": "1",
        "POSTURE_BROKER_VISIBILITY_TIMEOUT": "6",
        "PYTHONUNBUFFERED": "1",
    }
    yield env
    _purge(broker)


def _purge(broker: str) -> None:
    """Drop queued and unacknowledged messages left by an earlier test (not other data)."""
    import redis

    client = redis.Redis.from_url(broker)
    for key in client.scan_iter("celery*"):
        client.delete(key)
    for key in ("unacked", "unacked_index", "unacked_mutex"):
        client.delete(key)


@pytest.fixture
def start_celery(celery_env, tmp_path):
    """Start celery workers/beat: start_celery("worker", "-c", "1") -> CeleryProcess."""
    procs: list[CeleryProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CeleryProcess:
        name = f"celery-{len(procs)}-{args[0]}.log"
        if "--loglevel" not in args:
            args = (*args, "--loglevel", "INFO")
        proc = CeleryProcess(list(args), {**celery_env, **(env or {})}, tmp_path / name)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()

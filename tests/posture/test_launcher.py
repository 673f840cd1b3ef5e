"""bin/run (posture.launcher) as a new user meets it, each run a real subprocess on the
embedded default in a private var dir: start-up fails loudly and leaves nothing running, a
second instance cannot hide behind the first, and the running site is not in DEBUG."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
#: What the test runner sets for the suite; a new user's bin/run has none of it.
OUTSIDE = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE",
           "DJANGO_ALLOW_ASYNC_UNSAFE")  # the browser tests set it in this process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTSIDE and not k.startswith("POSTURE_")}
    env.update(POSTURE_VAR_DIR=str(var_dir), POSTURE_WORKERS="1", POSTURE_WEB_WORKERS="1", PYTHONUNBUFFERED="1",
               **extra)
    return env


def session_members(sid: int) -> list[int]:
    """Live processes of a session: what a launcher started in its own session is still there."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class Launch:
    """One `manage.py run` (what bin/run execs) in its own session, output in files."""

    def __init__(self, tmp_path: Path, name: str, **env: str):
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "manage.py", "run"], cwd=ROOT, env=env, stdout=out,
                                         stderr=err, start_new_session=True)

    def log(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait_running(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while "posture is running" not in self.log():
            assert self.proc.poll() is None, f"bin/run exited {self.proc.returncode}:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"bin/run not running after {timeout} s:\n{self.log()[-4000:]}"
            time.sleep(0.3)

    def wait(self, timeout: float = 240) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        """SIGTERM to the launcher alone, as a service manager would: it stops its children."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(60)

    def cleanup(self) -> None:
        members = session_members(self.proc.pid)
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def launch(tmp_path):
    started: list[Launch] = []

    def start(name: str = "run", **env: str) -> Launch:
        run = Launch(tmp_path, name, **env)
        started.append(run)
        return run

    yield start
    for run in started:
        run.cleanup()


def test_it_refuses_a_bad_bind_address_before_starting_anything(tmp_path):
    var = tmp_path / "var"
    done = subprocess.run(["bin/run"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=fresh_env(var, POSTURE_BIND="256.1.1.1:8000", POSTURE_VENV=sys.prefix,
                                        PYTHON=sys.executable))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == "posture: POSTURE_BIND='256.1.1.1:8000': 256.1.1.1 is not an IP address"
    assert "posture is running" not in done.stdout
    assert not (var / "posture.sqlite3").exists()  # not even the database was touched


def test_it_names_a_missing_production_key_in_one_line(tmp_path):
    done = subprocess.run(["bin/run"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=fresh_env(tmp_path / "var", POSTURE_ENV="production", POSTURE_VENV=sys.prefix,
                                        PYTHON=sys.executable))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == (
        "posture: configuration error: POSTURE_ENV=production needs POSTURE_SECRET_KEY, POSTURE_ENCRYPTION_KEY "
        "(see .env.example)")
    assert "Traceback" not in done.stderr


def test_it_refuses_a_taken_port_and_leaves_nothing_running(tmp_path, launch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = launch(**fresh_env(tmp_path / "var", POSTURE_BIND=f"127.0.0.1:{port}"))
        assert run.wait() == 1
    assert run.err.read_text().strip().splitlines() == [
        f"posture: POSTURE_BIND=127.0.0.1:{port}: port {port} is already in use on 127.0.0.1 "
        "(another posture or server?); stop it or set POSTURE_BIND to a free port"]
    assert "posture is running" not in run.log()
    assert session_members(run.proc.pid) == []
    assert not (tmp_path / "var" / "posture.sqlite3").exists()


def test_it_stops_the_web_server_when_the_worker_cannot_start(tmp_path, launch):
    port = free_port()
    run = launch(**fresh_env(tmp_path / "var", POSTURE_BIND=f"127.0.0.1:{port}", CELERY_BROKER_URL="bogus://nowhere"))
    assert run.wait() == 1
    assert run.err.read_text().strip().splitlines()[-1].startswith("posture: the Celery worker exited with code")
    assert "posture is running" not in run.log()
    assert session_members(run.proc.pid) == []
    with socket.socket() as again:  # the web server let go of the port
        again.bind(("127.0.0.1", port))


def test_it_serves_without_debug_and_logs_each_request_once(tmp_path, launch):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    litter_before = (ROOT / "control").exists()
    run = launch(**fresh_env(tmp_path / "var", POSTURE_BIND=f"127.0.0.1:{port}"))
    run.wait_running()

    missing = requests.get(url + "/no-such-page/", timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "api/v1/" not in missing.text  # not the debug page
    assert requests.get(url + "/static/posture/site.css", timeout=10).status_code == 200  # whitenoise, DEBUG off

    password = re.search(r"created user admin with one-time password: (\S+)", run.log()).group(1)
    browser = requests.Session()
    browser.get(url + "/login/", timeout=10)
    logged_in = browser.post(url + "/login/", data={"username": "admin", "password": password,
                                                    "csrfmiddlewaretoken": browser.cookies["csrftoken"]}, timeout=10)
    assert logged_in.status_code == 200 and "admin" in logged_in.text
    bad = browser.post(url + "/api/v1/hosts/", json={}, headers={"X-CSRFToken": browser.cookies["csrftoken"]},
                       timeout=10)
    assert bad.status_code == 400

    # A second bin/run on the same port refuses at once; the first keeps serving.
    second = launch("second", **fresh_env(tmp_path / "var2", POSTURE_BIND=f"127.0.0.1:{port}"))
    assert second.wait() == 1 and "already in use" in second.err.read_text()
    assert session_members(second.proc.pid) == []
    # Nor does one on another port with the same data (it would add a second worker and beat).
    third = launch("third", **fresh_env(tmp_path / "var", POSTURE_BIND=f"127.0.0.1:{free_port()}"))
    assert third.wait() == 1
    assert third.err.read_text().strip().splitlines() == [
        f"posture: another bin/run (pid {run.proc.pid}) is using {tmp_path / 'var'}; stop it first"]
    assert session_members(third.proc.pid) == []
    assert requests.get(url + "/login/", timeout=10).status_code == 200

    assert run.stop() == 0
    assert session_members(run.proc.pid) == []
    log = run.log()
    assert log.count("Bad Request: /api/v1/hosts/") == 1, log[-4000:]
    assert log.count("Not Found: /no-such-page/") == 1, log[-4000:]
    assert litter_before or not (ROOT / "control").exists()  # the embedded broker's folders stay under var/
    assert (tmp_path / "var" / "broker" / "control").is_dir()

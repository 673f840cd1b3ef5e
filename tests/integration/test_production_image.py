"""The production image's steps, run here (no image can be built on this machine): static
files built by the Dockerfile's own RUN line, then the Dockerfile's CMD (gunicorn) with the
environment compose.yml gives `web`, serving the login page, hashed static files through
whitenoise, a login over plain HTTP and the API docs."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.fernet import Fernet
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

from tests.support.services import database_url_of_test_db

ROOT = Path(__file__).resolve().parents[2]
STATIC_HREF = re.compile(r'href="(/static/posture/site\.[0-9a-f]{12}\.css)"')


def dockerfile() -> tuple[dict[str, str], list[str], list[str]]:
    """(ENV, RUN commands, CMD) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    env: dict[str, str] = {}
    runs: list[str] = []
    cmd: list[str] = []
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(rest))
        elif word == "RUN":
            runs.append(rest.strip())
        elif word == "CMD":
            cmd = json.loads(rest)
    return env, runs, cmd


def env_file(path: Path) -> dict[str, str]:
    """VAR=value lines, as compose's env_file reads them (comments on lines of their own)."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {k.strip(): v for k, v in pairs}


def compose_environment(service: str) -> dict[str, str]:
    """The environment compose.yml sets for a service, ${VAR:-default} taken at its default."""
    spec = yaml.safe_load((ROOT / "compose.yml").read_text())["services"][service]
    env = spec.get("environment", {})
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image_env(tmp_path_factory) -> dict[str, str]:
    """The image's environment with its state dir moved under tmp and PATH finding our venv."""
    env, _, _ = dockerfile()
    assert env["POSTURE_VAR_DIR"] == "/var/lib/posture"
    assert "POSTURE_VAR_DIR" not in env_file(ROOT / ".env.example")  # .env must not move it
    outside = {k: v for k, v in os.environ.items() if not k.startswith("POSTURE_") and k not in
               ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env = {**outside, **env, "POSTURE_VAR_DIR": str(tmp_path_factory.mktemp("image") / "var-lib-posture")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


@pytest.fixture(scope="module")
def built_static(image_env) -> Path:
    """Static files, built by running the Dockerfile's static RUN line as it stands."""
    _, runs, _ = dockerfile()
    steps = [r for r in runs if "static" in r]
    assert len(steps) == 1, f"one RUN line should build static files: {runs}"
    assert "collectstatic" not in steps[0], "the Dockerfile should call bin/build-static, as this test does"
    done = subprocess.run(["sh", "-c", steps[0]], cwd=ROOT, env=image_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    root = Path(image_env["POSTURE_VAR_DIR"]) / "staticfiles"
    assert (root / "staticfiles.json").exists()
    return root


@pytest.fixture(scope="module")
def web(image_env, built_static, django_db_setup, django_db_blocker, tmp_path_factory):
    """The Dockerfile's CMD on a free 127.0.0.1 port with the environment compose gives `web`."""
    _, _, cmd = dockerfile()
    assert cmd[:2] == ["gunicorn", "posture.wsgi:application"]
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", *cmd[1:]]
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"
    args[args.index("--workers") + 1] = "2"
    with django_db_blocker.unblock():
        database = database_url_of_test_db()
    # As compose runs it: the image's ENV, then .env (copied from .env.example, keys filled
    # in), then the service's environment.
    dot_env = {**env_file(ROOT / ".env.example"),
               "POSTURE_SECRET_KEY": secrets.token_urlsafe(50), "POSTURE_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    env = {**image_env, **dot_env, **compose_environment("web"), "DATABASE_URL": database}
    env.pop("CELERY_BROKER_URL")  # redis://redis:6379 is compose's; no page here sends a task
    assert env["POSTURE_ENV"] == "production"
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"gunicorn exited:\n{log_path.read_text()[-3000:]}"
            try:
                requests.get(url + "/login/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
        yield url, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_it_serves_the_login_page_with_hashed_static_files(web):
    url, log_path = web
    page = requests.get(url + "/login/", timeout=10)
    assert page.status_code == 200, log_path.read_text()[-3000:]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    css = STATIC_HREF.search(page.text)
    assert css, page.text
    static = requests.get(url + css.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert static.status_code == 200 and static.headers["Content-Type"].startswith("text/css")
    assert "immutable" in static.headers["Cache-Control"]  # whitenoise, for a hashed name
    assert static.headers.get("Content-Encoding") == "gzip"
    assert "Missing staticfiles manifest" not in log_path.read_text()


@pytest.mark.django_db(transaction=True)
def test_it_logs_in_over_plain_http_with_composes_defaults(web):
    url, _ = web
    # Hashed as production hashes (the tests' fast MD5 hasher is not in production's list).
    User.objects.create(username="ada", is_superuser=True, is_staff=True,
                        password=PBKDF2PasswordHasher().encode("admin-pass-1", PBKDF2PasswordHasher().salt()))
    browser = requests.Session()
    browser.get(url + "/login/", timeout=10)
    token = browser.cookies["csrftoken"]
    answer = browser.post(url + "/login/", data={"username": "ada", "password": "admin-pass-1", "next": "/",
                                                 "csrfmiddlewaretoken": token},
                          headers={"Referer": url + "/login/"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]
    home = browser.get(url + "/", timeout=10)
    assert home.status_code == 200 and "ada" in home.text
    docs = browser.get(url + "/api/v1/docs/", timeout=10)
    assert docs.status_code == 200
    bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]*swagger-ui-bundle\.[0-9a-f]{12}\.js)"', docs.text)
    assert bundle, docs.text
    assert browser.get(url + bundle.group(1), timeout=10).status_code == 200


def test_it_answers_an_unknown_page_without_debug_detail(web):
    url, _ = web
    missing = requests.get(url + "/no-such-page/", timeout=10)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text and "api/v1/" not in missing.text

"""compose.yml as compose itself reads it (`docker-compose config`, or `docker compose config`):
start order after healthy services and finished migrations, a first login over plain HTTP,
the documented first-admin command and docker.sock group. No image is built or run here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.support.services import need

ROOT = Path(__file__).resolve().parents[2]
MIGRATED = {"db": {"condition": "service_healthy"}, "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"}}


def compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def compose_config(tmp_path: Path, dot_env: str = "", compose_text: str | None = None) -> dict:
    """The resolved configuration of compose.yml with .env copied from .env.example (+ dot_env)."""
    command = compose_command()
    if not command:
        need("docker compose", "apt-get install docker-compose (or the compose plugin)")
    (tmp_path / "compose.yml").write_text(compose_text or (ROOT / "compose.yml").read_text())
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + dot_env)
    done = subprocess.run([*command, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)["services"]


def test_it_starts_web_worker_and_beat_after_healthy_services_and_migrations(tmp_path):
    services = compose_config(tmp_path)
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == MIGRATED, name
    assert services["migrate"]["depends_on"] == {k: v for k, v in MIGRATED.items() if k != "migrate"}
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


def test_it_lets_a_first_run_log_in_over_plain_http(tmp_path):
    services = compose_config(tmp_path)
    for name in ("migrate", "web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["POSTURE_ENV"] == "production" and env["POSTURE_HTTPS"] == "false", name
        # A trailing "# comment" in .env.example would have become part of a value.
        assert not [k for k, v in env.items() if "#" in str(v)], env
        assert "POSTURE_VAR_DIR" not in env  # the image's /var/lib/posture stays in force
    behind_tls = compose_config(tmp_path, "POSTURE_HTTPS=true\n")
    assert behind_tls["web"]["environment"]["POSTURE_HTTPS"] == "true"


def test_it_documents_the_first_admin_and_the_docker_socket_group(tmp_path):
    text = (ROOT / "compose.yml").read_text()
    assert "docker compose run --rm web python manage.py createsuperuser" in text
    assert "stat -c %g /var/run/docker.sock" in text and "DOCKER_GID" in (ROOT / ".env.example").read_text()
    # The commented lines, uncommented as the note says, are valid and give the worker the group.
    enabled = re.sub(r"\n(\s*)# (- /var/run/docker.sock:\S+|group_add: .*)", r"\n\1\2", text)
    assert enabled != text
    worker = compose_config(tmp_path, "DOCKER_GID=998\n", enabled)["worker"]
    assert [str(g) for g in worker["group_add"]] == ["998"]
    assert any("/var/run/docker.sock" in str(v) for v in worker["volumes"])

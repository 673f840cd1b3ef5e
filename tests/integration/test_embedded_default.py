"""The embedded default a new user meets: no environment at all, SQLite and dev keys under
var/, and `migrate`, `addhost`, `scan` working; production refusing to start without keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "POSTURE_SECRET_KEY", "POSTURE_ENCRYPTION_KEY",
                "POSTURE_ENV", "DJANGO_SETTINGS_MODULE")


def manage(var_dir: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(POSTURE_VAR_DIR=str(var_dir), **extra_env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.docker
def test_it_migrates_registers_and_scans_with_no_environment(tmp_path, dockerd):
    var = tmp_path / "var"
    assert manage(var, "migrate", "-v0").returncode == 0
    assert (var / "posture.sqlite3").exists() and (var / "dev-keys.json").stat().st_mode & 0o777 == 0o600
    added = manage(var, "addhost", "local", dockerd.url)
    assert added.returncode == 0, added.stderr
    scan = manage(var, "scan", "local", "--json")
    assert scan.returncode == 0, scan.stderr
    doc = json.loads(scan.stdout)
    assert doc["state"] == "succeeded" and doc["results"]
    assert {"check", "controls", "resource_type", "resource", "status", "detail"} <= set(doc["results"][0])
    # The development keys are kept: a second process reads the same encrypted data.
    assert manage(var, "scan", "local").returncode == 0


def test_it_refuses_to_start_in_production_without_keys(tmp_path):
    result = manage(tmp_path, "check", POSTURE_ENV="production")
    assert result.returncode != 0
    assert "POSTURE_SECRET_KEY" in result.stderr and "POSTURE_ENCRYPTION_KEY" in result.stderr
    assert not (tmp_path / "dev-keys.json").exists()


def test_it_names_a_bad_setting(tmp_path):
    result = manage(tmp_path, "check", POSTURE_SCAN_TIMEOUT="soon")
    assert result.returncode != 0 and "POSTURE_SCAN_TIMEOUT='soon' is not a whole number" in result.stderr

"""Round trips for data migrations: go back to a migration, store rows the old way with the
historical models, migrate forward, check the result; on PostgreSQL in-process and on the
embedded SQLite default in a subprocess (its own settings, no DATABASE_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor

ROOT = Path(__file__).resolve().parents[2]


def roundtrip(before: list[tuple[str, str]], scenario: Callable[[Any], Any], check: Callable[[Any], None]) -> None:
    """Migrate back to ``before``, run ``scenario(historical apps)``, migrate to the latest and
    ``check(what the scenario returned)``; the database ends at the latest migration."""
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("posture")
    executor.migrate(before)
    try:
        executor.loader.build_graph()
        made = scenario(executor.loader.project_state(before).apps)
        MigrationExecutor(connection).migrate(latest)
        check(made)
    finally:
        MigrationExecutor(connection).migrate(latest)


def sqlite_roundtrip(before: list[tuple[str, str]], scenario: Callable[[Any], Any],
                     check: Callable[[Any], None]) -> None:  # pragma: no cover - runs in a subprocess
    """The same on a fresh SQLite database (called by :func:`run_on_sqlite`)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("migrate", "posture", before[0][1], verbosity=0)  # back, on empty tables
    made = scenario(MigrationExecutor(connection).loader.project_state(before).apps)
    call_command("migrate", verbosity=0)
    check(made)
    print("sqlite ok")


def run_on_sqlite(module: str, var_dir: Path) -> None:
    """Run ``module.sqlite_roundtrip()`` in a subprocess on the embedded SQLite default."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(POSTURE_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="posture.settings")
    code = f"from {module} import sqlite_roundtrip; sqlite_roundtrip()"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "sqlite ok" in run.stdout

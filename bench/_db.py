"""Shared by the benchmarks: a fresh, migrated posture_bench database and Django set up."""

from __future__ import annotations

import contextlib
import os
import tempfile


def setup_django(stack: contextlib.ExitStack) -> None:
    """DATABASE_URL's server (or a throwaway cluster, as the test command starts one) gets a
    new database posture_bench; Django is configured on it and migrated."""
    import psycopg2

    from tests.support import runner

    server = os.environ.get("DATABASE_URL") or stack.enter_context(runner.throwaway_postgres())
    admin = psycopg2.connect(server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS posture_bench")
        cur.execute("CREATE DATABASE posture_bench")
    admin.close()
    os.environ["DATABASE_URL"] = server.rsplit("/", 1)[0] + "/posture_bench"
    os.environ.setdefault("POSTURE_VAR_DIR", stack.enter_context(tempfile.TemporaryDirectory()))
    os.environ["DJANGO_SETTINGS_MODULE"] = "posture.settings"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

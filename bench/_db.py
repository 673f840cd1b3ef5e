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


def server_url(stack: contextlib.ExitStack) -> str:
    """DATABASE_URL's server, or a throwaway cluster for the length of the run."""
    from tests.support import runner

    return os.environ.get("DATABASE_URL") or stack.enter_context(runner.throwaway_postgres())


def database_url(server: str, name: str) -> str:
    return server.rsplit("/", 1)[0] + "/" + name


def admin_sql(server: str, *statements: str, fetch: bool = False):
    """Run statements on the server's maintenance database (outside any transaction:
    CREATE/DROP DATABASE); returns the last statement's rows when ``fetch``."""
    import psycopg2

    conn = psycopg2.connect(server)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def use_database(server: str, name: str) -> None:
    """Point Django (set up or not) at database ``name`` on ``server``."""
    url = database_url(server, name)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    import django
    from django.conf import settings

    if not settings.configured or not hasattr(django, "_posture_bench_ready"):
        os.environ.setdefault("POSTURE_VAR_DIR", tempfile.mkdtemp(prefix="posture-bench-"))
        django.setup()
        django._posture_bench_ready = True
    from django.db import connections

    connections.close_all()
    connections["default"].settings_dict["NAME"] = name

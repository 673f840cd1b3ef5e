#!/usr/bin/env python
"""Benchmark: the dashboard's pages on the seeded year, through Django's test client.

    .venv/bin/python bench/pages.py                          # the seeded year of bench/history.py
    .venv/bin/python bench/pages.py --hosts 4 --days 20      # a quick look on a small spec

The database is bench/history.py's: ``prepare()`` reuses the cached ``posture_history_<key>``
of the same options (seeding it first if it does not exist), so this never reseeds a year.

For each page: server time p50 / p95 over --runs requests (the first request warms caches and
is not timed) and the number of SQL queries one request runs, logged in as an auditor. The
requests run in-process (URL routing, middleware, view, template): what a gunicorn worker
spends, without the network. Pages: overview, hosts list, host detail, control detail (the
control failing on most hosts), findings (first page, and a deep page under filters),
a diff of two scans of a host a month apart (or the first and last of a shorter history), and
the overview as of 180 days before the last seeded day (the middle of a shorter history).
Target (issue 8): every page p95 < 300 ms, with a query count that does not grow with hosts
or scans.

Nothing is written: the auditor, their session and anything a request records live in one
transaction that is rolled back at the end."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import history  # noqa: E402

TARGET_MS = 300
CIS = "cis-docker-1.8.0"


class Rollback(Exception):
    """Raised to leave the benchmark's transaction without committing anything."""


def pages(spec) -> list[tuple[str, str]]:
    """(label, URL) of every page measured, chosen from the seeded data (read only)."""
    from posture.models import DockerHost, ScanRun
    from posture.queries.rollups import rollup

    last = datetime.combine(spec.last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    host = DockerHost.objects.filter(name__startswith=spec.prefix).order_by("name").first()
    if host is None:
        raise SystemExit("no seeded host: is this the seeded database?")
    fleet = rollup(CIS)
    worst = max(fleet.controls, key=lambda c: (c.hosts_failing, c.counts.get("fail", 0)))
    scans = list(ScanRun.objects.filter(host=host, state="succeeded").order_by("-finished_at", "-id")
                 .values_list("pk", "finished_at"))
    newest_id, newest_at = scans[0]
    older = next(((pk, at) for pk, at in scans if at <= newest_at - timedelta(days=30)), scans[-1])
    days_back = 180 if spec.days > 180 else spec.days // 2
    then = (last - timedelta(days=days_back)).isoformat().replace("+00:00", "Z")
    deep_filters = {"status": "fail", "severity": "high,critical", "resource_type": "container"}
    deep_count = _count_findings(deep_filters)
    deep_page = max(1, min(100, (deep_count + 49) // 50))
    return [
        ("overview", "/"),
        ("hosts list", "/hosts/"),
        (f"host detail ({host.name})", f"/hosts/{host.pk}/"),
        (f"control detail ({CIS} {worst.ref}, {worst.hosts_failing} hosts failing)", f"/controls/{CIS}/{worst.ref}/"),
        ("findings, first page", "/findings/"),
        (f"findings, page {deep_page} of fail+high/critical+container", "/findings/?" + urlencode({**deep_filters,
                                                                                                   "page": deep_page})),
        (f"diff of two scans {(newest_at - older[1]).days} days apart", f"/scans/{older[0]}/diff/{newest_id}/"),
        (f"overview as of T-{days_back} d", "/?" + urlencode({"at": then})),
    ]


def _count_findings(filters: dict[str, str]) -> int:
    from posture.queries.verdicts import findings

    return findings(status=filters["status"], severity=filters["severity"].split(","),
                    resource_type=filters["resource_type"]).count()


def count_queries(fn: Callable[[], object]) -> int:
    """SQL statements one call runs (counted at the cursor: independent of DEBUG's query log)."""
    from django.db import connection

    n = 0

    def counted(execute, sql, params, many, context):
        nonlocal n
        n += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):
        fn()
    return n


def request(client, url: str) -> Callable[[], object]:
    def get() -> object:
        response = client.get(url)
        if response.status_code != 200:
            raise AssertionError(f"{url} answered {response.status_code}")
        return response
    return get


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    history.add_spec_arguments(parser)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        server = history.server_url(stack)
        spec, _ = history.open_seeded(server, args)
        from django.contrib.auth.models import Group, User
        from django.db import connections, transaction
        from django.test import Client

        from posture.models import DockerHost, ScanRun

        hosts = DockerHost.objects.count()
        scans = ScanRun.objects.count()
        print(f"pages on {hosts} hosts, {scans} scans ({spec.hosts} x {spec.containers} containers x {spec.days} days); "
              f"p50 / p95 over {args.runs} requests, queries per request; target p95 < {TARGET_MS} ms")
        rows = []
        try:
            with transaction.atomic():
                reader = User.objects.create_user("bench-pages-reader", password=None)
                reader.groups.add(Group.objects.get_or_create(name="auditor")[0])
                client = Client(HTTP_HOST="localhost")
                client.force_login(reader)
                for label, url in pages(spec):
                    get = request(client, url)
                    count = count_queries(get)
                    p50, p95, _ = history.measure(get, args.runs)
                    rows.append((label, p50, p95, count))
                    print(f"   {label:62} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  {count:3d} queries"
                          f"{'' if p95 < TARGET_MS else '   OVER TARGET'}", flush=True)
                raise Rollback
        except Rollback:
            pass
        connections.close_all()
        print()
        print("| page | p50 ms | p95 ms | queries |")
        print("|---|---:|---:|---:|")
        for label, p50, p95, count in rows:
            print(f"| {label} | {p50:.0f} | {p95:.0f} | {count} |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    sys.exit(main())

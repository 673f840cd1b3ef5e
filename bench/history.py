#!/usr/bin/env python
"""Benchmark: a seeded year of fleet history on PostgreSQL, and the read side's queries on it.

    .venv/bin/python bench/history.py                        # 100 hosts x 50 containers x 20 images x 365 days
    .venv/bin/python bench/history.py --hosts 10 --days 60   # a quicker look
    .venv/bin/python bench/history.py --reseed               # ignore the cached database

Prints:
1. seed time (tests/support/seed.py: real write path, real evaluation with failure windows
   and daily rows; hosts split between --workers processes);
2. database size per table (pg_total_relation_size) and in total;
3. bytes added by an unchanged host-day and by a changed one (one more day seeded for every
   host on a scratch copy, table growth / hosts);
4. for each query of issue 7: p50/p95 over --runs runs and its query count. A query module
   that has not landed yet prints "not available yet".
Targets (issue 7): every query p95 < 100 ms with a query count that does not grow with hosts
or scans; fleet-wide operating effectiveness over 365 days < 2 s; an unchanged host-day
< 2 KB; the whole year < 2 GB.

Caching: the seeded database is kept as ``posture_history_<key>`` on the server (key: the
seed parameters) and dumped to var/bench/history-<key>.dump; a later run reuses the database
if the server still has it, else restores the dump, so re-running the queries never reseeds.
PostgreSQL: DATABASE_URL's server (keeps the database between runs), or a throwaway cluster
(the dump is the cache)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._db import admin_sql, database_url, server_url, use_database  # noqa: E402

CACHE_DIR = ROOT / "var" / "bench"
SCRATCH = "posture_history_scratch"
NOT_YET = (ImportError, AttributeError)


def spec_from(args):
    from tests.support.seed import SeedSpec

    return SeedSpec(hosts=args.hosts, containers=args.containers, images=args.images, days=args.days, seed=args.seed,
                    end=date.fromisoformat(args.end) if args.end else None, churn=args.churn, missed=args.missed,
                    exceptions=args.exceptions, attestations=args.attestations, failed_scans=args.failed_scans,
                    probe_failures=args.failed_scans, prefix="bench", workers=args.workers, history=args.history)


def cache_key(spec) -> str:
    """What decides the seeded rows (not the end date, the number of processes, or whether history
    was kept per evaluation or rebuilt per host: tests/posture/test_seed.py proves them equal)."""
    fields = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("end", "workers", "history")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


def seeded_end(server: str, name: str) -> date | None:
    """The last seeded day recorded on a complete cached database (None: absent or unfinished)."""
    rows = admin_sql(server, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'",
                     fetch=True)
    from tests.support.seed import SEED_VERSION

    if not rows or not rows[0][0] or not rows[0][0].startswith("seeded "):
        return None
    meta = json.loads(rows[0][0].removeprefix("seeded "))
    return date.fromisoformat(meta["end"]) if meta.get("version", 1) == SEED_VERSION else None


def existing(server: str, name: str, spec):
    """Use database ``name`` as it is (``--database``: e.g. a seed stopped part way); the spec
    says what it holds (hosts, days, last day), read from its scans."""
    use_database(server, name)
    from django.core.management import call_command
    from django.db.models import Max, Min

    from posture.models import DockerHost, ScanRun

    call_command("migrate", verbosity=1)
    span = ScanRun.objects.aggregate(first=Min("finished_at"), last=Max("finished_at"))
    if span["last"] is None:
        raise SystemExit(f"database {name} holds no scan")
    days = (span["last"].date() - span["first"].date()).days + 1
    hosts = DockerHost.objects.filter(name__startswith="bench-").count() or DockerHost.objects.count()
    print(f"using database {name} as it is: {hosts} hosts x {days} days "
          f"({span['first']:%Y-%m-%d} .. {span['last']:%Y-%m-%d}, {ScanRun.objects.count()} scans)")
    return dataclasses.replace(spec, hosts=hosts, days=days, end=span["last"].date())


def open_seeded(server: str, args) -> tuple[object, float | None]:
    """(spec, seed seconds or None): ``--database``'s database as it is, else the cached
    seeded database of the spec (seeding it when needed). Shared by every benchmark."""
    if getattr(args, "database", None):
        return existing(server, args.database, spec_from(args)), None
    return prepare(server, spec_from(args), args.reseed)


def prepare(server: str, spec, reseed: bool) -> tuple[object, float | None]:
    """The cached seeded database (seeding it if needed); returns (spec with its end, seed seconds)."""
    from django.core.management import call_command

    name = f"posture_history_{cache_key(spec)}"
    dump = CACHE_DIR / f"history-{cache_key(spec)}.dump"
    end = None if reseed else seeded_end(server, name)
    from tests.support.seed import SEED_VERSION

    stale = dump.exists() and json.loads(dump.with_suffix(".json").read_text()).get("version", 1) != SEED_VERSION
    if end is None and dump.exists() and not reseed and not stale:
        print(f"restoring {dump.name} ({dump.stat().st_size / 1e6:.0f} MB) ...", flush=True)
        admin_sql(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        t0 = time.perf_counter()
        subprocess.run(["pg_restore", "-j", "2", "-d", database_url(server, name), str(dump)], check=True)
        meta = json.loads((dump.with_suffix(".json")).read_text())
        admin_sql(server, f"COMMENT ON DATABASE {name} IS 'seeded {json.dumps(meta)}'")
        print(f"restored in {time.perf_counter() - t0:.0f}s (seeded originally in {meta['seconds']:.0f}s)")
        end = date.fromisoformat(meta["end"])
    if end is not None:
        use_database(server, name)
        call_command("migrate", verbosity=1)  # a database seeded before a migration is upgraded as production's would be
        meta = json.loads(admin_sql(server, f"SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                            f"WHERE datname = '{name}'", fetch=True)[0][0].removeprefix("seeded "))
        print(f"using the cached database {name} (seeded in {meta['seconds']:.0f}s; --reseed to redo)")
        return dataclasses.replace(spec, end=end), None
    admin_sql(server, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    use_database(server, name)
    call_command("migrate", verbosity=0)
    from tests.support.seed import seed

    spec = dataclasses.replace(spec, end=spec.last_day)
    print(f"seeding {spec.hosts} hosts x {spec.containers} containers x {spec.images} images x {spec.days} days "
          f"({spec.workers} processes) ...", flush=True)
    result = seed(spec)
    from django.db import connection, connections

    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    connections.close_all()
    meta = {"end": spec.end.isoformat(), "seconds": result.seconds, "scans": len(result.scans),
            "version": SEED_VERSION}
    admin_sql(server, f"COMMENT ON DATABASE {name} IS 'seeded {json.dumps(meta)}'")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pg_dump", "-Fc", "-Z", "3", "-f", str(dump), database_url(server, name)], check=True)
    dump.with_suffix(".json").write_text(json.dumps(meta))
    use_database(server, name)
    return spec, result.seconds


# --- sizes -------------------------------------------------------------------------------------

def table_sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                    "WHERE relkind = 'r' AND relname LIKE 'posture_%'")
        return dict(cur.fetchall())


def print_sizes() -> None:
    from django.db import connection

    sizes = table_sizes()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        total = cur.fetchone()[0]
    print("2. database size per table (pg_total_relation_size, data + indexes + TOAST):")
    for table, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        if size > 64 * 1024:
            print(f"   {table.removeprefix('posture_'):28} {size / 1e6:10.1f} MB")
    print(f"   {'posture tables':28} {sum(sizes.values()) / 1e6:10.1f} MB   | whole database {total / 1e6:.1f} MB"
          f"   target < 2 GB")


def host_day_bytes(server: str, cache: str, spec) -> None:
    """Seed one more day for every host on a scratch copy: unchanged, then one container
    redeployed on every host; table growth divided by the hosts."""
    from django.db import connection, connections

    from tests.support.seed import extend

    connections.close_all()
    admin_sql(server, f"DROP DATABASE IF EXISTS {SCRATCH}", f"CREATE DATABASE {SCRATCH} TEMPLATE {cache}")
    try:
        use_database(server, SCRATCH)
        for n, changed in enumerate((False, True)):
            with connection.cursor() as cur:
                cur.execute("CHECKPOINT")
            before = table_sizes()
            extend(spec, day=spec.days + n, changed=changed)
            after = table_sizes()
            grown = {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}
            top = ", ".join(f"{t.removeprefix('posture_')} {b / spec.hosts:.0f}"
                            for t, b in sorted(grown.items(), key=lambda kv: -kv[1]))
            label = "changed (one container redeployed)" if changed else "unchanged"
            target = "" if changed else "   target < 2 KB"
            print(f"3. bytes per {label} host-day: {sum(grown.values()) / spec.hosts:.0f}{target}  [{top}]")
    finally:
        connections.close_all()
        use_database(server, cache)
        admin_sql(server, f"DROP DATABASE IF EXISTS {SCRATCH}")


# --- queries -----------------------------------------------------------------------------------

def _p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(0.95 * len(values)) - 1))]


def measure(fn: Callable[[], object], runs: int, *, database: list[float] | None = None) -> tuple[float, float, int]:
    """(p50 ms, p95 ms, queries of one run); the first run warms caches and is not timed.
    ``database``, when given, receives each run's time inside the database (the sum of its
    queries' times as Django measures them: the issue's "at the database layer")."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as run:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        if database is not None:
            database.append(sum(float(q["time"]) for q in run.captured_queries) * 1000)
    return statistics.median(times), _p95(times), len(captured)


def uncached(how: str, fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with the read cache off ("computed"), or as it is ("cached")."""
    if how == "cached":
        return fn

    def call():
        from django.test.utils import override_settings

        with override_settings(POSTURE_READ_CACHE=False):
            return fn()
    return call


def queries(spec, runs: int) -> list[tuple[str, Callable[[], object]]]:
    """(label, call) of every query of the issue, each forcing its whole answer. A module or
    function that has not landed raises ImportError/AttributeError when called."""
    from django.utils import timezone

    from posture.models import DockerHost, FailureWindow, Framework, ScanRun

    now = timezone.now()
    t180 = now - timedelta(days=180)
    end = datetime.combine(spec.last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    frameworks = list(Framework.objects.order_by("slug").values_list("slug", flat=True))
    host = DockerHost.objects.filter(name__startswith="bench-").order_by("name").first()
    window = (FailureWindow.objects.filter(host=host, closed_scan__isnull=False).order_by("-opened_at")
              .values_list("check_id", "resource_type", "resource").first())
    scans = list(ScanRun.objects.filter(host=host, state="succeeded").order_by("-finished_at")
                 .values_list("pk", flat=True)[:31])

    def mod(name: str):
        import importlib

        return importlib.import_module(f"posture.queries.{name}")

    def findings(**filters):
        return mod("verdicts").findings(**filters)

    def page(qs, number: int, size: int = 50):
        """What a list page costs: its COUNT and its rows."""
        from django.core.paginator import Paginator

        pages = Paginator(qs, size)
        return pages.count, list(pages.page(min(number, pages.num_pages)).object_list)

    def effectiveness(days: int, only: list[str] | None = None):
        try:
            fn = mod("effectiveness").operating_effectiveness
        except ImportError:
            fn = mod("history").operating_effectiveness
        return [fn(f, (end - timedelta(days=days), end)) for f in only or frameworks]

    def trend(days: int):
        t = mod("trends")
        start, stop = t.last_days(days, spec.last_day)
        return [t.fleet_trend(f, start, stop) for f in frameworks]

    out: list[tuple[str, Callable[[], object]]] = [
        ("current scans, fleet, now", lambda: list(mod("scans").current_scans())),
        ("current scans, fleet, T-180 d", lambda: list(mod("scans").current_scans(at=t180))),
    ]
    # Rollups are cached on a key of what they stand on (posture/queries/rollups.py): timed
    # computed (POSTURE_READ_CACHE off) and as a repeated question costs (cached).
    for how in ("computed", "cached"):
        out += [
            (f"fleet posture now (every framework), {how}", uncached(how, lambda: mod("rollups").rollups(frameworks))),
            (f"fleet posture at T-180 d, {how}", uncached(how, lambda: mod("rollups").rollups(frameworks, at=t180))),
        ]
        out += [(f"control rollup, {f}, per host, {how}", uncached(how, lambda f=f: mod("rollups").host_rollups([f])))
                for f in frameworks]
    out += [
        ("findings page 1 (50) with its count", lambda: page(findings(), 1)),
        ("findings deep page (page 100) with filters, count",
         lambda: page(findings(status="fail", severity=["high", "critical"], resource_type="container"), 100)),
        ("findings page 1 at T-180 d (stored results)", lambda: page(findings(at=t180), 1)),
        ("one finding's windows", lambda: list(mod("history").failure_windows(
            host, check=window[0], resource=window[2], resource_type=window[1]))),
        ("365-day trend, fleet, every framework", lambda: trend(365)),
        ("operating effectiveness, 90 d, fleet, every framework", lambda: effectiveness(90)),
        ("operating effectiveness, 365 d, fleet, every framework", lambda: effectiveness(365)),
    ]
    # What a report reads: one framework's controls over the year (each framework timed).
    out += [(f"operating effectiveness, 365 d, fleet, {f}", lambda f=f: effectiveness(365, [f])) for f in frameworks]
    out += [
        ("diff of two scans a month apart", lambda: mod("diffs").diff_scans(scans[-1], scans[0])),
    ]
    return out


def print_queries(spec, runs: int, only: str | None = None) -> None:
    print(f"4. queries (p50 / p95 over {runs} runs, whole call and inside the database; queries per run):   "
          f"target p95 < 100 ms at the database layer "
          "(operating effectiveness 365 d < 2 s)")
    for label, fn in queries(spec, runs):
        if only and only not in label:
            continue
        try:
            in_db: list[float] = []
            p50, p95, count = measure(fn, runs, database=in_db)
        except NOT_YET as exc:
            print(f"   {label:55} not available yet ({type(exc).__name__}: {exc})")
            continue
        except Exception as exc:  # a query that landed with another signature: say so, go on
            print(f"   {label:55} FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}")
            from django.db import connection

            connection.close()
            continue
        print(f"   {label:55} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  {count:3d} queries"
              f"   database p50 {statistics.median(in_db):7.1f} ms  p95 {_p95(in_db):7.1f} ms")


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The seed spec's options (and --runs, --reseed), shared by every benchmark that reads the
    seeded year (bench/api.py, bench/pages.py), so that the same options name the same cached
    database."""
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--churn", type=float, default=0.03, help="share of containers redeployed per day")
    parser.add_argument("--missed", type=float, default=0.02, help="share of host-days without a scan")
    parser.add_argument("--exceptions", type=int, default=20)
    parser.add_argument("--attestations", type=int, default=6)
    parser.add_argument("--failed-scans", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", help="last seeded day, YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--workers", type=int, default=2, help="seeding processes (hosts are split between them)")
    parser.add_argument("--history", choices=("live", "rebuild"), default="live",
                        help="live: every evaluation keeps windows and daily rows, as a worker does; rebuild: once "
                             "per host after its scans, as reevaluate does (the same rows, ~25%% faster to seed)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reseed", action="store_true", help="seed again even if a cached database exists")
    parser.add_argument("--database", help="use this database as it is (no seeding; e.g. a seed stopped part way)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(parser)
    parser.add_argument("--skip-bytes", action="store_true", help="skip the host-day bytes (copies the database)")
    parser.add_argument("--only", help="time only the queries whose label contains this text (e.g. 'posture')")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        server = server_url(stack)
        spec, seconds = open_seeded(server, args)
        if seconds is not None:
            scans = spec.hosts * spec.days
            print(f"1. seed: {seconds:.0f}s for {spec.hosts} hosts x {spec.days} days (~{scans} scans, "
                  f"{seconds / scans * 1000:.0f} ms/scan, {spec.workers} processes)   target well under 30 min")
        print_sizes()
        if not args.skip_bytes and not args.database:
            host_day_bytes(server, f"posture_history_{cache_key(spec)}", spec)
        print_queries(spec, args.runs, args.only)
        from django.db import connections

        connections.close_all()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    sys.exit(main())

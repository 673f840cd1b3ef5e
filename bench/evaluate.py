#!/usr/bin/env python
"""Benchmark: evaluating stored evidence, re-evaluating history, and a whole scan.

    .venv/bin/python bench/evaluate.py [--containers 200] [--images 20] [--scans 1000] [--skip-docker] [--only N]

Prints:
1. evaluation of one stored scan of C containers and I images (built from JSON recorded from
   a real daemon, tests/fixtures/checks/snapshot.json, cloned to size): the checks alone, and
   evaluate_scan (checks + storing the content-addressed result set). Target: under 1 s.
2. `reevaluate --all` of S stored scans after a check version bump (10 hosts x S/10 days of
   20 containers, one container changing every 10th day), the way history is re-scored.
3. bytes a host-day adds (database size before and after, per table, live rows and indexes
   after VACUUM FULL, mean of 200 days): a daily rescan of an unchanged host of 50 containers
   and I images, and one where one container changed; each scan written by the worker's
   success path (evidence, chain link, counts, the log a scan of that size records) and
   evaluated (verdicts, memberships, failure windows, daily rows) as a worker would.
   Target: an unchanged host-day under 2 KB.
4. unless --skip-docker: the whole scan (collect + store + evaluate) of a private dockerd with
   C containers, next to a model of docker-bench-security on the same daemon: it runs one
   `docker inspect` process per container per section-5 check (about 28 of them), measured
   here by timing real `docker inspect --format` calls and multiplying (the tool itself
   cannot be fetched on this machine).
PostgreSQL: DATABASE_URL (a database posture_bench is created there) or a throwaway cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._db import setup_django  # noqa: E402

RECORDED = ROOT / "tests" / "fixtures" / "checks" / "snapshot.json"
DOCKER_BENCH_INSPECTS_PER_CONTAINER = 28


def grow(snapshot: dict, containers: int, images: int, salt: str = "") -> dict:
    """Clone recorded containers/images to the requested counts with distinct ids and names."""
    snap = copy.deepcopy(snapshot)
    base_c, base_i = snapshot["containers"], snapshot["images"]
    snap["containers"] = []
    for n in range(containers):
        c = copy.deepcopy(base_c[n % len(base_c)])
        c["id"] = f"{salt}{n:060x}".rjust(64, "0")[:64]
        c["name"] = f"{c['name']}-{n}"
        c["inspect"]["Id"], c["inspect"]["Name"] = c["id"], "/" + c["name"]
        snap["containers"].append(c)
    snap["images"] = []
    for n in range(images):
        i = copy.deepcopy(base_i[n % len(base_i)])
        i["id"] = "sha256:" + f"{n:064x}"
        i["tags"] = [f"bench/img{n}:1"]
        snap["images"].append(i)
    return snap


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def stored_scan(host, snapshot):
    from django.utils import timezone

    from posture.jobs import ingest
    from posture.models import ScanRun

    stored = ingest.store_snapshot(snapshot)
    now = timezone.now()
    return ScanRun.objects.create(host=host, state="succeeded", evidence_set=stored.evidence_set,
                                  started_at=now, finished_at=now)


def bench_one(recorded: dict, containers: int, images: int) -> None:
    from posture.jobs.evaluate import evaluate_scan
    from posture.jobs.ingest import load_snapshot
    from posture.models import DockerHost
    from scanners.runner import run_checks

    host = DockerHost.objects.create(name="eval-one", url="unix:///bench.sock")
    scan = stored_scan(host, grow(recorded, containers, images))
    snapshot, t_load = timed(lambda: load_snapshot(scan))
    findings, t_checks = timed(lambda: run_checks(snapshot))
    evaluation, t_eval = timed(lambda: evaluate_scan(scan))
    _, t_again = timed(lambda: evaluate_scan(scan))
    print(f"1. one stored scan, {containers} containers + {images} images: {len(findings)} findings")
    print(f"   load evidence {t_load:.3f}s | checks {t_checks:.3f}s | evaluate_scan (load+checks+store) "
          f"{t_eval:.3f}s | again (result set reused) {t_again:.3f}s   target < 1 s")


def bench_reevaluate(recorded: dict, scans: int) -> None:
    from django.core.management import call_command

    import posture.jobs.evaluate as evaluate
    from posture.models import DockerHost, ScanRun

    hosts, days = 10, max(1, scans // 10)
    t0 = time.perf_counter()
    for h in range(hosts):
        host = DockerHost.objects.create(name=f"fleet-{h}", url=f"unix:///fleet{h}.sock")
        for d in range(days):
            version = d // 10  # one container changes every 10th day
            snap = grow(recorded, 20, 5, salt=f"{h:02x}")
            snap["containers"][0]["inspect"]["Config"]["Labels"] = {"release": str(version)}
            stored_scan(host, snap)
    print(f"2. stored {ScanRun.objects.count()} scans ({hosts} hosts x {days} days) in {time.perf_counter() - t0:.1f}s")
    # A check changed: new engine version, nothing can be reused from earlier evaluations.
    evaluate.engine_version.cache_clear()
    original = evaluate.engine_version
    bumped = __import__("hashlib").sha256(("bench" + original()).encode()).hexdigest()
    evaluate.engine_version = lambda: bumped
    _, t = timed(lambda: call_command("reevaluate", "--all", stdout=io.StringIO()))
    evaluate.engine_version = original
    print(f"   reevaluate --all after a check change: {t:.2f}s ({t / max(1, ScanRun.objects.count()) * 1000:.1f} ms/scan)")


def _table_sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                    "WHERE relkind = 'r' AND relname LIKE 'posture_%'")
        return dict(cur.fetchall())


def realistic_log(images: int, containers: int, url: str) -> list[str]:
    """The progress lines a worker's heartbeat records for a scan of this size: the very
    messages of the collectors (``inspect_all`` with a stand-in fetch), stamped the same way."""
    from django.utils import timezone

    from scanners.collectors._common import inspect_all

    lines: list[str] = []

    def say(message: str) -> None:
        lines.append(f"{timezone.now().strftime('%H:%M:%S')} {message}")

    say(f"attempt 1 on celery@posture-worker-1: connecting to {url}")
    inspect_all([f"i{n}" for n in range(images)], lambda _i: {}, kind="image", deadline=None, progress=say)
    inspect_all([f"c{n}" for n in range(containers)], lambda _c: {}, kind="container", deadline=None, progress=say)
    say(f"collected {images} images, {containers} containers; storing")
    return lines


def bench_host_day_bytes(recorded: dict, containers: int, images: int, days: int = 200) -> None:
    """Bytes per host-day, unchanged and with one changed container (table growth / days).

    Each day's scan is written by the worker's own success path (``_store_success``: evidence,
    chain link, counts, the log of a scan of this size) and evaluated as a worker would
    (verdicts, memberships, failure windows, daily rows). Tables are compacted (VACUUM FULL)
    before each measurement: a scan row is updated while it runs, and the dead versions it
    leaves are reclaimed by autovacuum and reused by later rows in a running database, so
    they are not what a year of history costs; what is measured is live rows and indexes."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from posture.jobs import scans as scan_jobs
    from posture.jobs.evaluate import evaluate_scan
    from posture.models import DockerHost, ScanRun

    start = timezone.now() - timedelta(days=2 * days)
    url = "tcp://docker-host-042.example.internal:2376"

    def vacuum() -> None:
        with connection.cursor() as cur:
            cur.execute("VACUUM FULL")

    def dated_scan(host, snap, d: int):
        scan = ScanRun.objects.create(host=host, trigger="schedule", state="running", attempts=1,
                                      started_at=start + timedelta(days=d), worker="celery@posture-worker-1")
        assert scan_jobs._store_success(scan, snap, realistic_log(images, containers, url))
        ScanRun.objects.filter(pk=scan.pk).update(finished_at=start + timedelta(days=d, seconds=5))
        scan.refresh_from_db()
        evaluate_scan(scan)
        return scan

    def day_scans(host, salt: str, change: bool) -> dict[str, float]:
        vacuum()
        before = _table_sizes()
        for d in range(1, days + 1):
            snap = grow(recorded, containers, images, salt=salt)
            if change:  # one container changes every day: a new release with new verdicts
                c = snap["containers"][d % containers]["inspect"]
                c["Config"]["Labels"] = {"release": str(d)}
                c["HostConfig"]["Memory"] = 1024 * 1024 * (d + 1)  # the memory check's detail names it
            dated_scan(host, snap, d)
        vacuum()
        after = _table_sizes()
        return {t: (after.get(t, 0) - before.get(t, 0)) / days for t in after if after.get(t, 0) != before.get(t, 0)}

    for label, salt, change in (("unchanged", "a1", False), ("changed", "b2", True)):
        host = DockerHost.objects.create(name=f"bytes-{label}", url=url)
        dated_scan(host, grow(recorded, containers, images, salt=salt), 0)
        per_table = day_scans(host, salt, change)
        last = ScanRun.objects.filter(host=host).order_by("-id").first()
        log_bytes = len(json.dumps(last.log))
        top = ", ".join(f"{t.removeprefix('posture_')} {b:.0f}" for t, b in
                        sorted(per_table.items(), key=lambda kv: -kv[1]))
        groups = {name: sum(b for t, b in per_table.items() if t.removeprefix("posture_") in tables)
                  for name, tables in HOST_DAY_GROUPS.items()}
        print(f"3. bytes per {label} host-day ({containers} containers + {images} images, mean of {days} days): "
              f"{sum(per_table.values()):.0f}  [{top}]")
        print(f"   by kind: {', '.join(f'{name} {b:.0f}' for name, b in groups.items())}; a scan's log: "
              f"{len(last.log)} lines, {log_bytes} B of JSON")


#: Section 3's tables by what they hold.
HOST_DAY_GROUPS = {
    "evidence": ("evidence", "evidenceset", "evidencesetitem"),
    "results": ("resultchunk", "checkresult", "resultset", "resultsetchunk", "evaluation"),
    "history": ("failurewindow", "dailyposture"),
    "scan row": ("scanrun",),
}


def bench_whole_scan(containers: int) -> None:
    from django.conf import settings

    from posture.jobs.scans import execute_scan
    from posture.models import DockerHost, ScanRun
    from tests.support.dockerd import PrivateDaemon, make_base_image

    with PrivateDaemon(prefix="pe") as daemon:
        client = daemon.client(timeout=120)
        base = make_base_image(client)
        api = client.api
        for i in range(containers):
            cid = api.create_container(base, command=["sleep", "3600"], name=f"c{i}",
                                       host_config=api.create_host_config(network_mode="none"))["Id"]
            if i % 2 == 0:
                api.start(cid)
        host = DockerHost.objects.create(name="whole", url=daemon.url)
        scan = ScanRun.objects.create(host=host)
        result, t_scan = timed(lambda: execute_scan(scan.pk, worker="bench"))
        assert result.scan.state == "succeeded", result.scan.error
        docker_cli = shutil.which("docker")
        ids = [c["Id"] for c in api.containers(all=True)][:20]
        client.close()
        if not docker_cli:
            print(f"4. whole scan of {containers} containers: {t_scan:.2f}s (no docker CLI to model docker-bench)")
            return
        env = {**os.environ, "DOCKER_HOST": daemon.url}
        t0 = time.perf_counter()
        for cid in ids:
            subprocess.run([docker_cli, "inspect", "--format", "{{ .HostConfig.Privileged }}", cid], env=env,
                           check=True, capture_output=True)
        per_call = (time.perf_counter() - t0) / len(ids)
        model = per_call * containers * DOCKER_BENCH_INSPECTS_PER_CONTAINER
        print(f"4. whole scan (collect + store + evaluate) of {containers} containers: {t_scan:.2f}s")
        print(f"   docker-bench-security model: {containers} x {DOCKER_BENCH_INSPECTS_PER_CONTAINER} `docker inspect` "
              f"x {per_call * 1000:.0f} ms = {model:.0f}s  (posture is {model / t_scan:.0f}x faster)")
    del settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--scans", type=int, default=1000)
    parser.add_argument("--host-day-containers", type=int, default=50, help="containers of the host-day figures")
    parser.add_argument("--skip-docker", action="store_true")
    parser.add_argument("--only", type=int, choices=[1, 2, 3, 4], help="run this section only")
    args = parser.parse_args()
    recorded = json.loads(RECORDED.read_text())
    with contextlib.ExitStack() as stack:
        setup_django(stack)
        sections = {args.only} if args.only else {1, 2, 3, 4}
        if 1 in sections:
            bench_one(recorded, args.containers, args.images)
        if 2 in sections:
            bench_reevaluate(recorded, args.scans)
        if 3 in sections:
            bench_host_day_bytes(recorded, args.host_day_containers, args.images)
        if 4 in sections and not args.skip_docker:
            bench_whole_scan(args.containers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

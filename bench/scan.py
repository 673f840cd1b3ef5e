#!/usr/bin/env python
"""Benchmark: collection time against the bare Docker API floor, and storage of rescans.

    .venv/bin/python bench/scan.py [--containers 50 200] [--images 20] [--rescans 10]

Starts a private dockerd (root, docker.io and busybox-static needed), builds N images and
creates M containers (half of them running), then for each M prints:
- floor: the bare low-level API calls a collection needs, made one after the other with no
  processing (info, version, image list + inspect + history each, container list + inspect each);
- collect: one full scanners.collect() (redaction, sanitizing, thread-pooled inspects);
- ratio collect/floor (target <= 1.5);
- database bytes of the first stored scan and those added by R unchanged rescans (target < 10%),
  and per rescan: live rows and indexes, measured after VACUUM FULL (a running scan row is
  updated by its heartbeat; autovacuum reclaims those dead versions for later rows).
PostgreSQL: DATABASE_URL (a database named posture_bench is created on that server) or a
throwaway cluster, as the test command does.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._db import setup_django  # noqa: E402


def best_of(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def floor_calls(api) -> None:
    api.info()
    api.version()
    for img in api.images():
        api.inspect_image(img["Id"])
        api.history(img["Id"])
    for c in api.containers(all=True):
        api.inspect_container(c["Id"])


def build_images(client, base: str, n: int) -> None:
    for i in range(n):
        dockerfile = (f"FROM {base}\nLABEL bench.image={i}\nENV BENCH_INDEX={i} API_TOKEN=bench-secret-{i}\n"
                      f"RUN echo {i} > /tmp/marker\nUSER 65534\n").encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
        buf.seek(0)
        client.images.build(fileobj=buf, custom_context=True, tag=f"bench/img{i}:1", rm=True, pull=False)


def ensure_containers(api, images: list[str], total: int) -> None:
    existing = api.containers(all=True, filters={"label": "bench=1"})
    for i in range(len(existing), total):
        cid = api.create_container(
            images[i % len(images)], command=["sleep", "3600"], name=f"bench-{i}", labels={"bench": "1"},
            environment=[f"INDEX={i}", "DB_PASSWORD=bench-pw"],
            host_config=api.create_host_config(network_mode="none", mem_limit="32m", read_only=bool(i % 2)),
        )["Id"]
        if i % 2 == 0:
            api.start(cid)


def table_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("VACUUM FULL")
        cur.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' "
            "AND c.relname LIKE 'posture\\_%'"
        )
        return int(cur.fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--rescans", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="timing runs (best is printed)")
    args = parser.parse_args()

    from tests.support.dockerd import PrivateDaemon, make_base_image

    with contextlib.ExitStack() as stack:
        setup_django(stack)
        from posture.jobs.scans import execute_scan
        from posture.models import DockerHost, ScanRun
        from scanners.client import HostConfig, open_client
        from scanners.collect import collect

        daemon = stack.enter_context(PrivateDaemon(prefix="pb"))
        client = daemon.client(timeout=120)
        base = make_base_image(client)
        t0 = time.perf_counter()
        build_images(client, base, args.images)
        images = [f"bench/img{i}:1" for i in range(args.images)]
        print(f"setup: {args.images} images built in {time.perf_counter() - t0:.1f}s")
        print(f"{'containers':>10} {'floor s':>8} {'collect s':>9} {'ratio':>6} {'1st scan KiB':>12} "
              f"{'+' + str(args.rescans) + ' rescans KiB':>16} {'share':>6} {'B/rescan':>8}")
        for n in sorted(args.containers):
            ensure_containers(client.api, images, n)
            floor = best_of(lambda: floor_calls(client.api), args.runs)
            with open_client(HostConfig(url=daemon.url, timeout=120)) as c:
                coll = best_of(lambda: collect(c), args.runs)
            host = DockerHost.objects.create(name=f"bench-{n}", url=daemon.url)
            before = table_bytes()
            scan = ScanRun.objects.create(host=host)
            assert execute_scan(scan.pk, worker="bench").scan.state == "succeeded"
            first = table_bytes() - before
            mid = table_bytes()
            for _ in range(args.rescans):
                s = ScanRun.objects.create(host=host)
                assert execute_scan(s.pk, worker="bench").scan.state == "succeeded"
            added = table_bytes() - mid
            print(f"{n:>10} {floor:>8.3f} {coll:>9.3f} {coll / floor:>6.2f} {first / 1024:>12.0f} "
                  f"{added / 1024:>16.1f} {added / first:>6.1%} {added / args.rescans:>8.0f}")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark: the REST API on the seeded year, over HTTP, against gunicorn with 2 workers.

    .venv/bin/python bench/history.py                       # seed (or reuse) the year first
    .venv/bin/python bench/api.py                           # 100 hosts x 365 days (issue 10)
    .venv/bin/python bench/api.py --hosts 4 --days 20       # a quick look (seed it with history.py first)

Reads the cached database bench/history.py seeded for the same parameters
(``posture_history_<key>``; it refuses to seed or restore one itself, so it never touches a
database being seeded), starts ``gunicorn posture.wsgi`` with 2 workers on 127.0.0.1 against
it, makes a throwaway auditor and personal token, and prints, for 1 and 20 concurrent clients
(keep-alive connections, one thread each), p50/p95 latency and requests per second of:

- findings, filtered (failing, critical or high), first page;
- findings, failing, a deep page (90 % of the way through);
- posture summary now, and ``?at=`` 180 days ago (or half-way back on a shorter seed);
- the fleet's control rollup (``/controls/?framework=cis-docker-1.8.0``).

Target (issue 10): p95 under 200 ms at 20 clients. API throttling is switched off for the
server it starts (it would answer 429 to one user making thousands of requests). The token,
its user and their audit events are deleted at the end: the cached database is left as found
(``last_used_at`` is written to the token row only, which goes too)."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._db import database_url, server_url  # noqa: E402
from bench.history import add_spec_arguments, cache_key, open_seeded, seeded_end, spec_from  # noqa: E402

CLIENTS = (1, 20)
TARGET_P95_MS = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(db_url: str, port: int, workers: int = 2):
    """gunicorn serving posture on 127.0.0.1:port until the block ends (stopped by its pid)."""
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "posture.settings",
           "POSTURE_API_THROTTLE_USER": "off", "POSTURE_API_THROTTLE_ANON": "off", "POSTURE_LOG_LEVEL": "WARNING"}
    cmd = [str(Path(sys.executable).with_name("gunicorn")), "posture.wsgi", "-w", str(workers), "-b",
           f"127.0.0.1:{port}", "--log-level", "warning", "--access-logfile", "/dev/null"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                conn.getresponse().read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.3)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def bench_token():
    """A throwaway auditor and its token; deleted with its audit events afterwards."""
    from django.contrib.auth.models import Group, User

    from posture import roles
    from posture.jobs.tokens import create_token
    from posture.models import ApiToken, AuditEvent

    AuditEvent.objects.filter(actor_label="bench-api").delete()  # left by a run killed before its cleanup
    User.objects.filter(username="bench-api").delete()
    user = User.objects.create_user("bench-api", password=None)
    group, made_group = Group.objects.get_or_create(name=roles.AUDITOR)
    user.groups.add(group)
    try:
        yield create_token(user, "bench/api.py").token
    finally:
        AuditEvent.objects.filter(actor_label="bench-api").delete()
        ApiToken.objects.filter(owner=user).delete()
        user.delete()
        if made_group:
            group.delete()


def get_json(port: int, token: str, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return json.loads(body)


def load(port: int, token: str, path: str, clients: int, requests: int) -> tuple[list[float], float]:
    """``requests`` GETs of ``path`` shared by ``clients`` threads, each on its own keep-alive
    connection; (latencies in ms, wall seconds). Any answer but 200 stops the run."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    headers = {"Authorization": f"Bearer {token}"}

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - t0) * 1000)
            if response.status != 200:
                errors.append(f"{response.status} for {path}")
                break
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in per_client]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(errors[0])
    return latencies, wall


def p(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(parser)
    parser.add_argument("--requests", type=int, default=200, help="requests per workload and client count")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (token, gunicorn) when stopped
    with contextlib.ExitStack() as stack:
        server = server_url(stack)
        name = args.database or f"posture_history_{cache_key(spec_from(args))}"
        if not args.database and seeded_end(server, name) is None:
            print(f"{name} is not a completely seeded database: run bench/history.py with the same parameters first "
                  "(this benchmark never seeds, restores or drops one), or name one with --database", file=sys.stderr)
            return 2
        args.reseed = False
        spec, _ = open_seeded(server, args)
        from django.db import connections
        from django.utils import timezone

        from posture.models import DockerHost

        hosts = DockerHost.objects.count()
        back = min(180, max(1, spec.days // 2))
        at = (timezone.now() - timedelta(days=back)).replace(microsecond=0).isoformat()
        token = stack.enter_context(bench_token())
        connections.close_all()  # gunicorn's workers open their own
        port = free_port()
        stack.enter_context(gunicorn(database_url(server, name), port, args.gunicorn_workers))
        serious = {"status": "fail", "severity": "critical,high"}
        count = get_json(port, token, "/api/v1/findings/?status=fail")["count"]
        pages = (count + 49) // 50
        deep = max(1, int(pages * 0.9))
        workloads = [
            ("findings, failing critical/high, page 1", "/api/v1/findings/?" + urlencode(serious)),
            (f"findings, failing, page {deep} of {pages}", "/api/v1/findings/?" + urlencode({"status": "fail",
                                                                                         "page": deep})),
            ("posture summary, now", "/api/v1/posture/"),
            (f"posture summary, ?at= {back} days ago", "/api/v1/posture/?" + urlencode({"at": at})),
            ("control rollup, fleet, cis-docker-1.8.0", "/api/v1/controls/?framework=cis-docker-1.8.0"),
        ]
        print(f"\nAPI on {name}: {hosts} hosts, {spec.days} days; gunicorn -w {args.gunicorn_workers} on 127.0.0.1; "
              f"{args.requests} requests per line after 5 warm-up requests; {count} failing findings")
        worst = 0.0
        for clients in CLIENTS:
            print(f"\n{clients} concurrent client{'s' if clients > 1 else ''}:")
            for label, path in workloads:
                load(port, token, path, 1, 5)  # warm both workers' caches
                latencies, wall = load(port, token, path, clients, args.requests)
                p95 = p(latencies, 0.95)
                if clients == max(CLIENTS):
                    worst = max(worst, p95)
                print(f"   {label:<48} p50 {statistics.median(latencies):7.1f} ms  p95 {p95:7.1f} ms  "
                      f"{len(latencies) / wall:6.1f} req/s")
        verdict = "met" if worst < TARGET_P95_MS else "NOT met"
        print(f"\nworst p95 at {max(CLIENTS)} clients: {worst:.0f} ms (target < {TARGET_P95_MS} ms: {verdict})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    sys.exit(main())

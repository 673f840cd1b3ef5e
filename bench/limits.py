#!/usr/bin/env python
"""Benchmark: how a scan ends against hostile Docker hosts, and what it costs in memory.

    .venv/bin/python bench/limits.py [--deadline 5] [--megabytes 400]

Each case is a tests.support.fake_docker endpoint (unix socket or 127.0.0.1) scanned once in
a fresh process (tests.support.scan_once) with a per-call timeout of 30 s and a scan deadline
of --deadline seconds; it prints the error the scan ended with, the wall time, and the
growth of the scanning process's peak RSS. Targets: trickles end within about the deadline,
huge answers cost well under 100 MB whatever their size.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fake_docker import FakeDocker, Huge, Trickle  # noqa: E402
from tests.support.scan_once import scan_once  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=5.0)
    parser.add_argument("--megabytes", type=int, default=400)
    args = parser.parse_args()
    mb = args.megabytes
    cases = [
        ("/info trickled 1 B/s, unix", {"/info": Trickle(interval=1.0)}, False),
        ("/info trickled 1 B/s, tcp", {"/info": Trickle(interval=1.0)}, True),
        ("/info headers trickled, tcp", {"/info": Trickle(interval=0.2, headers_too=True)}, True),
        (f"/_ping {mb} MB, content-length", {"/_ping": Huge(mb)}, False),
        (f"/_ping {mb} MB, chunked", {"/_ping": Huge(mb, chunked=True)}, False),
        (f"/info {mb} MB, chunked", {"/info": Huge(mb, chunked=True)}, True),
        (f"/containers/json {mb} MB", {"/containers/json": Huge(mb)}, False),
    ]
    print(f"{'case':34} {'ended with':18} {'seconds':>8} {'RSS growth MB':>14}")
    for name, routes, tcp in cases:
        with FakeDocker(routes, tcp=tcp) as fake:
            r = scan_once(fake.url, "--deadline", str(args.deadline), timeout=args.deadline + 120)
        print(f"{name:34} {r['error_type'] or 'ok':18} {r['elapsed']:8.1f} {r['growth_kb'] / 1024:14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Collect one snapshot in a fresh process and report how it ended, how long it took and how
much memory it grew by: for limit tests (a huge answer must not cost its size in RSS) and
for benches.

    python -m tests.support.scan_once URL [--timeout S] [--deadline S] [--max-bytes N]

prints one JSON line: ``{"ok", "error_type", "error", "elapsed", "rss_before_kb",
"peak_rss_kb", "growth_kb"}``. ``growth_kb`` is the process's peak RSS during the scan minus
its RSS just before connecting (imports done), so it measures the scan alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _status_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak of this program: unlike ``ru_maxrss``, which Linux carries
    over from the forking parent across execve, it starts afresh with the new program)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call limit (HostConfig.timeout)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds from now for the scan deadline")
    parser.add_argument("--max-bytes", type=int, default=None, help="HostConfig.max_response_bytes")
    args = parser.parse_args(argv)

    from scanners.client import HostConfig, open_client
    from scanners.collect import collect

    cfg = HostConfig(url=args.url, timeout=args.timeout)
    if args.max_bytes:
        cfg.max_response_bytes = args.max_bytes
    before = _status_kb("VmRSS")
    t0 = time.monotonic()
    result: dict[str, Any] = {"ok": True, "error_type": None, "error": None}
    try:
        deadline = time.monotonic() + args.deadline
        with open_client(cfg, deadline=deadline) as client:
            collect(client, deadline=deadline)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        result.update(ok=False, error_type=type(exc).__name__, error=str(exc))
    peak = _status_kb("VmHWM")
    result.update(elapsed=round(time.monotonic() - t0, 2), rss_before_kb=before, peak_rss_kb=peak,
                  growth_kb=max(0, peak - before))
    print(json.dumps(result), flush=True)
    return 0


def scan_once(url: str, *extra: str, timeout: float = 120) -> dict[str, Any]:
    """Run this module in a subprocess (from the repository root) and return its report."""
    done = subprocess.run([sys.executable, "-m", "tests.support.scan_once", url, *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not done.stdout.strip():
        raise AssertionError(f"scan_once failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python
"""Benchmark: the auditor exports on the seeded year (bench/history.py's cached database).

    .venv/bin/python bench/exports.py                        # the seeded year: 100 hosts x 365 days
    .venv/bin/python bench/exports.py --hosts 4 --days 20    # a quick look (its own cached database)
    .venv/bin/python bench/exports.py --database NAME        # an existing database as it is (a seed stopped part way)

Prints, for the whole fleet and framework cis-docker-1.8.0, over the seed's last 365 and
90 days:
1. the PDF report (posture/reports/pdf.py): seconds, pages, size, peak memory (target < 60 s);
2. every CSV (posture/reports/csv.py): rows, seconds, rows/s, peak memory (target: findings
   and every other kind > 50,000 rows/s);
3. peak memory of the CSVs that grow with the period (windows, scans, evidence) over 30, 90
   and 365 days: flat when the export streams.

Each measurement runs in a forked child: its peak memory is the growth of the child's
resident set (VmHWM - VmRSS at the start), i.e. what that export added, whatever ran before.
The PDF line also prints the child's own CPU time: on a busy machine (the load average is
printed) wall-clock time is mostly waiting for a CPU.
Nothing is written to the database (the exports only read; no Report row is made). The PDF of
each period is left under --out (default /tmp/shots-pdf/) to look at."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._db import admin_sql, server_url  # noqa: E402
from bench.history import add_spec_arguments, cache_key, open_seeded, spec_from  # noqa: E402

FRAMEWORK = "cis-docker-1.8.0"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def in_child(fn) -> dict:
    """Run ``fn() -> dict`` in a forked child; return its answer with ``seconds`` and
    ``peak_mb`` (the child's resident-set growth at its peak)."""
    from django.db import connections

    connections.close_all()  # the child opens its own connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            start_kb = _status_kb("VmRSS")
            t0, c0 = time.perf_counter(), time.process_time()
            answer = fn()
            answer["seconds"] = time.perf_counter() - t0
            answer["cpu"] = time.process_time() - c0  # this process only (not PostgreSQL's)
            answer["peak_mb"] = (_status_kb("VmHWM") - start_kb) / 1024
        except Exception as exc:  # report it, as a figure the table shows
            answer, code = {"error": f"{type(exc).__name__}: {exc}"[:300]}, 1
        with os.fdopen(write, "w") as out:
            json.dump(answer, out)
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as handle:
        text = handle.read()
    os.waitpid(pid, 0)
    return json.loads(text or '{"error": "no answer"}')


def period(spec, days: int) -> tuple[datetime, datetime]:
    end = datetime.combine(spec.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return end - timedelta(days=days), end


def pages(path: Path) -> int:
    """The PDF's page count (pdfinfo, from poppler-utils; 0 without it)."""
    try:
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    found = re.search(r"^Pages:\s+(\d+)", info, re.M)
    return int(found.group(1)) if found else 0


def pdf_figures(spec, days: int, out_dir: Path) -> dict:
    from posture.reports import pdf
    from posture.reports.csv import ExportSpec

    def run() -> dict:
        data = pdf.render(ExportSpec(FRAMEWORK, *period(spec, days)), generated_by="bench/exports.py")
        path = out_dir / f"bench-{days}d.pdf"
        path.write_bytes(data)
        return {"pages": pages(path), "bytes": len(data), "path": str(path)}

    return in_child(run)


def csv_figures(spec, days: int, kind: str) -> dict:
    from posture.reports import csv as exports

    def run() -> dict:
        rows = 0

        def counted(n: int) -> None:
            nonlocal rows
            rows = n

        size = sum(len(chunk) for chunk in exports.stream(kind, exports.ExportSpec(FRAMEWORK, *period(spec, days)),
                                                          progress=counted))
        return {"rows": rows, "bytes": size}

    return in_child(run)


def guard(server: str, spec) -> None:
    """Refuse to touch a cached database another process is still seeding (bench/history.py
    would drop and reseed it)."""
    name = f"posture_history_{cache_key(spec)}"
    rows = admin_sql(server, "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                             f"WHERE datname = '{name}'", fetch=True)
    if rows and not (rows[0][0] or "").startswith("seeded "):
        sys.exit(f"{name} exists but is not seeded yet (another process is seeding it): try again once it is")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_spec_arguments(parser)
    parser.add_argument("--periods", default="365,90", help="period lengths in days, comma-separated")
    parser.add_argument("--out", default="/tmp/shots-pdf", help="where the PDFs are written")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    periods = [int(d) for d in args.periods.split(",")]
    with contextlib.ExitStack() as stack:
        server = server_url(stack)
        if not args.database:
            guard(server, spec_from(args))
        spec, _seconds = open_seeded(server, args)
        from posture.reports import csv as exports

        load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
        print(f"fleet: {spec.hosts} hosts x {spec.days} days (seeded to {spec.end}), framework {FRAMEWORK}; "
              f"load average {load} on {os.cpu_count()} CPUs")
        print("1. PDF report, whole fleet                                      target < 60 s")
        for days in sorted({min(d, spec.days) for d in periods}, reverse=True):
            r = pdf_figures(spec, days, out_dir)
            if "error" in r:
                print(f"   {days:4d} days: FAILED {r['error']}")
                continue
            print(f"   {days:4d} days: {r['seconds']:6.1f} s (CPU {r['cpu']:5.1f} s)  {r['pages']:4d} pages  {r['bytes'] / 1e6:6.2f} MB  "
                  f"peak +{r['peak_mb']:6.0f} MB   ({r['path']})")
        print("2. CSV exports, whole fleet                                     target > 50,000 rows/s")
        for days in sorted({min(d, spec.days) for d in periods}, reverse=True):
            for kind in exports.KINDS:
                r = csv_figures(spec, days, kind)
                if "error" in r:
                    print(f"   {days:4d} days {kind:13} FAILED {r['error']}")
                    continue
                rate = r["rows"] / r["seconds"] if r["seconds"] else 0
                print(f"   {days:4d} days {kind:13} {r['rows']:10,d} rows  {r['seconds']:7.2f} s  {rate:10,.0f} rows/s  "
                      f"{r['bytes'] / 1e6:8.1f} MB  peak +{r['peak_mb']:5.0f} MB")
        print("3. CSV peak memory as rows grow (flat when streamed)")
        for kind in ("windows", "scans", "evidence"):
            cells = []
            for days in sorted({min(d, spec.days) for d in (30, 90, 365)}):
                r = csv_figures(spec, days, kind)
                cells.append(f"{days} d: {r.get('rows', 0):,} rows +{r.get('peak_mb', 0):.0f} MB"
                             if "error" not in r else f"{days} d: FAILED")
            print(f"   {kind:9} " + "   ".join(cells))
        from django.db import connections

        connections.close_all()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posture.settings")
    sys.exit(main())

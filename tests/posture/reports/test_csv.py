"""CSV exports: what the csv module reads back equals the query layer's rows, every cell a
spreadsheet could run as a formula is neutralised, and a large export streams in constant
memory."""

from __future__ import annotations

import csv
import io
import tracemalloc
from datetime import timedelta

import pytest

from posture.choices import ScanState
from posture.models import ScanRun
from posture.queries.effectiveness import operating_effectiveness
from posture.queries.exports import scans_during
from posture.queries.history import failure_windows
from posture.queries.verdicts import findings
from posture.reports import csv as exports
from tests.posture.reports.conftest import CIS, PAYLOADS, day

pytestmark = pytest.mark.django_db

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def parsed(kind: str, spec: exports.ExportSpec, **options) -> list[list[str]]:
    data = b"".join(exports.stream(kind, spec, **options))
    text = data.decode("utf-8-sig" if options.get("bom") else "utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def plain(cell: str) -> str:
    """A neutralised cell back to the value (the documented single-quote prefix)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in DANGEROUS else cell


def test_it_round_trips_every_export_with_the_query_layers_rows(period):
    spec = exports.ExportSpec(CIS, period["start"], period["end"])
    host = period["host"]
    for kind, export in exports.KINDS.items():
        rows = parsed(kind, spec)
        assert tuple(rows[0]) == export.header, kind
        assert all(len(r) == len(export.header) for r in rows), kind

    found = parsed("findings", spec)[1:]
    expected = findings([host.pk], period["end"], framework=CIS, ordering=exports.FINDINGS_ORDER).values_list(
        "scan_id", "check_id", "resource", "verdict", "detail")
    assert [(int(r[1]), r[3], plain(r[7]), r[9], plain(r[13])) for r in found] == list(expected)
    assert len(found) > 50

    windows = parsed("windows", spec)[1:]
    checks = spec.checks()
    expected = failure_windows([host.pk], checks, period=(period["start"], period["end"]))
    assert [(r[1], plain(r[4]), r[5], r[9]) for r in windows] == [
        (w.check_id, w.resource, w.opened_at.isoformat(), str(int(w.duration.total_seconds()))) for w in expected]
    priv = [r for r in windows if r[1] == "container.privileged_disabled" and plain(r[4]) == PAYLOADS[0]]
    # Failing on days 0-1 (closed by nothing until day 7: the gap days 2-5 and day 6 fail too).
    assert [(r[5], r[6]) for r in priv] == [(day(0).isoformat(), day(7).isoformat())]
    assert "5.5" in priv[0][2].split()

    controls = parsed("controls", spec)[1:]
    eff = operating_effectiveness(CIS, (period["start"], period["end"]), [host.pk])
    assert [r[1] for r in controls] == [c.ref for c in eff.hosts[host.pk]]
    row = next(r for r in controls if r[1] == "5.5")
    want = next(c for c in eff.hosts[host.pk] if c.ref == "5.5")
    assert (row[3], row[4]) == ("audit1", "pass")  # fixed at the period's end
    assert [int(row[i]) for i in (7, 8, 9, 10, 11, 12)] == [int(t.total_seconds()) for t in (
        want.expected, want.passing, want.failing, want.excepted, want.gaps, want.not_assessed)]
    # The gap is never passing: outside the assessed time, it shows in the coverage.
    assert int(row[11]) > 0 and float(row[13]) == pytest.approx(want.share)
    assert float(row[14]) == pytest.approx(want.coverage) and want.coverage < 1

    scans = parsed("scans", spec)[1:]
    assert [int(r[0]) for r in scans] == [s.pk for s in period["scans"]]
    assert [r[8] for r in scans] == [s.chain_digest for s in period["scans"]]
    assert [r[7] for r in scans] == [s.evidence_set.digest for s in period["scans"]]

    exceptions = parsed("exceptions", spec)[1:]
    assert [(int(r[0]), r[6], r[8]) for r in exceptions] == [(period["exception"].pk, "olive", "admin")]
    attestations = parsed("attestations", spec)[1:]
    assert [plain(r[3]) for r in attestations] == ["@SUM(1) hardened"]
    evidence = parsed("evidence", spec)[1:]
    assert len(evidence) == sum(s.evidence_set.item_count for s in period["scans"])
    assert {r[5] for r in evidence} >= {period["scans"][0].evidence_set.items.first().evidence.digest}


def test_it_writes_a_byte_order_mark_only_when_asked(period):
    spec = exports.ExportSpec(CIS, period["start"], period["end"])
    assert not b"".join(exports.stream("scans", spec)).startswith(b"\xef\xbb\xbf")
    with_bom = b"".join(exports.stream("scans", spec, bom=True))
    assert with_bom.startswith(b"\xef\xbb\xbfid,host,")
    assert parsed("scans", spec, bom=True) == parsed("scans", spec)


def test_it_neutralises_formula_payloads_in_every_export(period):
    spec = exports.ExportSpec(CIS, period["start"], period["end"])
    seen: set[str] = set()
    for kind in exports.KINDS:
        for row in parsed(kind, spec):
            for cell in row:
                assert not cell.startswith(DANGEROUS), (kind, cell)
                seen.add(cell)
    for payload in PAYLOADS:
        assert "'" + payload in seen, payload  # container names: findings, windows
    assert "'=HYPERLINK(\"http://evil\")" in seen and "'=cmd*" in seen and "'@SUM(1) hardened" in seen
    # Text inside a cell is untouched; only a dangerous first character is.
    assert exports.neutralise("a=b") == "a=b" and exports.neutralise("-") == "'-"
    assert exports.neutralise(None) == "" and exports.neutralise(timedelta(hours=1)) == "3600"


def _peak(kind: str, spec: exports.ExportSpec) -> tuple[int, int]:
    """(rows, peak traced bytes) of streaming the export to nowhere."""
    tracemalloc.start()
    try:
        rows = sum(chunk.count(b"\n") for chunk in exports.stream(kind, spec)) - 1
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["scans", "evidence"])
def test_it_streams_a_large_export_in_flat_memory(period, kind):
    host = period["host"]
    first = period["scans"][0]
    per_scan = 1 if kind == "scans" else first.evidence_set.item_count
    total = 50_000 // per_scan + 1
    base = day(10)
    ScanRun.objects.bulk_create(
        [ScanRun(host=host, state=ScanState.SUCCEEDED, evidence_set=first.evidence_set,
                 started_at=base + timedelta(minutes=i), finished_at=base + timedelta(minutes=i))
         for i in range(total)], batch_size=5000)
    small_end = base + timedelta(minutes=total // 5)
    small = exports.ExportSpec(CIS, base, small_end, ("audit1",))
    large = exports.ExportSpec(CIS, base, base + timedelta(minutes=total), ("audit1",))
    assert scans_during(large.period, [host.pk]).count() == total
    rows_small, peak_small = _peak(kind, small)
    rows_large, peak_large = _peak(kind, large)
    assert rows_small >= 9_000 and rows_large >= 49_000
    # Five times the rows, about the same memory: nothing holds every row (generous bound).
    assert peak_large < peak_small * 1.5 + 256 * 1024, (peak_small, peak_large)


def test_its_fast_cells_write_exactly_what_neutralise_writes():
    from datetime import UTC, datetime, timezone

    # The same moment in two time zones (equal datetimes) is written in each one's offset.
    paris = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    values = [None, "", "plain", "=1+1", "+x", "-x", "@x", "\tx", "\rx", "a=b", "'=already", 0, 7, -3, True, False,
              1.5, -0.5, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), paris, datetime(2026, 1, 2, 3, 4, 5),
              datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
              timedelta(seconds=90), timedelta(seconds=1, microseconds=500), "ünïcode, \"quoted\"\nline"]

    def written(rows) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(rows)
        return out.getvalue()

    rows = [values, [None], [""], list(reversed(values))]
    assert written(exports.cells(r) for r in rows) == written([exports.neutralise(v) for v in r] for r in rows)

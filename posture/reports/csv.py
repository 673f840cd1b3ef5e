"""CSV exports of an audit period, streamed in constant memory.

Every export reads through the query layer the pages and the API use
(posture.queries.effectiveness, .verdicts, .history, .exports), iterates its rows with a
server-side cursor (``.iterator(chunk_size=CHUNK)`` over ``values_list``, or for findings
``posture.queries.verdicts.finding_rows``' tuples: no list of rows is ever built) and yields
UTF-8 bytes in blocks, for a ``StreamingHttpResponse`` or a file.

**Formula injection.** Container names, image tags, labels and check details are chosen by
whoever runs containers; a spreadsheet opening a cell that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return may evaluate it (``=cmd|' /C calc'!A0``). Every cell of
every export that begins with one of those characters is written with a single quote
prefixed (``'=cmd|...``), which spreadsheets show as text. The quote is part of the value a
CSV parser reads back: strip one leading ``'`` from such cells to recover the original.
Numbers we write ourselves are never negative, so no numeric column is altered."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import IO, Any

from django.db.models import Q

from posture.jobs.evaluate import check_controls
from posture.jobs.hosts import host_named
from posture.models import Check, DockerHost, Framework
from posture.queries.effectiveness import operating_effectiveness
from posture.queries.exports import attestations_during, evidence_index, exceptions_during, scans_during
from posture.queries.history import clip_period, failure_windows
from posture.queries.rollups import host_rollups
from posture.queries.scans import current_scans
from posture.queries.verdicts import finding_rows

#: Rows fetched per round trip of the server-side cursor, and rows per yielded block.
CHUNK = 2000
#: Cells beginning with one of these are prefixed with a single quote (see the docstring).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)

Progress = Callable[[int], None]


def neutralise(value: Any) -> str:
    """One cell as text: None empty, datetimes ISO 8601, durations in seconds, and any text
    that a spreadsheet could read as a formula prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return _seconds(value)
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _seconds(value: timedelta | None) -> str:
    if value is None:
        return ""
    return str(int(value.total_seconds())) if not value.microseconds else f"{value.total_seconds():.3f}"


# --- the scope of an export -----------------------------------------------------------------

@dataclass(frozen=True)
class ExportSpec:
    """What is exported: a framework, a period [start, end) and a scope of hosts by name
    (None: every host expected to report during the period, archived ones included)."""

    framework: str
    start: datetime
    end: datetime
    hosts: tuple[str, ...] | None = None

    def check(self) -> None:
        """Raise ValueError naming the problem: unknown framework or host, bad period."""
        clip_period((self.start, self.end))
        if not Framework.objects.filter(slug=self.framework).exists():
            known = ", ".join(Framework.objects.order_by("slug").values_list("slug", flat=True))
            raise ValueError(f"unknown framework {self.framework[:100]!r}; known: {known or 'none (load_catalog)'}")
        self.host_ids()

    @property
    def period(self) -> tuple[datetime, datetime]:
        return clip_period((self.start, self.end))

    def host_ids(self) -> list[int]:
        """The scope as host ids, sorted by name."""
        if self.hosts is None:
            start, end = self.period
            rows = (DockerHost.objects.filter(created_at__lt=end)
                    .filter(Q(archived_at__isnull=True) | Q(archived_at__gt=start)))
            return list(rows.order_by("name").values_list("pk", flat=True))
        ids, unknown = [], []
        for name in self.hosts:
            host = host_named(name)
            (unknown.append(name[:100]) if host is None else ids.append(host.pk))
        if unknown:
            raise ValueError(f"no host named {', '.join(map(repr, unknown))}")
        return ids

    def host_names(self) -> list[str]:
        return list(DockerHost.objects.filter(pk__in=self.host_ids()).order_by("name").values_list("name", flat=True))

    def checks(self) -> list[str]:
        """The framework's checks (catalog), sorted."""
        return sorted(Check.objects.filter(controls__framework__slug=self.framework)
                      .values_list("id", flat=True).distinct())


# --- one generator of rows per kind ---------------------------------------------------------

def _controls(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    """Per control and host: status at period end, operating effectiveness and its terms
    (posture.queries.effectiveness: share = passing / assessed time, empty when never
    assessed; coverage = assessed / expected time)."""
    start, end = spec.period
    ids = spec.host_ids()
    eff = operating_effectiveness(spec.framework, (start, end), ids)
    names = dict(DockerHost.objects.filter(pk__in=list(eff.hosts)).values_list("pk", "name"))
    at_end = host_rollups([spec.framework], list(eff.hosts), at=end)
    for host_id in sorted(eff.hosts, key=lambda h: names[h]):
        rolled = at_end.get(host_id, {}).get(spec.framework)
        for row in eff.hosts[host_id]:
            status = rolled.by_ref[row.ref].status if rolled and row.ref in rolled.by_ref else "not_assessed"
            yield (spec.framework, row.ref, row.title, names[host_id], status,
                   "automated" if row.automated else ("manual" if row.checks else "unsupported"),
                   " ".join(row.checks), row.expected, row.passing, row.failing, row.excepted, row.gaps,
                   row.not_assessed, "" if row.share is None else f"{row.share:.6f}",
                   "" if row.coverage is None else f"{row.coverage:.6f}", len(row.windows),
                   any(w.ongoing for w in row.windows))


#: The findings export's row order: by host, check and resource. (The pages' default, worst
#: status first, sorts on the exception and attestation subqueries: twice as slow.)
FINDINGS_ORDER = ("host", "check", "resource")


def _findings(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    start, end = spec.period
    # The current scans' ids are read first: given as a subquery, PostgreSQL joins every
    # scan's results before keeping the current ones (15x slower on a fleet's year).
    scans = list(current_scans(spec.host_ids(), end).values_list("pk", flat=True))
    # Tuples straight from a server-side cursor, each row's exception looked up once
    # (posture.queries.verdicts.finding_rows: the rows of findings(), set-based on PostgreSQL).
    return finding_rows(scans, end, framework=spec.framework, ordering=FINDINGS_ORDER, chunk=CHUNK)


def _windows(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    controls = {c: " ".join(ref for slug, ref in refs if slug == spec.framework)
                for c, refs in check_controls().items()}
    rows = failure_windows(spec.host_ids(), spec.checks(), period=spec.period).values_list(
        "host__name", "check_id", "resource_type", "resource", "opened_at", "closed_at", "clipped_start",
        "clipped_end", "duration", "opened_scan_id", "closed_scan_id")
    for row in rows.iterator(chunk_size=CHUNK):
        yield (row[0], row[1], controls.get(row[1], ""), *row[2:])


def _exceptions(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    rows = exceptions_during(spec.period, spec.host_ids()).filter(check_id__in=spec.checks()).values_list(
        "pk", "check_id", "host__name", "resource_pattern", "state", "justification", "proposed_by__username",
        "proposed_at", "decided_by__username", "decided_at", "expires_at", "revoked_by__username", "revoked_at")
    return rows.iterator(chunk_size=CHUNK)


def _attestations(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    rows = attestations_during(spec.period, spec.host_ids()).filter(check_id__in=spec.checks()).values_list(
        "pk", "check_id", "host__name", "statement", "attested_by__username", "attested_at", "valid_until", "file")
    return rows.iterator(chunk_size=CHUNK)


def _scans(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    rows = scans_during(spec.period, spec.host_ids()).values_list(
        "pk", "host__name", "queued_at", "started_at", "finished_at", "state", "trigger",
        "evidence_set__digest", "chain_digest", "scanner_version")
    return rows.iterator(chunk_size=CHUNK)


def _evidence(spec: ExportSpec) -> Iterator[Iterable[Any]]:
    return evidence_index(spec.period, spec.host_ids()).iterator(chunk_size=CHUNK)


@dataclass(frozen=True)
class Kind:
    name: str
    header: tuple[str, ...]
    rows: Callable[[ExportSpec], Iterable[Iterable[Any]]]
    about: str

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("controls", ("framework", "control", "title", "host", "status_at_end", "assessed", "checks",
                      "expected_seconds", "passing_seconds", "failing_seconds", "excepted_seconds", "gap_seconds",
                      "not_assessed_seconds", "effectiveness_share", "assessed_coverage", "failure_windows",
                      "failing_at_end"),
         _controls, "operating effectiveness per control and host over the period"),
    Kind("findings", ("host", "scan", "scanned_at", "check", "title", "severity", "resource_type", "resource",
                      "stored_status", "verdict", "exception", "attestation", "failing_since", "detail"),
         _findings, "every check x resource in each host's current scan at the period's end"),
    Kind("windows", ("host", "check", "controls", "resource_type", "resource", "opened_at", "closed_at",
                     "clipped_start", "clipped_end", "duration_seconds", "opened_scan", "closed_scan"),
         _windows, "failure windows overlapping the period, clipped to it"),
    Kind("exceptions", ("id", "check", "host", "resource_pattern", "state", "justification", "proposed_by",
                        "proposed_at", "approved_by", "approved_at", "expires_at", "revoked_by", "revoked_at"),
         _exceptions, "approved exceptions in force during the period"),
    Kind("attestations", ("id", "check", "host", "statement", "attested_by", "attested_at", "valid_until", "file"),
         _attestations, "attestations valid during the period"),
    Kind("scans", ("id", "host", "queued_at", "started_at", "finished_at", "state", "trigger", "manifest_digest",
                   "chain_digest", "scanner_version"),
         _scans, "every scan in the period: the population for sampling"),
    Kind("evidence", ("scan", "host", "finished_at", "kind", "key", "payload_sha256"),
         _evidence, "every evidence item of the succeeded scans in the period"),
)}


def cells(row: Iterable[Any]) -> list[Any]:
    """One row's cells for csv.writer, as ``neutralise`` writes them: text that cannot be read
    as a formula, None and non-negative integers pass as they are (csv.writer writes None as
    an empty cell and an int as ``str`` would), datetimes are written once per distinct value
    (``_iso``), everything else goes through ``neutralise``. The common cells cost no function
    call: this loop is most of an export's Python time."""
    return [v if ((c := v.__class__) is str and v[:1] not in _FORMULA_FIRST) or v is None or (c is int and v >= 0)
            else _iso(v) if c is datetime else neutralise(v) for v in row]


#: datetime (and its tzinfo) -> its ISO 8601 text: the findings export repeats each scan's
#: finish and the windows' openings over a host's rows. Emptied when it holds ISO_MEMO
#: moments, so memory stays flat in an export of distinct moments (scans, evidence).
_ISO_TEXT: dict[tuple[datetime, Any], str] = {}
ISO_MEMO = 1024


def _iso(value: datetime) -> str:
    """``value.isoformat()``, remembered. Keyed with the tzinfo: equal moments in two time
    zones are equal datetimes but are written differently."""
    key = (value, value.tzinfo)
    text = _ISO_TEXT.get(key)
    if text is None:
        if len(_ISO_TEXT) >= ISO_MEMO:
            _ISO_TEXT.clear()
        text = _ISO_TEXT[key] = value.isoformat()
    return text


def stream(kind: str, spec: ExportSpec, *, bom: bool = False, progress: Progress | None = None,
           block_rows: int = 500) -> Iterator[bytes]:
    """The export ``kind`` as UTF-8 bytes, in blocks of ``block_rows`` rows (header first;
    ``bom``: a UTF-8 byte order mark for spreadsheets that need one). ``progress(rows)`` is
    called after each block."""
    export = KINDS[kind]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(export.header)
    yield ((codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8"))
    rows = map(cells, export.rows(spec))
    count = 0
    while block := list(islice(rows, block_rows)):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(block)
        count += len(block)
        yield buffer.getvalue().encode("utf-8")
        if progress and len(block) == block_rows:
            progress(count)
    if progress:
        progress(count)


def write(kind: str, spec: ExportSpec, out: IO[bytes], **options) -> int:
    """Write the export to a binary file; returns the bytes written."""
    size = 0
    for chunk in stream(kind, spec, **options):
        out.write(chunk)
        size += len(chunk)
    return size

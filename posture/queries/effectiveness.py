"""Operating effectiveness of controls over a period: the share of time each control passed,
per host and fleet-wide, with the stretches during which it failed.

Definitions (with those of posture/queries/history.py):

- A control **fails** on a host while any failure window of any of its checks (any resource
  of that host) is open. Its windows are merged per (host, control): overlapping or touching
  stretches are one failure.
- Time under an approved **exception** in force (for that check, host and resource) is
  **excepted**: reported apart, neither failing nor passing. If another resource fails the
  control un-excepted at the same time, that time is failing (worst status wins, as in the
  rollups).
- Time in a **collection gap** is a gap, never passing, and never failing either: nothing is
  known then. A failure window spanning a gap contributes only its parts outside the gap.
- Time during which the host's scan in force left the control **not assessed** (its status
  in that scan, as the rollups define it, is ``not_assessed`` or ``error``: e.g. host-file
  checks with the host probe off, or nothing the control applies to was seen) is
  **not_assessed**: never passing. A failure open at the same time is failing (worst status
  wins); an excepted one is not assessed (``not_assessed`` ranks above ``excepted``). The
  scan in force holds from its finish to the host's next succeeded scan.
- **Expected** time is the host's expected coverage within the period (an archived host
  expects nothing after archiving; a host registered mid-period from then on).
- **assessed** = expected - gaps - not_assessed: the time the control was measured;
  **passing** = assessed - failing - excepted; **share** = passing / assessed (None: never
  assessed in the period, shown as "not assessed"); **coverage** = assessed / expected,
  shown beside every share. Fleet-wide, every term is summed over hosts (time-weighted).
- A control no check of the registry supports has no share (None): nothing measures it.
  Controls whose checks are all manual are measured by their failures only (a ``manual``
  verdict opens no window); ``automated`` says which kind a control is.

Cost: seven queries whatever the size of the fleet or of the period (the framework's
controls, hosts, scans for the gaps, exceptions that could apply, the scans in force with
their result sets, the refs each result set assessed (``ResultSet.assessed``, grouped by
distinct set in SQL and kept per process: ``_assessed_refs``), and the failure windows merged per (host, check) in
SQL: ``range_agg`` on PostgreSQL, window functions elsewhere),
then Python over the merged stretches: memory grows with hosts x checks x failure
stretches, not with scans or windows."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Case, CharField, DateTimeField, F, IntegerField, Q, Value, When
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from posture.choices import ScanState
from posture.jobs.evaluate import check_controls
from posture.models import Control, ControlException, Evaluation, FailureWindow, Framework, ResultSet, ScanRun
from posture.models.exceptions import ExceptionState
from posture.queries.history import HostCoverage, Hosts, Period, clip_period, host_coverage, host_filter
from posture.queries.scans import current_scans
from scanners import registry
from scanners.checks.base import Kind

Span = tuple[datetime, datetime]
ZERO = timedelta(0)


# --- interval arithmetic over sorted, disjoint lists of (start, end) ----------------------

def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint, with overlapping or touching spans joined; empty spans dropped."""
    out: list[Span] = []
    for s, e in sorted(spans):
        if s >= e:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def intersect(a: list[Span], b: list[Span]) -> list[Span]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Span], b: list[Span]) -> list[Span]:
    out: list[Span] = []
    j = 0
    for s, e in a:
        while j < len(b) and b[j][1] <= s:
            j += 1
        k, cursor = j, s
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0]))
            cursor = max(cursor, b[k][1])
            k += 1
        if cursor < e:
            out.append((cursor, e))
    return out


def total(spans: Iterable[Span]) -> timedelta:
    return sum((e - s for s, e in spans), ZERO)


# --- results -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stretch:
    """A stretch during which a control failed on a host (its checks' windows merged),
    clipped to the host's expected coverage; ``ongoing``: still failing when that ends."""

    start: datetime
    end: datetime
    ongoing: bool

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass
class ControlEffectiveness:
    """One control over the period, on one host (``host_id``) or the fleet (None)."""

    ref: str
    title: str
    host_id: int | None
    checks: tuple[str, ...]
    automated: bool
    expected: timedelta = ZERO
    failing: timedelta = ZERO
    excepted: timedelta = ZERO
    gaps: timedelta = ZERO
    not_assessed: timedelta = ZERO
    windows: list[Stretch] = field(default_factory=list)  # per host; fleet-wide: empty
    hosts_failing: int = 0  # fleet-wide: hosts with a failure window in the period (excepted or not)

    @property
    def assessed(self) -> timedelta:
        """The time the control was measured: expected, less gaps and time not assessed."""
        return self.expected - self.gaps - self.not_assessed

    @property
    def passing(self) -> timedelta:
        return self.assessed - self.failing - self.excepted

    @property
    def share(self) -> float | None:
        """Share of the assessed time passing (None: no check measures it, or it was never
        assessed in the period: "not assessed", never a passing share)."""
        if not self.checks or self.assessed <= ZERO:
            return None
        return self.passing / self.assessed

    @property
    def coverage(self) -> float | None:
        """Share of the expected time assessed (None: no check measures it, or nothing expected)."""
        if not self.checks or not self.expected:
            return None
        return self.assessed / self.expected


@dataclass
class Effectiveness:
    framework: str
    start: datetime
    end: datetime
    controls: list[ControlEffectiveness]  # fleet-wide, in catalog order
    hosts: dict[int, list[ControlEffectiveness]]  # host id -> per control, same order
    coverage: dict[int, HostCoverage]


# --- the query -----------------------------------------------------------------------------

def _exceptions_q(start: datetime, end: datetime) -> Q:
    """Approved exceptions in force at some moment of [start, end)."""
    return (Q(state__in=[ExceptionState.APPROVED, ExceptionState.REVOKED], decided_at__isnull=False,
              decided_at__lt=end, expires_at__gt=start)
            & (Q(revoked_at__isnull=True) | Q(revoked_at__gt=start)))


def _dt(value) -> datetime:
    """A datetime out of raw SQL: SQLite returns text (UTC), PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value


#: Portable: gaps-and-islands with window functions (a new island where a window starts after
#: every earlier one ended), then one row per island.
_ISLANDS = """
SELECT host_id, check_id, k, MIN(s), MAX(e), MAX(o) FROM (
  SELECT host_id, check_id, k, s, e, o,
         SUM(brk) OVER (PARTITION BY host_id, check_id, k ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS grp
  FROM (
    SELECT host_id, check_id, k, s, e, o,
           CASE WHEN s <= MAX(e) OVER (PARTITION BY host_id, check_id, k ORDER BY s, e
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                THEN 0 ELSE 1 END AS brk
    FROM ({inner}) w
  ) m
) g
GROUP BY host_id, check_id, k, grp
"""
#: PostgreSQL 14+: range aggregation, one hash-aggregate pass and no sort of every window
#: (about ten times faster on a year of a fleet).
_RANGE_AGG = """
SELECT host_id, check_id, k, lower(r), upper(r), o FROM (
  SELECT host_id, check_id, k, unnest(range_agg(tstzrange(s, e))) AS r, MAX(o) AS o
  FROM ({inner}) w GROUP BY host_id, check_id, k
) g
"""


def _could_apply(exceptions: Iterable[ControlException]) -> Q:
    """The windows one of ``exceptions`` could cover (check, host, resource pattern), as one
    condition: the exceptions are already loaded, so no subquery runs per window."""
    condition = Q(pk__in=[])
    for check_id, host_id, regex in sorted({(e.check_id, e.host_id or 0, e.resource_regex) for e in exceptions}):
        condition |= Q(check_id=check_id, resource__regex=regex, **({"host_id": host_id} if host_id else {}))
    return condition


def merged_windows(hosts: Hosts, checks: list[str], start: datetime, end: datetime,
                   exceptions: Iterable[ControlException] = (), *, range_agg: bool | None = None,
                   ) -> list[tuple[int, str, str, datetime, datetime, bool]]:
    """(host, check, resource or "", start, end, ongoing): the failure windows overlapping the
    period, clipped to it and merged per (host, check) in SQL: one row per stretch during
    which the check failed on some resource of the host. Windows one of ``exceptions``
    could cover are merged per resource instead and carry it, so the exception can be
    applied to them. ``ongoing``: a window of the group is still open at the period's end.
    ``range_agg`` (default: on PostgreSQL) picks range aggregation over the portable query."""
    if not checks:
        return []
    at_start, at_end = Value(start, output_field=DateTimeField()), Value(end, output_field=DateTimeField())
    inner = (
        FailureWindow.objects.filter(host_filter(hosts), check_id__in=checks, opened_at__lt=end)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gt=start))
        .annotate(k=Case(When(_could_apply(exceptions), then=F("resource")), default=Value(""),
                         output_field=CharField()),
                  s=Greatest("opened_at", at_start), e=Least(Coalesce("closed_at", at_end), at_end),
                  o=Case(When(Q(closed_at__isnull=True) | Q(closed_at__gt=end), then=Value(1)), default=Value(0),
                         output_field=IntegerField()))
        .order_by().values("host_id", "check_id", "k", "s", "e", "o")
    )
    try:
        sql, params = inner.query.sql_with_params()
    except EmptyResultSet:  # no host to ask about
        return []
    if range_agg is None:
        range_agg = connection.vendor == "postgresql" and connection.pg_version >= 140000
    with connection.cursor() as cursor:
        cursor.execute((_RANGE_AGG if range_agg else _ISLANDS).format(inner=sql), params)
        return [(h, c, k, _dt(s), _dt(e), bool(o)) for h, c, k, s, e, o in cursor.fetchall()]


def _union(spans_of: dict[tuple[int, str], list[Span]], host_id: int, checks: tuple[str, ...]) -> list[Span]:
    """The merged spans of several checks on a host (most controls have one: no work)."""
    if len(checks) == 1:
        return spans_of.get((host_id, checks[0]), [])
    return merge(s for c in checks for s in spans_of.get((host_id, c), ()))


#: Result sets are content-addressed and never change once written, so the refs each one
#: assessed are read once per process: (id, digest, framework) -> those refs, one frozenset
#: per distinct set (a fleet's year of result sets shares a handful), so the cache costs a
#: dict entry per result set, not its counts.
_ASSESSED: OrderedDict[tuple[int, str, str], frozenset[str]] = OrderedDict()
_ASSESSED_MAX = 250_000
_ASSESSED_LOCK = threading.Lock()
_INTERNED: dict[frozenset[str], frozenset[str]] = {}

#: The refs each result set assessed, as stored beside its counts (``ResultSet.assessed``),
#: one row per distinct set of refs with its result sets: a year's 28k result sets hold a
#: handful of distinct sets, so neither the counts nor copies of the same refs travel.
_ASSESSED_SQL = """
SELECT COALESCE(assessed -> %s, '[]'::jsonb), array_agg(id) FROM posture_resultset
WHERE id = ANY(%s) GROUP BY 1
"""


def _assessed_refs(framework: str, sets: Iterable[tuple[int, str]], *, in_sql: bool | None = None,
                   ) -> dict[int, frozenset[str]]:
    """result set id -> the refs of ``framework`` it assessed (counts with no ``not_assessed``
    or ``error``; stored as ``ResultSet.assessed``): from the cache, the rest in one query
    (trivial when every set is cached). ``in_sql`` (default: on PostgreSQL) groups the result
    sets by their refs in the database; elsewhere each set's refs are read."""
    sets = list(dict.fromkeys(sets))
    with _ASSESSED_LOCK:
        found = {pk: _ASSESSED[(pk, digest, framework)] for pk, digest in sets if (pk, digest, framework) in _ASSESSED}
    missing = {pk: digest for pk, digest in sets if pk not in found}
    if in_sql is None:
        in_sql = connection.vendor == "postgresql"
    if in_sql:  # even with nothing to read (an empty id list): the query count stays fixed
        with connection.cursor() as cursor:
            cursor.execute(_ASSESSED_SQL, [framework, list(missing)])
            # one row per distinct set of refs (jsonb, which Django's connection reads as text)
            groups = [(json.loads(refs) if isinstance(refs, str) else refs, pks) for refs, pks in cursor.fetchall()]
    else:
        groups = [((assessed or {}).get(framework, []), [pk])
                  for pk, assessed in ResultSet.objects.filter(pk__in=list(missing)).values_list("pk", "assessed")]
    with _ASSESSED_LOCK:
        for refs, pks in groups:
            refs = frozenset(refs)
            refs = _INTERNED.setdefault(refs, refs)
            for pk in pks:
                found[pk] = _ASSESSED[(pk, missing[pk], framework)] = refs
        while len(_ASSESSED) > _ASSESSED_MAX:
            _ASSESSED.popitem(last=False)
        if len(_INTERNED) > _ASSESSED_MAX:
            _INTERNED.clear()
    return found


def _unassessed(framework: str, coverage: dict[int, HostCoverage], measured: set[str], *,
                in_sql: bool | None = None) -> dict[tuple[int, str], list[Span]]:
    """(host, control ref) -> the spans of the host's expected coverage during which its scan
    in force left the control not assessed (status ``not_assessed`` or ``error`` in that
    scan's per-control counts, before exceptions: an exception moves fail to excepted, never
    evidence in or out). At most two queries: the scans in force (each host's current one at
    the start, and those finished in the period) with their result sets, then the refs
    assessed by the result sets this process has not read yet (``_assessed_refs``).
    ``measured``: the refs a check supports. Python walks each host's scans comparing
    interned sets (one per distinct set of refs): work per scan is constant, and spans are
    only opened or closed where the set changes."""
    if not coverage or not measured:
        return {}
    hosts = list(coverage)
    start, end = min(c.start for c in coverage.values()), max(c.end for c in coverage.values())
    scans = (ScanRun.objects.filter(host_id__in=hosts, state=ScanState.SUCCEEDED)
             .filter(Q(pk__in=current_scans(hosts, start).values("pk")) | Q(finished_at__gt=start, finished_at__lt=end)))
    rows = list(Evaluation.objects.filter(current=True, scan__in=scans.values("pk"))
                .order_by("scan__host_id", "scan__finished_at", "scan_id")
                .values_list("scan__host_id", "scan__finished_at", "result_set_id", "result_set__digest"))
    assessed = _assessed_refs(framework, ((rs, digest) for _h, _f, rs, digest in rows), in_sql=in_sql)
    everything = frozenset(measured)
    missing_of: dict[frozenset[str], frozenset[str]] = {}  # assessed refs -> the measured refs left out
    out: dict[tuple[int, str], list[Span]] = defaultdict(list)
    host_id = cov = None
    since: dict[str, datetime] = {}
    before: frozenset[str] = frozenset()

    def close(host_id: int, until: datetime) -> None:
        for ref, s in since.items():
            out[(host_id, ref)].append((s, until))

    for h, finished_at, rs, _digest in rows:
        if h != host_id:
            if host_id is not None:
                close(host_id, cov.end)
            host_id, cov, since, before = h, coverage[h], {}, frozenset()
        refs = assessed.get(rs)
        if refs is None:
            now = everything
        elif (now := missing_of.get(refs)) is None:
            now = missing_of[refs] = everything - refs
        if now is before:
            continue
        if now != before:
            moment = min(max(finished_at, cov.start), cov.end)
            for ref in before - now:
                out[(host_id, ref)].append((since.pop(ref), moment))
            for ref in now - before:
                since[ref] = moment
        before = now
    if host_id is not None:
        close(host_id, cov.end)
    return {key: merge(spans) for key, spans in out.items()}


def _host_rows(fleet: list[ControlEffectiveness], cov: HostCoverage, failing: dict, excepted: dict,
               ongoing: set[tuple[int, str]], unassessed: dict) -> list[ControlEffectiveness]:
    """Every control on one host, from its checks' merged failing and excepted spans."""
    host_id, observed = cov.host_id, [(cov.start, cov.end)]
    gaps = merge((g.start, g.end) for g in cov.gaps)
    gap_time = total(gaps)
    rows = []
    for summary in fleet:
        row = ControlEffectiveness(summary.ref, summary.title, host_id, summary.checks, summary.automated,
                                   expected=cov.expected, gaps=gap_time)
        failed, exempt, unknown = (_union(failing, host_id, row.checks), _union(excepted, host_id, row.checks),
                                   unassessed.get((host_id, row.ref)))
        if not (failed or exempt or unknown):  # most controls on most hosts: passing whenever observed
            rows.append(row)
            continue
        fails = intersect(failed, observed)
        excused = subtract(intersect(exempt, observed), fails)
        missing = subtract(subtract(unknown or [], fails), gaps)
        row.failing = total(subtract(fails, gaps))
        row.excepted = total(subtract(subtract(excused, missing), gaps))
        row.not_assessed = total(missing)
        still = any((host_id, c) in ongoing for c in row.checks)
        row.windows = [Stretch(s, e, still and e == cov.end) for s, e in (merge(fails + excused) if excused else fails)]
        rows.append(row)
    return rows


def _framework_controls(framework: str) -> list[tuple[str, str]]:
    controls = list(Control.objects.filter(framework__slug=framework).order_by("sort_key").values_list("ref", "title"))
    if not controls:
        known = ", ".join(Framework.objects.order_by("slug").values_list("slug", flat=True))
        raise ValueError(f"unknown framework {framework!r}; known: {known or 'none (load_catalog)'}")
    return controls


def operating_effectiveness(framework: str, period: Period, hosts: Hosts = None,
                            controls: Iterable[str] | None = None, *, range_agg: bool | None = None) -> Effectiveness:
    """Operating effectiveness of the framework's controls (or of ``controls``, by ref) over
    ``period``, per host and fleet-wide (definitions in this module's docstring).
    ``range_agg``: see ``merged_windows`` (tests run both ways)."""
    start, end = clip_period(period)
    catalog = _framework_controls(framework)
    if controls is not None:
        wanted = set(controls)
        unknown = wanted - {ref for ref, _ in catalog}
        if unknown:
            raise ValueError(f"not controls of {framework}: {', '.join(sorted(unknown))}")
        catalog = [(ref, title) for ref, title in catalog if ref in wanted]
    checks_of: dict[str, list[str]] = defaultdict(list)
    for check_id, refs in check_controls().items():
        for slug, ref in refs:
            if slug == framework:
                checks_of[ref].append(check_id)
    kinds = {spec.id: spec.kind for spec in registry.all_checks()}
    checks = sorted({c for ref, _ in catalog for c in checks_of.get(ref, ())})

    coverage = host_coverage(period, hosts)
    window_q = _exceptions_q(start, end)
    exceptions = [e for e in ControlException.objects.filter(window_q, check_id__in=checks)
                  .filter(Q(host__isnull=True) | host_filter(coverage.keys()))]
    failing: dict[tuple[int, str], list[Span]] = defaultdict(list)  # (host, check) -> spans (raw, merged)
    excepted: dict[tuple[int, str], list[Span]] = defaultdict(list)
    ongoing: set[tuple[int, str]] = set()  # still failing when the host's expected coverage ends
    exceptions_of: dict[str, list[ControlException]] = defaultdict(list)
    for exc in exceptions:
        exceptions_of[exc.check_id].append(exc)
    in_force: dict[tuple[int, str, str], list[Span]] = {}  # (host, check, resource) -> exceptions' spans
    asked = None if hosts is None else list(coverage)
    for host_id, check_id, resource, s, e, still_open in merged_windows(asked, checks, start, end, exceptions,
                                                                        range_agg=range_agg):
        if host_id not in coverage:  # nothing expected of it in the period (archived before it)
            continue
        if still_open or e > coverage[host_id].end:
            ongoing.add((host_id, check_id))
        if not resource:
            failing[(host_id, check_id)].append((s, e))
            continue
        if (spans := in_force.get((host_id, check_id, resource))) is None:
            spans = in_force[(host_id, check_id, resource)] = merge(
                (exc.decided_at, min(exc.expires_at, exc.revoked_at or exc.expires_at))
                for exc in exceptions_of.get(check_id, ()) if exc.matches(host_id, check_id, resource))
        failing[(host_id, check_id)] += subtract([(s, e)], spans)
        excepted[(host_id, check_id)] += intersect([(s, e)], spans)

    failing = {key: merge(spans) for key, spans in failing.items()}
    excepted = {key: merge(spans) for key, spans in excepted.items()}

    fleet = [ControlEffectiveness(ref, title, None, tuple(checks_of.get(ref, ())),
                                  any(kinds.get(c) == Kind.AUTOMATED for c in checks_of.get(ref, ())))
             for ref, title in catalog]
    unassessed = _unassessed(framework, coverage, {row.ref for row in fleet if row.checks})
    per_host: dict[int, list[ControlEffectiveness]] = {}
    for host_id, cov in sorted(coverage.items()):
        per_host[host_id] = rows = _host_rows(fleet, cov, failing, excepted, ongoing, unassessed)
        for summary, row in zip(fleet, rows, strict=True):
            summary.expected += row.expected
            summary.failing += row.failing
            summary.excepted += row.excepted
            summary.gaps += row.gaps
            summary.not_assessed += row.not_assessed
            summary.hosts_failing += bool(row.windows)
    return Effectiveness(framework, start, end, fleet, per_host, coverage)

"""Verdicts as read: every check x resource of a set of scans, with the exceptions and
attestations in force at a moment applied **in the database**.

``findings(hosts=..., at=T)`` reads the current scan of each host at T
(``posture.queries.scans.current_scans``); ``findings(scans=[...], at=T)`` reads given scans
(a scan page, ``scan --json``). Either way the answer is one lazy ``QuerySet`` of
``CheckResult`` rows, one per (scan, result), annotated in SQL with:

- ``scan_id``, ``host_id``, ``host_name``, ``scanned_at`` (the scan's finish);
- ``verdict``: the status after exceptions and attestations in force at T. A stored ``fail``
  reads ``excepted`` when an exception in force matches (check, host or every host, resource
  name ``~ resource_regex``: exactly ``ControlException.matches``); a stored ``manual`` reads
  ``pass`` while an attestation of the check (for the host or every host) is valid.
  ``status`` stays the stored verdict;
- ``exception_id`` / ``attestation_id``: which one applied (the lowest id when several do);
- ``severity``, ``severity_rank``, ``title`` from the catalog (a retired check keeps its rows,
  with no severity: an outer join, never an inner one that would drop them);
- ``failing_since`` (stored ``fail`` only): ``opened_at`` of the failure window in force when
  the scan finished: the open one (through its partial unique index) or, for a scan read after
  the window closed, the window that was open then.

Nothing is loaded into Python: filters (``filter_findings``, also behind
``posture.filtersets.FindingFilterSet``), ordering and pagination run in SQL, so a page costs
a COUNT and a LIMIT/OFFSET query whatever the number of hosts or results.

Filters on the catalog (framework, control, severity) are ``check_id IN (subquery)``, not
joins through ``Check.controls``: a check supporting two controls of a framework must not
list its rows twice."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import Func
from django.db.models.functions import MD5, Coalesce
from django.db.models.lookups import Regex
from django.db.models.sql.constants import INNER
from django.utils import timezone

from posture.choices import ResultStatus
from posture.models import (
    Attestation,
    Check,
    CheckResult,
    ControlException,
    CurrentFinding,
    DockerHost,
    FailureWindow,
    ScanRun,
)
from posture.queries.scans import HostRef, current_scan, current_scans

#: The path from a result to the evaluations that hold it (result -> chunk -> set -> evaluation).
_EVAL = "chunk__memberships__result_set__evaluations"

#: Worst first (posture.choices.ResultStatus); ``status_rank`` 0 is the worst.
STATUS_ORDER: tuple[str, ...] = ResultStatus.order()
_RANK = {s: i for i, s in enumerate(STATUS_ORDER)}
#: The catalog's severities, worst first (scanners.checks.base.Severity).
SEVERITY_ORDER: tuple[str, ...] = ("critical", "high", "medium", "low", "info")
RESOURCE_TYPES: tuple[str, ...] = ("daemon", "host", "image", "container")

#: ``ordering`` names -> SQL columns (ascending: worst status and severity first).
ORDERINGS: dict[str, tuple[str, ...]] = {
    "status": ("status_rank",),
    "severity": ("severity_rank",),
    "host": ("host_name",),
    "resource": ("resource_type", "resource"),
    "check": ("check_id",),
    "failing_since": ("failing_since",),
}
DEFAULT_ORDERING: tuple[str, ...] = ("status", "severity", "check", "host", "resource")
#: Appended to every ordering: (scan, result) is unique, so pages never overlap or skip.
TIEBREAK: tuple[str, ...] = ("host_name", "check_id", "resource_type", "resource", "scan_id", "id")


def scan_ids(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None, at: datetime | None,
             scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None) -> QuerySet[ScanRun] | list[int]:
    """The scans read: ``scans`` when given, else the current scan at ``at`` of ``hosts``
    (default: every unarchived host), as ids or a subquery of them."""
    if scans is not None:
        if isinstance(scans, QuerySet):
            return scans.values("pk")
        return [s.pk if isinstance(s, ScanRun) else int(s) for s in scans]
    if hosts is None:
        hosts = DockerHost.objects.filter(archived_at__isnull=True)
    return current_scans(hosts, at).values("pk")


class AnyOf(Func):
    """``column = ANY(ARRAY(subquery))``: the subquery runs once, as an init plan, and the
    planner drives the join from the few rows it returns (index probes), where ``column IN
    (subquery)`` lets it hash-join every stored result to every result set first and narrow
    last (57 M intermediate rows on the seeded year)."""

    output_field = BooleanField()
    conditional = True

    def as_sql(self, compiler, connection, **extra):
        column, column_params = compiler.compile(self.source_expressions[0])
        values, values_params = compiler.compile(self.source_expressions[1])
        values = values if values.startswith("(") else f"({values})"
        if connection.vendor != "postgresql":  # the embedded SQLite: a plain IN plans well there
            return f"{column} IN {values}", (*column_params, *values_params)
        return f"{column} = ANY(ARRAY{values})", (*column_params, *values_params)


def results_of(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None, at: datetime | None = None,
               scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None) -> QuerySet[CheckResult]:
    """The stored results of the scans (given, or current at ``at``; hosts default to the
    unarchived ones), one row per (scan, result) through each scan's current evaluation,
    annotated with the scan and its host; no exception applied yet. One lazy query, driven
    from the scans' evaluations (``AnyOf``)."""
    ids = scan_ids(hosts, at, scans)
    scan_filter = (AnyOf(F(f"{_EVAL}__scan_id"), ids) if isinstance(ids, QuerySet)
                   else Q(**{f"{_EVAL}__scan_id__in": ids}))
    return (CheckResult.objects.filter(scan_filter, **{f"{_EVAL}__current": True})
            .annotate(scan_id=F(f"{_EVAL}__scan_id"), host_id=F(f"{_EVAL}__scan__host_id"),
                      host_name=F(f"{_EVAL}__scan__host__name"), scanned_at=F(f"{_EVAL}__scan__finished_at")))


def exceptions_in_force(at: datetime) -> QuerySet[ControlException]:
    """Exceptions matching the outer result row (needs ``check_id``, ``host_id``, ``resource``)
    in force at ``at``: the SQL form of ``ControlException.in_force`` and ``.matches``."""
    return (ControlException.objects.filter(ControlException.active_q(at), check_id=OuterRef("check_id"))
            .filter(Q(host__isnull=True) | Q(host_id=OuterRef("host_id")))
            .filter(Regex(OuterRef("resource"), F("resource_regex")))
            .order_by("pk"))


def attestations_in_force(at: datetime) -> QuerySet[Attestation]:
    """Attestations of the outer row's check, for its host or every host, valid at ``at``."""
    return (Attestation.objects.filter(Attestation.active_q(at), check_id=OuterRef("check_id"))
            .filter(Q(host__isnull=True) | Q(host_id=OuterRef("host_id")))
            .order_by("pk"))


def _window_since() -> Coalesce:
    """opened_at of the failure window in force when the outer row's scan finished."""
    same = {"host_id": OuterRef("host_id"), "check_id": OuterRef("check_id"),
            "resource_type": OuterRef("resource_type"), "opened_at__lte": OuterRef("scanned_at")}
    # The open window, found through the partial unique index on (host, check, type, md5(resource)).
    open_window = (FailureWindow.objects.alias(resource_md5=MD5("resource"))
                   .filter(closed_scan__isnull=True, resource_md5=MD5(OuterRef("resource")),
                           resource=OuterRef("resource"), **same).values("opened_at")[:1])
    closed_later = (FailureWindow.objects.filter(resource=OuterRef("resource"), closed_at__gt=OuterRef("scanned_at"),
                                                 **same).order_by("-opened_at").values("opened_at")[:1])
    return Coalesce(Subquery(open_window), Subquery(closed_later), output_field=DateTimeField())


def _rank(field: str, order: Sequence[str]) -> Case:
    return Case(*[When(**{field: value}, then=Value(i)) for i, value in enumerate(order)],
                default=Value(len(order)), output_field=IntegerField())


def _outer_join_catalog(qs: QuerySet[CheckResult]) -> QuerySet[CheckResult]:
    """Make the join to the catalog's Check a LEFT JOIN: ``catalog_check`` is a non-null
    relation without a constraint, which Django joins INNER, and a check retired from the
    catalog would take its findings out of every list."""
    query = qs.query
    for alias, join in list(query.alias_map.items()):
        if getattr(join, "table_name", None) == Check._meta.db_table and join.join_type == INNER:
            query.alias_map[alias] = join.promote()
    return qs


def findings(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None, at: datetime | None = None, *,
             scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None,
             ordering: Sequence[str] | None = None, **filters: Any) -> QuerySet:
    """The verdicts of ``hosts`` (default: every unarchived host) in their current scans at
    ``at``, or of the given ``scans``, after the exceptions and attestations in force at ``at``;
    filtered by ``filters`` (see ``filter_findings``) and ordered by ``ordering`` (names of
    ``ORDERINGS``, ``-`` for descending; default ``DEFAULT_ORDERING``), always with a stable
    tiebreak. One lazy query.

    Now (no ``at``, no ``scans``) reads the read model ``posture.models.CurrentFinding``,
    whose sort keys are indexed columns; a moment or given scans read the stored results. Rows
    of either answer the same names (``result_id``, ``check_id``, ``status``, ``verdict``,
    ``detail``, ``scan_id``, ``host_name``, ...) in the same order."""
    if at is None and scans is None:
        qs = _current_rows(hosts)
    else:
        qs = _stored_rows(hosts, at or timezone.now(), scans)
    return order_findings(filter_findings(qs, **filters), ordering)


def _verdict() -> Case:
    """The verdict after exceptions and attestations, over the stored status and the two ids."""
    return Case(When(exception_id__isnull=False, then=Value(ResultStatus.EXCEPTED.value)),
                When(attestation_id__isnull=False, then=Value(ResultStatus.PASS.value)),
                default=F("status"), output_field=CharField())


def _shown() -> dict[str, Any]:
    """What both read paths annotate alike: the verdict, the catalog's severity and title, and
    failing since."""
    return {"verdict": _verdict(), "severity": F("catalog_check__severity"), "title": F("catalog_check__title"),
            "failing_since": Case(When(status="fail", then=_window_since()), default=None,
                                  output_field=DateTimeField())}


def of_hosts(qs: QuerySet, hosts: Iterable[HostRef] | QuerySet[DockerHost] | None) -> QuerySet:
    """A read-model queryset (a ``host`` relation) narrowed to ``hosts`` (default: every
    unarchived host)."""
    if hosts is None:
        return qs.filter(host__archived_at__isnull=True)
    if isinstance(hosts, QuerySet):
        return qs.filter(host_id__in=hosts.order_by().values("pk"))
    return qs.filter(host_id__in=[h.pk if isinstance(h, DockerHost) else int(h) for h in hosts])


def _current_rows(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None) -> QuerySet[CurrentFinding]:
    """Now, from the read model (its exceptions brought up to date first: a few small queries)."""
    from posture.jobs.current import ensure_fresh

    ensure_fresh()
    qs = of_hosts(CurrentFinding.objects.all(), hosts)
    # The stored result's own columns are subqueries, not a join: evaluated for the rows shown
    # only, and a COUNT never joins the results.
    result = CheckResult.objects.filter(pk=OuterRef("result_id"))
    qs = qs.annotate(
        scan_id=F("current__scan_id"), host_name=F("host__name"), scanned_at=F("current__finished_at"),
        **{name: Subquery(result.values(name)[:1]) for name in ("detail", "evidence_kind", "evidence_key",
                                                                 "check_version")},
        status_rank=F("verdict_rank"), **_shown(),
    )
    return _outer_join_catalog(qs)


def _stored_rows(hosts, at: datetime, scans) -> QuerySet[CheckResult]:
    """At a moment, or of given scans: the stored results with exceptions matched in SQL."""
    qs = results_of(hosts, at, scans)
    # Each subquery runs only for rows of a check that has an exception (attestation) in
    # force at all: the gate is one hashed subplan, so a failing row of any other check costs
    # a hash probe, not a scan of the exceptions.
    excepted_checks = ControlException.objects.filter(ControlException.active_q(at)).values("check_id")
    attested_checks = Attestation.objects.filter(Attestation.active_q(at)).values("check_id")
    qs = qs.annotate(
        result_id=F("id"),
        exception_id=Case(When(status="fail", check_id__in=excepted_checks,
                               then=Subquery(exceptions_in_force(at).values("pk")[:1])),
                          default=None, output_field=BigIntegerField()),
        attestation_id=Case(When(status="manual", check_id__in=attested_checks,
                                 then=Subquery(attestations_in_force(at).values("pk")[:1])),
                            default=None, output_field=BigIntegerField()),
    ).annotate(
        # Written over the stored status and the two ids (never over ``verdict`` itself), so
        # each subquery runs at most once per expression and filters can use the status index.
        status_rank=Case(
            When(status="fail", then=Case(When(exception_id__isnull=True, then=Value(_RANK["fail"])),
                                          default=Value(_RANK["excepted"]))),
            When(status="manual", then=Case(When(attestation_id__isnull=True, then=Value(_RANK["manual"])),
                                            default=Value(_RANK["pass"]))),
            *[When(status=s, then=Value(i)) for s, i in _RANK.items() if s not in ("fail", "manual", "excepted")],
            default=Value(len(STATUS_ORDER)), output_field=IntegerField()),
        **_shown(),
    ).annotate(
        severity_rank=_rank("severity", SEVERITY_ORDER),
    )
    return _outer_join_catalog(qs)


#: The columns ``finding_rows`` answers, in this order (names of ``findings``' rows).
ROW_COLUMNS: tuple[str, ...] = ("host_name", "scan_id", "scanned_at", "check_id", "title", "severity",
                                "resource_type", "resource", "status", "verdict", "exception_id", "attestation_id",
                                "failing_since", "detail")
#: The stored columns ``finding_rows`` reads through ``results_of``, named as in its SQL.
_BASE_COLUMNS = ("id", "scan_id", "host_id", "host_name", "scanned_at", "check_id", "resource_type", "resource",
                 "status", "detail")
#: ``ORDERINGS``' columns as ``finding_rows``' SQL names them.
_ROW_SQL = {"host_name": "r.host_name", "check_id": "r.check_id", "resource_type": "r.resource_type",
            "resource": "r.resource", "scan_id": "r.scan_id", "id": "r.id", "failing_since": "f.opened_at"}


def finding_rows(scans: Iterable[ScanRun | int] | QuerySet[ScanRun], at: datetime, *,
                 ordering: Sequence[str] | None = None, chunk: int = 2000, **filters: Any) -> Iterator[tuple]:
    """The rows of ``findings(scans=scans, at=at, ordering=ordering, **filters)
    .values_list(*ROW_COLUMNS)``, as plain tuples from a server-side cursor (``chunk`` rows a
    round trip), for exports that read every row once. (``status`` and ``new_since``, filters
    on the derived columns, are not taken.)

    On PostgreSQL one set-based query: each row looks its exception and attestation up once,
    in a LATERAL join (the queryset's ``verdict`` repeats ``exception_id``'s and
    ``attestation_id``'s subqueries, as Django inlines an annotation wherever it is used), and
    failing since comes from one join to the failure windows in force at each scan's finish
    (DISTINCT ON, the open window first, as ``_window_since`` prefers it), not from two
    correlated subqueries per failing row. Elsewhere (the embedded SQLite) the queryset's rows."""
    if {"status", "new_since"} & filters.keys():
        raise ValueError("finding_rows filters on stored columns only: use findings() for status or new_since")
    if connection.vendor != "postgresql":
        rows = findings(scans=scans, at=at, ordering=ordering, **filters).values_list(*ROW_COLUMNS)
        yield from rows.iterator(chunk_size=chunk)
        return
    sql, params = _rows_sql(scans, at, ordering, filters)
    with _work_mem(ROWS_WORK_MEM), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(chunk):
            yield from rows


#: PostgreSQL's work_mem while ``finding_rows`` runs: its sort holds every row (44 MB for a
#: fleet of 100 hosts, 160k rows), which the default 4 MB writes to temporary files and
#: merges back (a fifth of the query's time). A larger answer still spills, as before.
ROWS_WORK_MEM = "64MB"


@contextmanager
def _work_mem(size: str) -> Iterator[None]:
    """The session's work_mem at ``size`` in the block, then back to what it was (a failed
    transaction rolls the change back by itself)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('work_mem'), set_config('work_mem', %s, false)", [size])
        previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        with suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('work_mem', %s, false)", [previous])


def _rows_sql(scans, at: datetime, ordering: Sequence[str] | None, filters: dict[str, Any]) -> tuple[str, list]:
    """``finding_rows``' query: the stored results, exceptions, attestations and scans as
    the query layer selects them (Django compiles each part), joined in one statement."""
    ids = scan_ids(None, at, scans)
    base = filter_findings(results_of(scans=scans), **filters).order_by().values_list(*_BASE_COLUMNS)
    in_force = [ControlException.objects.filter(ControlException.active_q(at)).order_by()
                .values_list("pk", "check_id", "host_id", "resource_regex"),
                Attestation.objects.filter(Attestation.active_q(at)).order_by().values_list("pk", "check_id", "host_id")]
    read = ScanRun.objects.filter(pk__in=ids).order_by().values_list("pk", "host_id", "finished_at")
    parts = [q.query.sql_with_params() for q in (base, *in_force, read)]
    (base_sql, base_params), (exc_sql, exc_params), (att_sql, att_params), (scan_sql, scan_params) = parts
    ranks = " ".join(f"WHEN r.status = '{s}' THEN {i}" for s, i in _RANK.items()
                     if s not in ("fail", "manual", "excepted"))
    severities = " ".join(f"WHEN c.severity = '{s}' THEN {i}" for i, s in enumerate(SEVERITY_ORDER))
    columns = {**_ROW_SQL,  # the sort keys of _stored_rows' annotations, over the joined ids
               "status_rank": f"""CASE WHEN r.status = 'fail' THEN CASE WHEN r.exception_id IS NULL THEN {_RANK["fail"]}
                                       ELSE {_RANK["excepted"]} END
                                  WHEN r.status = 'manual' THEN CASE WHEN r.attestation_id IS NULL THEN {_RANK["manual"]}
                                       ELSE {_RANK["pass"]} END
                                  {ranks} ELSE {len(STATUS_ORDER)} END""",
               "severity_rank": f"CASE {severities} ELSE {len(SEVERITY_ORDER)} END"}
    order = []
    for name in ordering or DEFAULT_ORDERING:
        key = name.lstrip("-")
        if key not in ORDERINGS:
            raise ValueError(f"unknown ordering {name!r}; valid: {', '.join(ORDERINGS)}")
        order += [f"{columns[c]} {'DESC' if name.startswith('-') else 'ASC'} NULLS LAST" for c in ORDERINGS[key]]
    order += [f"{columns[c]} ASC" for c in TIEBREAK]
    # The inner SELECT looks each row's exception (attestation) up once, only for a failing
    # (manual) row of a check that has one in force at all (a hashed gate, as _stored_rows);
    # OFFSET 0 keeps it a subquery, so the outer verdict reads the ids instead of repeating
    # the lookups.
    sql = f"""
        SELECT r.host_name, r.scan_id, r.scanned_at, r.check_id, c.title, c.severity, r.resource_type, r.resource,
               r.status, CASE WHEN r.exception_id IS NOT NULL THEN 'excepted'
                              WHEN r.attestation_id IS NOT NULL THEN 'pass' ELSE r.status END,
               r.exception_id, r.attestation_id, f.opened_at, r.detail
        FROM (
            SELECT b.*,
                   CASE WHEN b.status = 'fail' AND b.check_id IN (SELECT check_id FROM exc) THEN
                        (SELECT min(e.id) FROM exc e WHERE e.check_id = b.check_id
                         AND (e.host_id IS NULL OR e.host_id = b.host_id) AND b.resource ~ e.resource_regex)
                   END AS exception_id,
                   CASE WHEN b.status = 'manual' AND b.check_id IN (SELECT check_id FROM att) THEN
                        (SELECT min(t.id) FROM att t WHERE t.check_id = b.check_id
                         AND (t.host_id IS NULL OR t.host_id = b.host_id))
                   END AS attestation_id
            FROM ({base_sql}) AS b ({", ".join(_BASE_COLUMNS)})
            OFFSET 0) r
        LEFT JOIN {Check._meta.db_table} c ON c.id = r.check_id
        LEFT JOIN (
            SELECT DISTINCT ON (s.id, w.check_id, w.resource_type, w.resource)
                   s.id AS scan_id, w.check_id, w.resource_type, w.resource, w.opened_at
            FROM ({scan_sql}) AS s (id, host_id, finished_at)
            JOIN {FailureWindow._meta.db_table} w ON w.host_id = s.host_id AND w.opened_at <= s.finished_at
                 AND (w.closed_scan_id IS NULL OR w.closed_at > s.finished_at)
            ORDER BY s.id, w.check_id, w.resource_type, w.resource, w.closed_scan_id IS NULL DESC, w.opened_at DESC
        ) f ON r.status = 'fail' AND f.scan_id = r.scan_id AND f.check_id = r.check_id
               AND f.resource_type = r.resource_type AND f.resource = r.resource
        ORDER BY {", ".join(order)}"""
    sql = (f"WITH exc (id, check_id, host_id, resource_regex) AS ({exc_sql}), "
           f"att (id, check_id, host_id) AS ({att_sql}) {sql}")
    return sql, [*exc_params, *att_params, *base_params, *scan_params]


def order_findings(qs: QuerySet[CheckResult], ordering: Sequence[str] | None = None) -> QuerySet[CheckResult]:
    """Order by ``ordering`` names (``-name`` descending; unknown names raise ValueError),
    then by the stable tiebreak. Failing since sorts its empty values last either way."""
    fields: list[Any] = []
    for name in ordering or DEFAULT_ORDERING:
        descending = name.startswith("-")
        key = name.lstrip("-")
        if key not in ORDERINGS:
            raise ValueError(f"unknown ordering {name!r}; valid: {', '.join(ORDERINGS)}")
        for column in ORDERINGS[key]:
            fields.append(F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True))
    return qs.order_by(*fields, *TIEBREAK)


def host_q(value: str, *, name: str = "host_name", id: str = "host_id") -> Q:
    """A host given by name, or by id when it is all digits (names may be digits too); the
    columns default to the findings' annotations (``name="name", id="pk"`` for hosts)."""
    q = Q(**{name: value})
    return q | Q(**{id: int(value)}) if value.isdigit() and len(value) < 19 else q


def filter_findings(qs: QuerySet[CheckResult], *, framework: str | None = None, control: str | None = None,
                    host: str | None = None, resource_type: Sequence[str] | str | None = None,
                    resource: str | None = None, resource_contains: str | None = None,
                    check: str | None = None, status: Sequence[str] | str | None = None,
                    severity: Sequence[str] | str | None = None,
                    new_since: datetime | None = None) -> QuerySet[CheckResult]:
    """Narrow a ``findings`` queryset, every test in SQL. ``control`` is a ref within
    ``framework`` (required with it); ``status`` is the verdict after exceptions; ``new_since``
    keeps failures whose window opened at or after the moment. Lists mean "any of"."""
    if control and not framework:
        raise ValueError("a control is a ref within a framework: give the framework too")
    if framework:
        controls = {"controls__framework__slug": framework}
        if control:
            controls["controls__ref"] = control
        qs = qs.filter(check_id__in=Check.objects.filter(**controls).values("id"))
    if host:
        qs = qs.filter(host_q(host))
    if resource_type:
        qs = qs.filter(resource_type__in=_listed(resource_type))
    if resource is not None and resource != "":
        qs = qs.filter(resource=resource)
    if resource_contains:
        qs = qs.filter(resource__icontains=resource_contains)
    if check:
        qs = qs.filter(check_id=check)
    if status:
        if qs.model is CurrentFinding:
            qs = qs.filter(verdict_rank__in=sorted({_RANK[s] for s in _listed(status) if s in _RANK}))
        else:
            qs = qs.filter(verdict_q(_listed(status)))
    if severity:
        if qs.model is CurrentFinding:
            unrated = len(SEVERITY_ORDER)
            qs = qs.filter(severity_rank__in=sorted({SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else unrated
                                                     for s in _listed(severity)}))
        else:
            qs = qs.filter(check_id__in=Check.objects.filter(severity__in=_listed(severity)).values("id"))
    if new_since is not None:
        qs = qs.filter(failing_since__gte=new_since)
    return qs


def verdict_q(statuses: Iterable[str]) -> Q:
    """Rows whose verdict is one of ``statuses``, written over the stored status (indexed)
    and the exception/attestation ids, so only candidate rows run the subqueries."""
    q = Q(pk__in=[])
    for s in statuses:
        if s == ResultStatus.FAIL:
            q |= Q(status="fail", exception_id__isnull=True)
        elif s == ResultStatus.EXCEPTED:
            q |= Q(status="fail", exception_id__isnull=False)
        elif s == ResultStatus.MANUAL:
            q |= Q(status="manual", attestation_id__isnull=True)
        elif s == ResultStatus.PASS:
            q |= Q(status="pass") | Q(status="manual", attestation_id__isnull=False)
        else:
            q |= Q(status=s)
    return q


def _listed(value: Sequence[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def verdict_moment(scan: ScanRun) -> datetime:
    """The moment a scan's verdicts are read at by default: now for the host's current scan,
    else when it finished (the exceptions and attestations in force in its time, as the daily
    posture recorded them). One query."""
    if scan.finished_at is None:
        return timezone.now()
    current = current_scan(scan.host_id)
    return timezone.now() if current is None or current.pk == scan.pk else scan.finished_at


def verdict_counts(qs: QuerySet[CheckResult]) -> dict[str, int]:
    """Rows per verdict (after exceptions) of a findings queryset, worst first: one GROUP BY
    query, so a page's counts agree with its table."""
    rows = dict(qs.order_by().values_list("verdict").annotate(n=Count("*")).values_list("verdict", "n"))
    return {s: rows[s] for s in STATUS_ORDER if rows.get(s)}

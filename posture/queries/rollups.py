"""Control rollups: each control of a framework, per host and fleet-wide, at any moment T.

Definitions (the one place; ``DailyPosture`` rows and trends use the same functions):

- **Results of a control**: the verdicts of every check supporting it, after the exceptions
  and attestations in force at T (``posture.queries.verdicts``): an excepted failure counts
  as ``excepted``, an attested manual check as ``pass``.
- **Control status** (``control_status``): the worst status among its results, in the order
  of ``posture.choices.ResultStatus`` (fail, error, not_assessed, manual, excepted, pass,
  not_applicable). A control with no result behind it (no check supports it, or nothing it
  applies to was seen) is ``not_assessed``: missing evidence is never a pass.
- **Score** (``score``) = pass / (pass + fail) over controls: an excepted control is neither
  (the failure is accepted, not fixed), and controls not assessed, manual or in error do not
  count. None when nothing passed or failed.
- **Coverage** (``coverage``) = assessed / applicable, where assessed = pass + fail +
  excepted and applicable = every control but ``not_applicable``. Shown beside every score:
  a score over few assessed controls says little.
- **Fleet-wide**: a control's counts are summed over the hosts' current scans, its status is
  the worst of those counts, and ``hosts`` says how many hosts have it in each status
  (``hosts_failing`` = those where it fails). The fleet's score and coverage are over
  (host, control) pairs, i.e. the sums of the per-host tallies, exactly what trends sum from
  ``DailyPosture`` rows, so today's point of a trend equals this summary. A host with no
  succeeded scan by T has no verdicts and is not counted (collection gaps are reported by
  the history queries, never as passing).

How it is computed, in a fixed number of small queries whatever the number of hosts:
1. the current evaluations of the scans with their result sets' ``control_counts`` (counts
   per control before exceptions, written at evaluation; immutable, so each process decodes a
   result set's once and a second query reads only those it has not seen);
2. failing results an exception in force at T matches, counted per (scan, check): only the
   rows of checks that have such an exception are read;
3. manual results an attestation in force at T satisfies, counted per (scan, check);
4. the frameworks' controls (titles, supportable, order).
Each (scan, check) adjustment moves counts of the check's controls (``check_controls``)
from fail to excepted, or from manual to pass. Nothing re-aggregates every ``CheckResult``."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from posture.choices import ResultStatus
from posture.jobs.evaluate import check_controls
from posture.models import (
    Attestation,
    Control,
    CurrentFinding,
    CurrentScan,
    DockerHost,
    Evaluation,
    ResultSet,
    ScanRun,
)
from posture.queries.scans import HostRef
from posture.queries.verdicts import attestations_in_force, exceptions_in_force, of_hosts, results_of, scan_ids
from scanners import registry

logger = logging.getLogger(__name__)

#: Worst first.
STATUS_ORDER: tuple[str, ...] = ResultStatus.order()
ASSESSED = ("pass", "fail", "excepted")
Counts = dict[str, int]


_NOT_ASSESSED: str = ResultStatus.NOT_ASSESSED.value


def control_status(counts: Mapping[str, int] | None) -> str:
    """The worst status with a result; ``not_assessed`` when there is none. (Called per
    control x host: a plain loop over plain strings, no enum access.)"""
    if counts:
        for s in STATUS_ORDER:
            if counts.get(s):
                return s
    return _NOT_ASSESSED


def score(tally: Mapping[str, int]) -> float | None:
    """pass / (pass + fail) over a tally of controls per status; None with neither."""
    decided = tally.get("pass", 0) + tally.get("fail", 0)
    return tally.get("pass", 0) / decided if decided else None


def coverage(tally: Mapping[str, int]) -> float | None:
    """assessed (pass, fail, excepted) / applicable (all but not_applicable); None if none applies."""
    applicable = sum(n for s, n in tally.items() if s != "not_applicable")
    return sum(tally.get(s, 0) for s in ASSESSED) / applicable if applicable else None


def adjust(counts: Mapping[str, Counts], framework: str, excepted: Mapping[str, int],
           attested: Mapping[str, int]) -> dict[str, Counts]:
    """Per-control counts before exceptions -> after: for each check, ``excepted[check]``
    failures become ``excepted`` and ``attested[check]`` manual results ``pass`` in every
    control of ``framework`` the check supports. Never below zero (a mapping changed since
    the counts were written moves what there is)."""
    out = dict(counts)  # shared inner dicts; a control that moves gets its own copy
    if not excepted and not attested:
        return out
    mapping = check_controls()
    copied: set[str] = set()
    for moves, src, dst in ((excepted, "fail", "excepted"), (attested, "manual", "pass")):
        for check_id, n in moves.items():
            for slug, ref in mapping.get(check_id, ()):
                if slug != framework or ref not in out:
                    continue
                moved = min(n, out[ref].get(src, 0))
                if moved:
                    if ref not in copied:
                        out[ref] = dict(out[ref])
                        copied.add(ref)
                    out[ref][src] -= moved
                    out[ref][dst] = out[ref].get(dst, 0) + moved
                    if not out[ref][src]:
                        del out[ref][src]
    return out


@dataclass(frozen=True)
class ControlRollup:
    """One control of a framework, for one host or the fleet."""

    framework: str
    ref: str
    control_id: int
    title: str
    section: str
    assess: str
    supportable: bool
    status: str
    counts: Counts  # results per status after exceptions/attestations (summed over hosts)
    hosts: Counts = field(default_factory=dict)  # hosts per control status

    @property
    def hosts_failing(self) -> int:
        return self.hosts.get("fail", 0)


@dataclass(frozen=True)
class FrameworkRollup:
    """Every control of one framework at ``at``, with the summary beside it."""

    framework: str
    at: datetime
    controls: list[ControlRollup]
    hosts: int  # hosts with a current scan (or scans given) counted
    tally: Counts  # controls per status (fleet-wide: their worst status over the fleet)
    pair_tally: Counts  # (host, control) pairs per status: what score and coverage are over

    @cached_property
    def by_ref(self) -> dict[str, ControlRollup]:
        return {row.ref: row for row in self.controls}

    @property
    def score(self) -> float | None:
        return score(self.pair_tally)

    @property
    def coverage(self) -> float | None:
        return coverage(self.pair_tally)

    def summary(self) -> dict:
        return {"framework": self.framework, "at": self.at, "hosts": self.hosts, "controls": dict(self.tally),
                "host_controls": dict(self.pair_tally), "score": self.score, "coverage": self.coverage}


@dataclass(frozen=True)
class _Scan:
    scan_id: int
    host_id: int
    counts: dict[str, dict[str, Counts]]  # framework -> ref -> status -> n


#: Result sets are content-addressed and never change once written, so their per-control
#: counts are decoded once per process: (id, digest) -> counts. Decoding a fleet's JSON
#: (100 hosts x 3 frameworks) was half of a fleet rollup's time.
_COUNTS: OrderedDict[tuple[int, str], dict] = OrderedDict()
_COUNTS_MAX = 4096
_COUNTS_LOCK = threading.Lock()


def _control_counts(sets: Iterable[tuple[int, str]]) -> dict[int, dict]:
    """result set id -> its control counts (every framework): from the cache, the rest in one
    query (none when every set is cached)."""
    sets = list(dict.fromkeys(sets))
    with _COUNTS_LOCK:
        found = {pk: _COUNTS[(pk, digest)] for pk, digest in sets if (pk, digest) in _COUNTS}
    missing = [pk for pk, _digest in sets if pk not in found]
    if missing:
        rows = ResultSet.objects.filter(pk__in=missing).values_list("pk", "digest", "control_counts")
        with _COUNTS_LOCK:
            for pk, digest, counts in rows:
                found[pk] = _COUNTS[(pk, digest)] = counts or {}
            while len(_COUNTS) > _COUNTS_MAX:
                _COUNTS.popitem(last=False)
    return found


#: (scan id, host id, result set id, the result set's digest): what a read stands on.
ScanRow = tuple[int, int, int, str]


def _scans(rows: Sequence[ScanRow], frameworks: Sequence[str]) -> list[_Scan]:
    """The scans with their result sets' control counts (query 1b, only for result sets this
    process has not read yet)."""
    counts = _control_counts((rs, digest) for _s, _h, rs, digest in rows)
    return [_Scan(s, h, {f: counts.get(rs, {}).get(f, {}) for f in frameworks}) for s, h, rs, _d in rows]


def _moves(scan_ids, at: datetime) -> tuple[dict[int, Counts], dict[int, Counts]]:
    """Queries 2 and 3: per scan, check -> failures excepted / manual results attested at ``at``."""
    excepted: dict[int, Counts] = defaultdict(dict)
    attested: dict[int, Counts] = defaultdict(dict)
    rows = results_of(scans=scan_ids)
    for target, status, matching in ((excepted, "fail", exceptions_in_force(at)),
                                     (attested, "manual", attestations_in_force(at))):
        # Only checks something in force names: the rest of the results is never read.
        checks = matching.model.objects.filter(matching.model.active_q(at)).values("check_id")
        grouped = (rows.filter(status=status, check_id__in=checks).filter(Exists(matching))
                   .values("scan_id", "check_id").annotate(n=Count("*")).order_by()
                   .values_list("scan_id", "check_id", "n"))
        for scan_id, check_id, n in grouped:
            target[scan_id][check_id] = n
    return excepted, attested


def _moves_now(found: list[_Scan]) -> tuple[dict[int, Counts], dict[int, Counts]]:
    """Queries 2 and 3 for now, from the read model (``posture.models.CurrentFinding``, made
    fresh by ``_read``), whose rows carry the exception or attestation in force: per scan,
    check -> failures excepted / manual results attested. Index reads of the excepted rank and
    of the attested checks."""
    from posture.jobs.current import RANK

    scan_of = {s.host_id: s.scan_id for s in found}
    excepted: dict[int, Counts] = defaultdict(dict)
    attested: dict[int, Counts] = defaultdict(dict)
    rows = CurrentFinding.objects.filter(host_id__in=list(scan_of))
    for target, narrowed in (
            (excepted, rows.filter(verdict_rank=RANK["excepted"])),
            (attested, rows.filter(check_id__in=Attestation.objects.values("check_id"), status="manual",
                                   attestation_id__isnull=False))):
        for host_id, check_id, n in (narrowed.values("host_id", "check_id").annotate(n=Count("*")).order_by()
                                     .values_list("host_id", "check_id", "n")):
            target[scan_of[host_id]][check_id] = n
    return excepted, attested


@dataclass(frozen=True)
class _Control:
    pk: int
    ref: str
    title: str
    section: str
    assess: str
    supportable: bool


def _controls(frameworks: Sequence[str]) -> dict[str, list[_Control]]:
    """Query 4: the frameworks' controls in document order."""
    out: dict[str, list[_Control]] = {f: [] for f in frameworks}
    for slug, *fields in (Control.objects.filter(framework__slug__in=frameworks)
                          .order_by("framework__slug", "sort_key")
                          .values_list("framework__slug", "pk", "ref", "title", "section", "assess", "supportable")):
        out[slug].append(_Control(*fields))
    return out


@dataclass(frozen=True)
class Read:
    """What a read of posture stands on, and the key of anything computed from it.

    Now: the read model's hosts (``CurrentScan``: each host's current scan and result set, as
    ``sync_host`` left it after the evaluation) and the exceptions and attestations applied to
    its rows (``posture.jobs.current.fresh_state``). At a moment, or of given scans: the scans'
    current evaluations, the moment, and the digest of every exception and attestation. Result
    sets are content-addressed and immutable, so (result sets, exceptions, moment) determine
    every verdict: ``key`` changes whenever an answer could, and a cached answer is never stale
    (an evaluation, a reevaluation, an approval, revocation or lapse, an archived host each
    change it). The catalog enters through ``_catalog_key`` (it changes with the code)."""

    now: bool
    at: datetime
    rows: list[ScanRow]
    key: str
    #: ``key`` and each host's name and current scan: the key of listings of results, which
    #: show them (a rollup's figures do not depend on them).
    rows_key: str
    #: False for a read as of this very moment (given scans, or a moment within the last
    #: minute): a key no later read would share, so caching it would only fill the cache.
    cacheable: bool = True


def read(hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None, at: datetime | None = None,
         scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None) -> Read:
    """The scans a read of ``hosts`` at ``at`` (or of ``scans``) covers, and its key: two
    small queries (now: the read model's freshness check and its current scans)."""
    if at is None and scans is None:
        from posture.jobs.current import fresh_state

        applied_at, digest = fresh_state()
        qs = of_hosts(CurrentScan.objects.all(), hosts)
        digests = ResultSet.objects.filter(pk=OuterRef("result_set_id")).values("digest")[:1]
        found = list(qs.annotate(rs_digest=Subquery(digests)).order_by("scan_id")
                     .values_list("scan_id", "host_id", "result_set_id", "rs_digest", "host__name"))
        now, state = timezone.now(), ("now", applied_at.isoformat(), digest)
    else:
        from posture.jobs.current import exceptions_digest

        now = at or timezone.now()
        found = list(Evaluation.objects.filter(current=True, scan__in=scan_ids(hosts, now, scans)).order_by("scan_id")
                     .values_list("scan_id", "scan__host_id", "result_set_id", "result_set__digest", "scan__host__name"))
        state = ("at", now.isoformat(), exceptions_digest())
    rows = [row[:4] for row in found]
    key = hashlib.md5(repr((_catalog_key(), state, [(h, rs, d) for _s, h, rs, d in rows])).encode(),
                      usedforsecurity=False).hexdigest()
    # Listings of results also show each host's name and scan: their key covers those too.
    rows_key = hashlib.md5(repr((key, [(s, h, name) for s, h, _rs, _d, name in found])).encode(),
                           usedforsecurity=False).hexdigest()
    is_now = at is None and scans is None
    recent = at is None or at > timezone.now() - RECENT
    return Read(is_now, now, rows, key, rows_key, cacheable=is_now or not recent)


@lru_cache(maxsize=1)
def _catalog_key() -> str:
    """The catalog and the check mapping this process reads (both ship with the code; the
    catalog rows are synced from them at start)."""
    from posture.catalog import CATALOG_DIR

    h = hashlib.md5(usedforsecurity=False)
    for path in sorted(Path(CATALOG_DIR).glob("*")):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    h.update(repr(sorted(check_controls().items())).encode())
    h.update(repr(sorted((c.id, c.version, str(c.severity)) for c in registry.all_checks())).encode())
    return h.hexdigest()


#: Answers computed from a ``Read``: in this process (the last few) and in Django's cache
#: (Redis with REDIS_URL, else the database's cache table), shared by every process.
_LOCAL: OrderedDict[str, Any] = OrderedDict()
_LOCAL_MAX = 32
_LOCAL_LOCK = threading.Lock()
#: A moment this close to now is "now" asked explicitly: not worth a cache entry.
RECENT = timedelta(minutes=1)
#: How long an answer is kept: a key that is no longer read just expires.
CACHE_SECONDS = {True: 3600, False: 24 * 3600}  # now / at a moment
_MISSING = object()


def cached(kind: str, parts: tuple, state: Read, compute: Callable[[], Any], *, rows: bool = False) -> Any:
    """``compute()``, or the answer cached for (``kind``, ``parts``, ``state.key``; with
    ``rows``, ``state.rows_key``: a listing that shows hosts' names and scans). The answer is
    shared: callers treat it as read-only. A cache that fails (Redis down) is
    skipped, never an error."""
    if not state.cacheable or not settings.POSTURE_READ_CACHE:
        return compute()
    key = f"posture:read:{kind}:" + hashlib.md5(repr((parts, state.rows_key if rows else state.key)).encode(),
                                                usedforsecurity=False).hexdigest()
    with _LOCAL_LOCK:
        value = _LOCAL.get(key, _MISSING)
        if value is not _MISSING:
            _LOCAL.move_to_end(key)
            return value
    try:
        value = cache.get(key, _MISSING)
    except Exception:  # noqa: BLE001 - a cache outage costs time, not answers
        logger.warning("cache read failed for %s", kind, exc_info=True)
        value = _MISSING
    if value is _MISSING:
        value = compute()
        try:
            cache.set(key, value, CACHE_SECONDS[state.now])
        except Exception:  # noqa: BLE001
            logger.warning("cache write failed for %s", kind, exc_info=True)
    with _LOCAL_LOCK:
        _LOCAL[key] = value
        while len(_LOCAL) > _LOCAL_MAX:
            _LOCAL.popitem(last=False)
    return value


def _compute(frameworks: Sequence[str], state: Read):
    """(frameworks, controls, {scan id: (host id, {framework: {ref: counts after}})})."""
    frameworks = list(dict.fromkeys(frameworks))
    found = _scans(state.rows, frameworks)
    if not found:
        excepted, attested = {}, {}
    else:
        excepted, attested = _moves_now(found) if state.now else _moves([s.scan_id for s in found], state.at)
    controls = _controls(frameworks)
    adjusted = {s.scan_id: (s.host_id, {f: adjust(s.counts.get(f, {}), f, excepted.get(s.scan_id, {}),
                                                  attested.get(s.scan_id, {})) for f in frameworks})
                for s in found}
    return frameworks, controls, adjusted


def _at_now(value: dict[str, FrameworkRollup], state: Read) -> dict[str, FrameworkRollup]:
    """A cached answer about now says the moment it is read at."""
    return {f: replace(r, at=state.at) for f, r in value.items()} if state.now else value


def _rollup(framework: str, at: datetime, controls: list[_Control], per_host: Iterable[dict[str, Counts]],
            tallies: list[Counts] | None = None) -> FrameworkRollup:
    """The fleet's rollup of ``per_host`` counts; ``tallies`` (one dict per host, in order)
    receive each host's controls per status on the way."""
    per_host = list(per_host)
    if len(per_host) == 1 and tallies is None:  # one host (host_rollups): its counts, as they are
        return _one_host(framework, at, controls, per_host[0])
    rows, tally, pair_tally = [], defaultdict(int), defaultdict(int)
    for c in controls:
        summed: Counts = defaultdict(int)
        hosts: Counts = defaultdict(int)
        for i, counts in enumerate(per_host):
            mine = counts.get(c.ref)
            if mine:
                for s, n in mine.items():
                    summed[s] += n
            status = control_status(mine)
            hosts[status] += 1
            pair_tally[status] += 1
            if tallies is not None:
                tallies[i][status] = tallies[i].get(status, 0) + 1
        status = control_status(summed)
        tally[status] += 1
        rows.append(ControlRollup(framework, c.ref, c.pk, c.title, c.section, c.assess, c.supportable, status,
                                  {s: summed[s] for s in STATUS_ORDER if summed.get(s)},
                                  {s: hosts[s] for s in STATUS_ORDER if hosts.get(s)}))
    return FrameworkRollup(framework, at, rows, len(per_host), dict(tally), dict(pair_tally))


def _one_host(framework: str, at: datetime, controls: list[_Control], counts: dict[str, Counts]) -> FrameworkRollup:
    """``_rollup`` of a single host: the same rows, without summing over hosts."""
    rows, tally = [], defaultdict(int)
    for c in controls:
        mine = counts.get(c.ref) or {}
        status = control_status(mine)
        tally[status] += 1
        rows.append(ControlRollup(framework, c.ref, c.pk, c.title, c.section, c.assess, c.supportable, status,
                                  {s: mine[s] for s in STATUS_ORDER if mine.get(s)}, {status: 1}))
    return FrameworkRollup(framework, at, rows, 1, dict(tally), dict(tally))


def rollups(frameworks: Sequence[str], hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None,
            at: datetime | None = None, *, scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None,
            state: Read | None = None
            ) -> dict[str, FrameworkRollup]:
    """Fleet-wide rollups (framework slug -> rollup) of ``hosts`` (default: every unarchived
    host) in their current scans at ``at`` (default now), or of the given ``scans``, with the
    exceptions and attestations in force at ``at``. Two queries when cached (``read``; give
    ``state``, a ``read`` of the same hosts, moment and scans, to share it between answers),
    six at most when computed, whatever the hosts."""
    state = state or read(hosts, at, scans)
    frameworks = list(dict.fromkeys(frameworks))

    def compute() -> dict[str, FrameworkRollup]:
        frameworks_, controls, adjusted = _compute(frameworks, state)
        return {f: _rollup(f, state.at, controls[f], (a[f] for _, a in adjusted.values())) for f in frameworks_}

    return _at_now(cached("rollups", tuple(frameworks), state, compute), state)


def host_rollups(frameworks: Sequence[str], hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None,
                 at: datetime | None = None, *, scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None
                 ) -> dict[int, dict[str, FrameworkRollup]]:
    """Per host: host id -> framework slug -> rollup (the same queries as ``rollups``).
    Hosts without a current scan at ``at`` are absent; give ``scans`` of distinct hosts."""
    state = read(hosts, at, scans)
    frameworks = list(dict.fromkeys(frameworks))

    def compute() -> dict[int, dict[str, FrameworkRollup]]:
        frameworks_, controls, adjusted = _compute(frameworks, state)
        return {host_id: {f: _rollup(f, state.at, controls[f], [a[f]]) for f in frameworks_}
                for host_id, a in adjusted.values()}

    value = cached("host_rollups", tuple(frameworks), state, compute)
    return {h: _at_now(per, state) for h, per in value.items()} if state.now else value


def _tally(controls: list[_Control], counts: dict[str, Counts]) -> Counts:
    """One host's controls per status."""
    tally: Counts = defaultdict(int)
    for c in controls:
        tally[control_status(counts.get(c.ref))] += 1
    return dict(tally)


def rollup(framework: str, hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None,
           at: datetime | None = None, *, scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None
           ) -> FrameworkRollup:
    """One framework's rollup (``rollups`` for a single framework)."""
    return rollups([framework], hosts, at, scans=scans)[framework]


def fleet_and_hosts(frameworks: Sequence[str], hosts: Iterable[HostRef] | QuerySet[DockerHost] | None = None,
                    at: datetime | None = None, *, scans: Iterable[ScanRun | int] | QuerySet[ScanRun] | None = None,
                    state: Read | None = None
                    ) -> tuple[dict[str, FrameworkRollup], dict[int, dict[str, Counts]]]:
    """The fleet's rollups (as ``rollups``) and each host's controls per status (as
    each ``host_rollups`` tally) from one computation: the overview's figures, without building a row
    per control for every host. Cached like ``rollups``."""
    state = state or read(hosts, at, scans)
    frameworks = list(dict.fromkeys(frameworks))

    def compute() -> tuple[dict[str, FrameworkRollup], dict[int, dict[str, Counts]]]:
        frameworks_, controls, adjusted = _compute(frameworks, state)
        host_ids = [host_id for host_id, _ in adjusted.values()]
        per_host: dict[int, dict[str, Counts]] = {h: {} for h in host_ids}
        fleet = {}
        for f in frameworks_:
            tallies: list[Counts] = [{} for _ in host_ids]
            fleet[f] = _rollup(f, state.at, controls[f], [a[f] for _, a in adjusted.values()], tallies)
            for host_id, t in zip(host_ids, tallies, strict=True):
                per_host[host_id][f] = t
        return fleet, per_host

    fleet, per_host = cached("fleet_and_hosts", tuple(frameworks), state, compute)
    return _at_now(fleet, state), per_host

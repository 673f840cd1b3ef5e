"""Seeded history: N hosts x M containers x K images x D daily scans, written as production writes it.

    result = seed(SeedSpec(hosts=3, containers=6, images=3, days=30, seed=7))

Two halves:
1. **Plan** (pure, no database): every host's life as an event log, deterministic from
   ``SeedSpec.seed`` (``random.Random``, one stream per host and one for the fleet, so the
   plan does not depend on how hosts are split between processes). Containers are
   redeployed (new id; same name, or a new one for a rescaled service) at ``churn`` per
   container-day, a share of deployments carries a configuration fault that flips checks
   (privileged, cap_add, user root, no memory limit, writable rootfs, a port on every
   interface, no health check, host PID or network: seed_docs.FAULTS) and a later
   redeployment fixes it; image repositories release new versions fleet-wide; host-days are
   missed (collection gaps) and a few scans fail; some host probes fail for a day.
2. **Write** through the real write path, on a clock set to when each thing happened
   (time-machine): ``ScanRun`` queued and claimed as a worker would, evidence and chain link
   by ``posture.jobs.scans._store_success`` (so ``ingest.store_snapshot``), failed scans by
   ``_finish``, verdicts, failure windows and daily rows by
   ``posture.jobs.evaluate.evaluate_scan``. Exceptions (some expiring inside the period,
   one revoked) and attestations (some expiring) are written before the scans, with their
   audit events dated when they happened; they only ever apply to scans inside their period.

What the plan says is returned as ``SeedResult``: hosts, the scan of every host-day, and,
computed from the event log alone (never by reading back through posture), the failure
windows of the tracked checks and the collection gaps to expect.

Speed: hosts are independent; ``workers > 1`` splits them between forked processes
(PostgreSQL only: every process commits on its own connection)."""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.support import seed_docs as docs

ENGINES = (("20.10.24+dfsg1", "6.1.0-18-amd64"), ("24.0.7", "6.1.0-21-amd64"), ("26.1.4", "6.1.0-25-amd64"))
MARGIN = timedelta(minutes=10)
#: Bump when the same spec would produce other evidence (cached benchmark databases are redone).
SEED_VERSION = 1  # no gap sits this close to the 2 x interval threshold


@dataclass(frozen=True)
class SeedSpec:
    hosts: int = 3
    containers: int = 6  # per host, kept constant
    images: int = 3  # image repositories per host (each host also keeps the versions its containers run)
    days: int = 30
    seed: int = 7
    end: date | None = None  # the last seeded day (default: yesterday, UTC)
    churn: float = 0.03  # share of containers redeployed per day
    fault_share: float = 0.3  # share of redeployments that carry a configuration fault
    fix_share: float = 0.8  # share of redeployments of a faulty container that fix it
    missed: float = 0.02  # share of host-days with no scan at all
    failed_scans: int = 3  # host-days whose scan failed (host unreachable)
    probe_failures: int = 2  # host-days whose host probe failed (host checks not assessed)
    exceptions: int = 4
    attestations: int = 3
    probe_share: float = 0.5  # hosts with the host probe on
    release_days: int = 30  # a repository releases a new version every ~N days
    interval_minutes: int = 24 * 60
    prefix: str = "seed"  # host names: {prefix}-{index:03d}
    workers: int = 1
    history: str = "live"  # "live": each evaluation keeps windows/daily rows (a worker);
    #                        "rebuild": once per host at the end (reevaluate's path)

    @property
    def last_day(self) -> date:
        return self.end or (datetime.now(UTC).date() - timedelta(days=1))

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


@dataclass(frozen=True)
class Event:
    """One thing that happened to a host on a day (``host`` -1: the fleet)."""

    day: int
    host: int
    kind: str  # deploy | remove | release | missed | failed | probe_failed | engine
    name: str = ""
    detail: tuple = ()  # deploy: (template, fault, serial, repo, version); release: (repo, version)


@dataclass(frozen=True)
class ExpectedWindow:
    host: str
    check_id: str
    resource: str  # a container name (resource_type "container")
    opened_scan: int
    closed_scan: int | None


@dataclass(frozen=True)
class ExpectedGap:
    host: str
    after_scan: int  # the last succeeded scan before the gap
    before_scan: int  # the first one after it
    start: datetime
    end: datetime


@dataclass
class SeedResult:
    spec: SeedSpec
    hosts: dict[str, int]  # name -> id
    scans: dict[tuple[str, date], int]  # succeeded scan of each host-day
    failed: dict[tuple[str, date], int]  # failed scan of a host-day
    finished: dict[int, datetime]  # scan id -> finished_at
    events: list[Event]
    windows: list[ExpectedWindow] = field(default_factory=list)  # tracked checks only
    gaps: list[ExpectedGap] = field(default_factory=list)
    exceptions: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> what was meant
    attestations: dict[int, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def host_scans(self, host: str) -> list[tuple[date, int]]:
        return sorted((d, s) for (h, d), s in self.scans.items() if h == host)


# --- plan ----------------------------------------------------------------------------------

def host_name(spec: SeedSpec, index: int) -> str:
    return f"{spec.prefix}-{index:03d}"


def _fleet(spec: SeedSpec) -> tuple[list[tuple[str, str]], list[Event]]:
    """Fleet repositories (name, template) and their releases."""
    rng = random.Random(f"{spec.seed}:fleet")
    count = max(spec.images * 2, spec.images + 4)
    names = list(docs.TEMPLATE_WEIGHTS)
    repos = [(f"team{i % 7}/app-{i:03d}", rng.choices(names, weights=list(docs.TEMPLATE_WEIGHTS.values()))[0])
             for i in range(count)]
    releases = [Event(day, -1, "release", repo, (repo, 0)) for repo, _ in repos for day in (0,)]
    version = dict.fromkeys((r for r, _ in repos), 0)
    for day in range(1, spec.days + 1):
        for repo, _ in repos:
            if rng.random() < 1 / max(1, spec.release_days):
                version[repo] += 1
                releases.append(Event(day, -1, "release", repo, (repo, version[repo])))
    return repos, releases


def _host_plan(spec: SeedSpec, index: int, repos: list[tuple[str, str]], releases: list[Event]) -> list[Event]:
    """Every event of one host over the period (days 0 .. spec.days - 1)."""
    rng = random.Random(f"{spec.seed}:host:{index}")
    latest: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for e in releases:
        latest[e.detail[0]].append((e.day, e.detail[1]))
    mine = rng.sample(repos, min(spec.images, len(repos)))
    events: list[Event] = [Event(0, index, "engine", detail=ENGINES[rng.randrange(len(ENGINES))])]
    serial = 0
    live: dict[str, tuple[str, str | None, str]] = {}  # name -> (template, fault, repo)

    def version_on(repo: str, day: int) -> int:
        return max(v for d, v in latest[repo] if d <= day)

    def deploy(day: int, name: str, repo: str, template: str, fault: str | None) -> None:
        nonlocal serial
        serial += 1
        live[name] = (template, fault, repo)
        events.append(Event(day, index, "deploy", name, (template, fault, serial, repo, version_on(repo, day))))

    for n in range(spec.containers):
        repo, template = mine[n % len(mine)]
        deploy(0, f"{repo.rsplit('/', 1)[-1]}-{n}", repo, template, None)
    for day in range(1, spec.days):
        for name in sorted(live):
            if rng.random() >= spec.churn:
                continue
            template, fault, repo = live[name]
            if fault and rng.random() < spec.fix_share:
                fault = None
            elif not fault and rng.random() < spec.fault_share:
                fault = rng.choice(docs.faults_for(template))
            if rng.random() < 0.2:  # the service was rescaled under a new name
                del live[name]
                events.append(Event(day, index, "remove", name))
                name = f"{name.rsplit('-', 1)[0]}-{rng.randrange(16 ** 5):05x}"
            deploy(day, name, repo, template, fault)
        if day >= 2 and rng.random() < spec.missed:
            events.append(Event(day, index, "missed"))
    return events


def plan(spec: SeedSpec) -> list[Event]:
    """The whole event log, deterministic from the spec (fleet releases first)."""
    repos, releases = _fleet(spec)
    events = list(releases)
    per_host = [_host_plan(spec, i, repos, releases) for i in range(spec.hosts)]
    rng = random.Random(f"{spec.seed}:incidents")
    missed = {(e.host, e.day) for hp in per_host for e in hp if e.kind == "missed"}
    free = [(h, d) for h in range(spec.hosts) for d in range(2, spec.days) if (h, d) not in missed]
    picked = rng.sample(free, min(len(free), spec.failed_scans + spec.probe_failures))
    for h, d in picked[:spec.failed_scans]:
        per_host[h].append(Event(d, h, "failed"))
    for h, d in picked[spec.failed_scans:]:
        per_host[h].append(Event(d, h, "probe_failed"))
    for hp in per_host:
        events += sorted(hp, key=lambda e: e.day)
    return events


def probe_enabled(spec: SeedSpec, index: int) -> bool:
    return random.Random(f"{spec.seed}:probe:{index}").random() < spec.probe_share


def schedule(spec: SeedSpec, index: int, events: list[Event], days: int | None = None) -> dict[int, tuple[datetime, bool]]:
    """day -> (finished_at, succeeded) of the host's scan, for every day it was scanned.

    Each host scans at its own time of day (hosts are spread over the day) plus a little
    queueing jitter; after a day without a succeeded scan the next one never sits within
    ``MARGIN`` of the collection-gap threshold (2 x interval), so every gap is unambiguous."""
    rng = random.Random(f"{spec.seed}:times:{index}")
    base = timedelta(minutes=rng.randrange(24 * 60 - 60), seconds=rng.randrange(60))
    threshold = timedelta(minutes=2 * spec.interval_minutes)
    missed = {e.day for e in events if e.host == index and e.kind == "missed"}
    failed = {e.day for e in events if e.host == index and e.kind == "failed"}
    out: dict[int, tuple[datetime, bool]] = {}
    previous = None
    for day in range(spec.days if days is None else days):
        jitter = timedelta(seconds=rng.randrange(30 * 60), microseconds=rng.randrange(10 ** 6))
        if day in missed:
            continue
        at = day_start(spec, day) + base + jitter
        if day not in failed:
            if previous is not None and abs((at - previous) - threshold) < MARGIN:
                at += 2 * MARGIN
            previous = at
        out[day] = (at, day not in failed)
    return out


def day_start(spec: SeedSpec, day: int) -> datetime:
    return datetime.combine(spec.first_day + timedelta(days=day), datetime.min.time(), tzinfo=UTC)


# --- expectations from the event log ----------------------------------------------------------

def expected_history(spec: SeedSpec, events: list[Event], result: SeedResult
                     ) -> tuple[list[ExpectedWindow], list[ExpectedGap]]:
    """Failure windows of the tracked checks and collection gaps, replayed from the event
    log, the planned scan times and the declared tables (seed_docs.TEMPLATES/FAULTS) only."""
    windows: list[ExpectedWindow] = []
    gaps: list[ExpectedGap] = []
    for index in range(spec.hosts):
        name = host_name(spec, index)
        pending = sorted((e for e in events if e.host == index and e.kind in ("deploy", "remove")),
                         key=lambda e: e.day)
        state: dict[str, tuple[str, str | None]] = {}
        open_: dict[tuple[str, str], int] = {}
        i = 0
        previous: tuple[int, datetime] | None = None
        for day, scan_id in result.host_scans(name):
            offset = (day - spec.first_day).days
            while i < len(pending) and pending[i].day <= offset:
                e = pending[i]
                if e.kind == "deploy":
                    state[e.name] = (e.detail[0], e.detail[1])
                else:
                    state.pop(e.name, None)
                i += 1
            failing = {(check, n) for n, (tpl, fault) in state.items() for check in docs.expected_failing(tpl, fault)}
            for key in sorted(set(open_) - failing):
                windows.append(ExpectedWindow(name, key[0], key[1], open_.pop(key), scan_id))
            for key in sorted(failing - set(open_)):
                open_[key] = scan_id
            at = result.finished[scan_id]
            if previous and at - previous[1] > timedelta(minutes=2 * spec.interval_minutes):
                gaps.append(ExpectedGap(name, previous[0], scan_id, previous[1], at))
            previous = (scan_id, at)
        windows += [ExpectedWindow(name, c, r, s, None) for (c, r), s in sorted(open_.items())]
    return windows, gaps


# --- evidence of one host, day by day ---------------------------------------------------------

class HostEvidence:
    """Replays a host's events into the documents its collections return; documents are
    built once per deployment and image version and shared by every later snapshot."""

    _images: dict[tuple[str, int], dict] = {}  # fleet-wide: the same image document on every host

    def __init__(self, spec: SeedSpec, index: int, repos: dict[str, str], releases: list[Event]):
        self.spec, self.index = spec, index
        self.name = host_name(spec, index)
        self.repos = repos  # repository -> template
        self.release_day = {(e.detail[0], e.detail[1]): e.day for e in releases}
        self.containers: dict[str, dict] = {}
        self.in_use: dict[str, tuple[str, int]] = {}  # container name -> (repo, version)
        self.pulled: dict[str, int] = {}  # repository -> newest version pulled on this host
        self.engine = ENGINES[0]
        self.probe = probe_enabled(spec, index)

    def image(self, repo: str, version: int) -> dict:
        key = (repo, version)
        if key not in self._images:
            created = day_start(self.spec, self.release_day.get(key, 0)) - timedelta(hours=2)
            self._images[key] = docs.image_doc(repo, version, self.repos[repo], created)
        return self._images[key]

    def apply(self, e: Event) -> None:
        if e.kind == "engine":
            self.engine = e.detail
        elif e.kind == "remove":
            self.containers.pop(e.name, None)
            self.in_use.pop(e.name, None)
        elif e.kind == "deploy":
            template, fault, serial, repo, version = e.detail
            created = day_start(self.spec, e.day) - (timedelta(days=30) if e.day == 0 else timedelta(
                minutes=60 - serial % 50))
            self.containers[e.name] = docs.container_doc(
                host_key=f"{self.spec.seed}:{self.index}", name=e.name, serial=serial, template=template,
                fault=fault, image=self.image(repo, version), created=created)
            self.in_use[e.name] = (repo, version)
            self.pulled[repo] = max(version, self.pulled.get(repo, 0))

    def snapshot(self, probe_failed: bool = False) -> dict:
        keys = set(self.in_use.values()) | set(self.pulled.items())
        images = [self.image(r, v) for r, v in sorted(keys)]
        containers = list(self.containers.values())
        daemon = docs.daemon_docs(f"{self.spec.seed}:{self.index}", self.name, containers, images, self.engine)
        host = docs.host_doc(self.name, failed=probe_failed) if self.probe else None
        return docs.snapshot_of(daemon, images, containers, host)


# --- writing -----------------------------------------------------------------------------------

def _retrying(fn, *args, **kwargs):
    """Run a write again after a deadlock between seeding processes (every write here is
    idempotent; PostgreSQL rolled the loser back)."""
    from django.db import OperationalError

    for attempt in range(5):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def _write_scan(host_id: int, url: str, at: datetime, snapshot: dict | None, history: bool, rng: random.Random):
    """One scheduled scan as a worker runs it: queued, claimed, stored (or failed) and
    evaluated, by the worker's own functions, on a clock set to when it happened (so every
    timestamp production writes, queued_at to Evaluation.created_at, is the scan's)."""
    import time_machine

    from posture.choices import ScanState, Trigger
    from posture.jobs.evaluate import evaluate_scan
    from posture.jobs.scans import Outcome, _finish, _store_success, claim
    from posture.models import ScanRun
    from scanners import snapshot as snap

    started = at - timedelta(seconds=rng.randrange(8, 90), microseconds=rng.randrange(10 ** 6))
    worker = f"celery@worker-{rng.randrange(1, 4)}"
    with time_machine.travel(started - timedelta(seconds=rng.randrange(1, 20)), tick=False):
        scan = ScanRun.objects.create(host_id=host_id, trigger=Trigger.SCHEDULE)
    with time_machine.travel(started, tick=False):
        claimed = claim(scan.pk, worker)
    if claimed.outcome is not Outcome.FINISHED:
        raise RuntimeError(f"scan #{scan.pk} could not be claimed: {claimed.outcome}")
    scan = claimed.scan
    lines = [f"{started:%H:%M:%S} attempt 1 on {worker}: connecting to {url}"]
    with time_machine.travel(at, tick=False):
        if snapshot is None:
            lines.append(f"{at:%H:%M:%S} failed: cannot connect to {url}: connection timed out")
            _finish(scan, ScanState.FAILED, error=f"cannot connect to {url}: connection timed out", lines=lines)
            return scan.pk, False
        lines.append(f"{at:%H:%M:%S} collected {len(snapshot['images'])} images, "
                     f"{len(snapshot['containers'])} containers; storing")
        if not _retrying(_store_success, scan, snapshot, lines):
            raise RuntimeError(f"scan #{scan.pk} could not be stored")
        scan.refresh_from_db()
        # Exactly what load_snapshot(scan) rebuilds from storage, without reading it back.
        stored = snap.join(snap.split(snapshot), warnings=scan.warnings)
        _retrying(evaluate_scan, scan, history=history, snapshot=stored)
    return scan.pk, True


def write_hosts(spec: SeedSpec, indices: list[int], events: list[Event], host_ids: dict[int, int],
                days: range | None = None, extra: list[Event] = ()) -> dict[tuple[int, int], tuple[int, bool, datetime]]:
    """Write the scans of ``indices`` for ``days`` (default: all), day by day across hosts as
    a fleet's workers would; events of earlier days are replayed without writing.
    Returns (host index, day) -> (scan id, succeeded, finished_at)."""
    from posture.jobs.history import rebuild_history
    from posture.models import DockerHost

    repos, releases = _fleet(spec)
    repo_templates = dict(repos)
    days = days if days is not None else range(spec.days)
    last = days.stop
    sims, todo, times, urls = {}, {}, {}, {}
    for index in indices:
        sims[index] = HostEvidence(spec, index, repo_templates, releases)
        mine = sorted([e for e in events if e.host == index] + [e for e in extra if e.host == index],
                      key=lambda e: e.day)
        todo[index] = mine
        times[index] = schedule(spec, index, mine, days=last)
        urls[index] = DockerHost.objects.filter(pk=host_ids[index]).values_list("url", flat=True).get()
    out: dict[tuple[int, int], tuple[int, bool, datetime]] = {}
    cursor = dict.fromkeys(indices, 0)
    for day in range(last):
        for index in indices:
            sim, mine = sims[index], todo[index]
            while cursor[index] < len(mine) and mine[cursor[index]].day <= day:
                sim.apply(mine[cursor[index]])
                cursor[index] += 1
            if day not in days or day not in times[index]:
                continue
            at, ok = times[index][day]
            probe_failed = any(e.day == day and e.kind == "probe_failed" for e in mine)
            rng = random.Random(f"{spec.seed}:scan:{index}:{day}")
            snapshot = sim.snapshot(probe_failed) if ok else None
            scan_id, ok = _write_scan(host_ids[index], urls[index], at, snapshot, spec.history == "live", rng)
            out[(index, day)] = (scan_id, ok, at)
    if spec.history != "live":
        _analyze()
        for index in indices:
            rebuild_history(host_ids[index])
    return out


def _analyze() -> None:
    """Fresh planner statistics after a bulk write (PostgreSQL): until autovacuum gets to the
    tables, the planner believes the results are a fraction of what they are and counts a
    result set's results with a parallel scan of every result (a year of 100 hosts: 600 ms a
    result set instead of 2 ms, two hours of rebuilding instead of two minutes)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _shard(args):
    """One seeding process's hosts (a forked child: it closes the connection it opened)."""
    from django.db import connections

    spec, indices, events, host_ids = args
    try:
        return write_hosts(spec, indices, events, host_ids)
    finally:
        connections.close_all()


# --- entry points --------------------------------------------------------------------------------

def seed(spec: SeedSpec) -> SeedResult:
    """Write the whole seeded history; returns what was made and what to expect of it."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from django.db import connections, transaction

    from posture.models import DockerHost
    from tests.support.seed_rows import create_hosts, people, write_attestations, write_exceptions

    t0 = time.perf_counter()
    events = plan(spec)
    with transaction.atomic():
        operator, approver = people()
        host_ids = create_hosts(spec, operator)
        exceptions = write_exceptions(spec, events, host_ids, operator, approver)
        attestations = write_attestations(spec, host_ids, operator)
    indices = list(range(spec.hosts))
    if spec.workers > 1 and spec.hosts > 1:
        connections.close_all()  # each forked process opens its own connection
        shards = [(spec, indices[w::spec.workers], events, host_ids) for w in range(spec.workers)]
        with ProcessPoolExecutor(max_workers=spec.workers, mp_context=get_context("fork")) as pool:
            written = {k: v for part in pool.map(_shard, shards) for k, v in part.items()}
    else:
        written = write_hosts(spec, indices, events, host_ids)
    result = SeedResult(spec, {host_name(spec, i): host_ids[i] for i in indices}, {}, {}, {}, events,
                        exceptions=exceptions, attestations=attestations)
    for (index, day), (scan_id, ok, at) in written.items():
        key = (host_name(spec, index), spec.first_day + timedelta(days=day))
        (result.scans if ok else result.failed)[key] = scan_id
        result.finished[scan_id] = at
    for index in indices:
        last = max((at for (i, _), (_, ok, at) in written.items() if i == index and ok), default=None)
        if last:
            DockerHost.objects.filter(pk=host_ids[index]).update(
                next_scan_at=last + timedelta(minutes=spec.interval_minutes))
    result.windows, result.gaps = expected_history(spec, events, result)
    result.seconds = time.perf_counter() - t0
    return result


def extend(spec: SeedSpec, *, day: int, changed: bool) -> dict[str, int]:
    """Scan every seeded host once more on ``day`` (>= spec.days, after the seeded period):
    unchanged, or with one container redeployed. Returns host name -> scan id."""
    from posture.models import DockerHost

    if day < spec.days:
        raise ValueError(f"day {day} is inside the seeded period (0 .. {spec.days - 1})")
    events = plan(spec)
    host_ids = dict(DockerHost.objects.filter(name__in=[host_name(spec, i) for i in range(spec.hosts)])
                    .values_list("name", "pk"))
    ids = {i: host_ids[host_name(spec, i)] for i in range(spec.hosts)}
    extra: list[Event] = []
    if changed:
        last: dict[tuple[int, str], Event] = {}
        for e in events:
            if e.kind in ("deploy", "remove"):
                last[(e.host, e.name)] = e
        for index in range(spec.hosts):
            pick = min((e for (h, _), e in last.items() if h == index and e.kind == "deploy"), key=lambda e: e.name)
            template, fault, serial, repo, version = pick.detail
            extra.append(Event(day, index, "deploy", pick.name, (template, fault, 10 ** 6 * day + serial, repo, version)))
    # Written as a worker would today: each evaluation keeps its host's history up to date.
    written = write_hosts(dataclasses.replace(spec, history="live"), list(range(spec.hosts)), events, ids,
                          days=range(day, day + 1), extra=extra)
    return {host_name(spec, i): scan_id for (i, _), (scan_id, _, _) in written.items()}

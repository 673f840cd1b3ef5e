"""Keep the derived history (posture/models/history.py) in step with evaluations.

``record_evaluation`` runs after every evaluation. Failure windows are advanced
incrementally when the scan is the host's newest evaluated succeeded scan and is scored for
the first time (the common case: today's scan); a late, out-of-order or re-scored scan
rebuilds the host's windows from its scans in order instead. The daily row of the scan's day
is recomputed (the day's last succeeded, evaluated scan wins).

Both steps run under a lock on the host row, so two evaluations of one host never
interleave their history writes. ``rebuild_history`` recomputes a host from scratch
(``manage.py reevaluate`` calls it once per host it touched).

One transition function drives both paths: from one scan to the next, only resources whose
chunk changed can change state (a shared chunk means identical verdicts), and for each
(check, resource) ``fail`` opens a window, ``pass``/``not_applicable``/absent closes it,
anything else (``error``, ``not_assessed``, ``manual``) leaves it as it is."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import BigIntegerField, Count, Exists, Q, Value
from django.utils import timezone

from posture.choices import ResultStatus, ScanState
from posture.jobs import current
from posture.jobs.evaluate import FIXED_STATUSES, Key, check_controls, chunk_ids, statuses_in
from posture.models import (
    Attestation,
    CheckResult,
    Control,
    ControlException,
    DailyPosture,
    DockerHost,
    Evaluation,
    FailureWindow,
    ResultChunk,
    ResultSet,
    ResultSetChunk,
    ScanRun,
)
from posture.queries.rollups import adjust, control_status
from posture.queries.verdicts import exceptions_in_force

ROLLUP_ORDER = ResultStatus.order()


# --- failure windows ---------------------------------------------------------------------

def _resources(chunks) -> set[tuple[str, str]]:
    return set(ResultChunk.objects.filter(pk__in=list(chunks)).values_list("resource_type", "resource"))


def _transition(open_keys, changed: set[tuple[str, str]], now: dict[Key, str]) -> tuple[list[Key], list[Key]]:
    """(keys to close, keys to open) when moving to a scan whose changed resources are
    ``changed`` with verdicts ``now`` (for those resources only)."""
    close = [k for k in open_keys if (k[1], k[2]) in changed and now.get(k, "pass") in FIXED_STATUSES]
    opened = [k for k, status in now.items() if status == "fail" and k not in open_keys]
    return close, opened


def _evaluated(host_id: int):
    """Current evaluations of the host's succeeded scans, oldest scan first."""
    return (Evaluation.objects.filter(current=True, scan__host_id=host_id, scan__state=ScanState.SUCCEEDED)
            .order_by("scan__finished_at", "scan_id"))


def _advance_windows(scan: ScanRun, result_set_id: int, previous: Evaluation | None) -> None:
    """Apply one scan after the host's previous evaluated scan (windows are up to date there)."""
    if previous is not None and previous.result_set_id == result_set_id:
        return
    before = chunk_ids(previous.result_set_id) if previous else set()
    after = chunk_ids(result_set_id)
    changed = _resources(before ^ after)
    now = statuses_in(after - before)
    open_rows = {(w.check_id, w.resource_type, w.resource): w.pk
                 for w in FailureWindow.objects.filter(host_id=scan.host_id, closed_scan__isnull=True)
                 .only("pk", "check_id", "resource_type", "resource")}
    close, opened = _transition(open_rows, changed, now)
    if close:
        FailureWindow.objects.filter(pk__in=[open_rows[k] for k in close]).update(
            closed_scan=scan, closed_at=scan.finished_at)
    FailureWindow.objects.bulk_create(
        [FailureWindow(host_id=scan.host_id, check_id=c, resource_type=rt, resource=r, opened_scan=scan,
                       opened_at=scan.finished_at) for c, rt, r in sorted(opened)], batch_size=1000)


def rebuild_windows(host: DockerHost | int) -> int:
    """Recompute every failure window of a host from its evaluated scans in order; returns
    the number of windows. Consecutive scans with the same result set cost nothing."""
    host_id = host.pk if isinstance(host, DockerHost) else host
    steps = list(_evaluated(host_id).values_list("scan_id", "scan__finished_at", "result_set_id"))
    set_ids = {rs for _, _, rs in steps}
    members: dict[int, set[int]] = defaultdict(set)
    for rs, chunk in ResultSetChunk.objects.filter(result_set_id__in=set_ids).values_list("result_set_id", "chunk_id"):
        members[rs].add(chunk)
    all_chunks = set().union(*members.values()) if members else set()
    resource_of = {d: (rt, r) for d, rt, r in ResultChunk.objects.filter(pk__in=list(all_chunks))
                   .values_list("id", "resource_type", "resource")}
    rows_of: dict[int, dict[Key, str]] = defaultdict(dict)
    for chunk, c, rt, r, st in CheckResult.objects.filter(chunk_id__in=list(all_chunks)).values_list(
            "chunk_id", "check_id", "resource_type", "resource", "status"):
        rows_of[chunk][(c, rt, r)] = st
    open_windows: dict[Key, tuple[int, datetime]] = {}
    windows: list[FailureWindow] = []
    before: set[int] = set()
    previous_set = None
    for scan_id, finished_at, rs in steps:
        if rs == previous_set:
            continue
        after = members.get(rs, set())
        changed = {resource_of[d] for d in before ^ after}
        now: dict[Key, str] = {}
        for d in after - before:
            now.update(rows_of[d])
        close, opened = _transition(open_windows, changed, now)
        for key in close:
            opened_scan, opened_at = open_windows.pop(key)
            windows.append(FailureWindow(host_id=host_id, check_id=key[0], resource_type=key[1], resource=key[2],
                                         opened_scan_id=opened_scan, opened_at=opened_at, closed_scan_id=scan_id,
                                         closed_at=finished_at))
        for key in opened:
            open_windows[key] = (scan_id, finished_at)
        before, previous_set = after, rs
    windows += [FailureWindow(host_id=host_id, check_id=k[0], resource_type=k[1], resource=k[2],
                              opened_scan_id=s, opened_at=at) for k, (s, at) in sorted(open_windows.items())]
    with transaction.atomic():
        FailureWindow.objects.filter(host_id=host_id).delete()
        FailureWindow.objects.bulk_create(windows, batch_size=1000)
    return len(windows)


# --- daily posture -------------------------------------------------------------------------

def day_of(moment: datetime) -> date:
    """The day a scan counts for, in the server's time zone (settings.TIME_ZONE)."""
    return timezone.localtime(moment).date()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


@dataclass
class _Context:
    """What daily rows of one host need besides the scan: loaded once per host, with the
    counts of each result set (and each set x exceptions in force) read once."""

    host_id: int
    exceptions: list[ControlException]
    attestations: list[Attestation]
    controls: dict[str, list[str]] = field(default_factory=dict)  # framework slug -> control refs
    per_check: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)  # result set -> check -> counts
    per_control: dict[int, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)  # set -> control_counts
    excepted: dict[tuple, dict[str, int]] = field(default_factory=dict)  # (set, exception ids) -> check -> n

    @classmethod
    def load(cls, host_id: int) -> _Context:
        scope = Q(host__isnull=True) | Q(host_id=host_id)
        controls: dict[str, list[str]] = defaultdict(list)
        for slug, ref in Control.objects.order_by("framework__slug", "sort_key").values_list("framework__slug", "ref"):
            controls[slug].append(ref)
        return cls(
            host_id,
            list(ControlException.objects.filter(scope, decided_at__isnull=False).order_by("pk")),
            list(Attestation.objects.filter(scope).order_by("pk")),
            dict(controls),
        )

    def check_counts(self, result_set_id: int) -> dict[str, dict[str, int]]:
        if result_set_id not in self.per_check:
            counts: dict[str, dict[str, int]] = defaultdict(dict)
            for check_id, status, n in (CheckResult.objects.filter(chunk__memberships__result_set_id=result_set_id)
                                        .values("check_id", "status").annotate(n=Count("id"))
                                        .values_list("check_id", "status", "n")):
                counts[check_id][status] = n
            self.per_check[result_set_id] = dict(counts)
        return self.per_check[result_set_id]

    def control_counts(self, result_set_id: int) -> dict[str, dict[str, dict[str, int]]]:
        """The set's per-control counts before exceptions: what the read side's rollups adjust."""
        if result_set_id not in self.per_control:
            self.per_control[result_set_id] = (
                ResultSet.objects.filter(pk=result_set_id).values_list("control_counts", flat=True).first() or {})
        return self.per_control[result_set_id]

    def excepted_failures(self, result_set_id: int, at: datetime, exceptions: list[ControlException]
                          ) -> dict[str, int]:
        """check -> failing results an exception in force at ``at`` turns into ``excepted``,
        matched in SQL by the read side's own matcher (``verdicts.exceptions_in_force``);
        ``exceptions`` (those in force) only key the cache and name the checks to read."""
        key = (result_set_id, tuple(e.pk for e in exceptions))
        if key not in self.excepted:
            self.excepted[key] = dict(
                CheckResult.objects.filter(chunk__memberships__result_set_id=result_set_id, status="fail",
                                           check_id__in={e.check_id for e in exceptions})
                .annotate(host_id=Value(self.host_id, output_field=BigIntegerField()))
                .filter(Exists(exceptions_in_force(at)))
                .values("check_id").annotate(n=Count("*")).order_by().values_list("check_id", "n")
            ) if exceptions else {}
        return self.excepted[key]


def _daily_rows(ctx: _Context, scan_id: int, at: datetime, result_set_id: int, day: date) -> list[DailyPosture]:
    """The host's rows for ``day`` from its scan at ``at``: control tallies are the read
    side's (``rollups.adjust`` of the set's control counts, ``control_status``), so a day's
    row equals ``host_rollups`` of its scan at ``at``; result counts are per check."""
    excepted = ctx.excepted_failures(result_set_id, at, [e for e in ctx.exceptions if e.in_force(at)])
    attested_checks = {a.check_id for a in ctx.attestations if a.in_force(at)}
    check_counts = ctx.check_counts(result_set_id)
    attested = {c: counts["manual"] for c, counts in check_counts.items()
                if c in attested_checks and counts.get("manual")}
    results: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for check_id, counts in check_counts.items():
        moved_fail, moved_manual = excepted.get(check_id, 0), attested.get(check_id, 0)
        passing, failing = counts.get("pass", 0) + moved_manual, counts.get("fail", 0) - moved_fail
        for slug in {slug for slug, _ref in check_controls().get(check_id, ())}:
            results[slug]["pass"] += passing
            results[slug]["fail"] += failing
    rows = []
    control_counts = ctx.control_counts(result_set_id)
    for slug, refs in ctx.controls.items():
        adjusted = adjust(control_counts.get(slug, {}), slug, excepted, attested)
        tally: dict[str, int] = defaultdict(int)
        for ref in refs:
            # The one definition of a control's status (a control with no result behind it
            # is not assessed), shared with the read side's rollups.
            tally[control_status(adjusted.get(ref))] += 1
        rows.append(DailyPosture(
            host_id=ctx.host_id, framework=slug, day=day, scan_id=scan_id,
            **{f"controls_{s}": tally.get(s, 0) for s in ROLLUP_ORDER},
            results_pass=results[slug]["pass"], results_fail=results[slug]["fail"],
        ))
    return rows


def update_daily(host_id: int, day: date, ctx: _Context | None = None) -> None:
    """Recompute the host's rows for ``day`` from its last evaluated succeeded scan that day
    (none: no row, the day is a gap)."""
    start, end = _day_bounds(day)
    last = (_evaluated(host_id).filter(scan__finished_at__gte=start, scan__finished_at__lt=end)
            .order_by("-scan__finished_at", "-scan_id").values_list("scan_id", "scan__finished_at", "result_set_id")
            .first())
    rows = _daily_rows(ctx or _Context.load(host_id), *last, day) if last else []
    with transaction.atomic():
        DailyPosture.objects.filter(host_id=host_id, day=day).delete()
        DailyPosture.objects.bulk_create(rows)


def rebuild_daily(host: DockerHost | int) -> int:
    """Recompute every daily row of a host; returns the number of days with a row."""
    host_id = host.pk if isinstance(host, DockerHost) else host
    last_of_day: dict[date, tuple[int, datetime, int]] = {}
    for scan_id, finished_at, rs in _evaluated(host_id).values_list("scan_id", "scan__finished_at", "result_set_id"):
        last_of_day[day_of(finished_at)] = (scan_id, finished_at, rs)  # ordered: the day's last wins
    ctx = _Context.load(host_id)
    rows = [row for day, last in sorted(last_of_day.items()) for row in _daily_rows(ctx, *last, day)]
    with transaction.atomic():
        DailyPosture.objects.filter(host_id=host_id).delete()
        DailyPosture.objects.bulk_create(rows, batch_size=1000)
    return len(last_of_day)


# --- entry points --------------------------------------------------------------------------

def record_evaluation(scan: ScanRun, evaluation: Evaluation, *, replaced: int | None = None) -> None:
    """Bring the host's windows and its daily row for the scan's day up to date after
    ``evaluation`` (``replaced``: the result set of the scan's previous current evaluation)."""
    with transaction.atomic():
        DockerHost.objects.select_for_update().filter(pk=scan.host_id).first()
        later = _evaluated(scan.host_id).filter(
            Q(scan__finished_at__gt=scan.finished_at) | Q(scan__finished_at=scan.finished_at, scan_id__gt=scan.pk))
        previous = _evaluated(scan.host_id).filter(
            Q(scan__finished_at__lt=scan.finished_at) | Q(scan__finished_at=scan.finished_at, scan_id__lt=scan.pk)
        ).order_by("-scan__finished_at", "-scan_id").first()
        if replaced == evaluation.result_set_id:
            pass  # same verdicts as before: the windows already say so
        elif replaced is None and not later.exists() and not _windows_missing(scan.host_id, previous):
            _advance_windows(scan, evaluation.result_set_id, previous)
        else:
            rebuild_windows(scan.host_id)
        if previous is not None and not DailyPosture.objects.filter(host_id=scan.host_id).exists():
            rebuild_daily(scan.host_id)  # history from before the daily rows existed
        else:
            update_daily(scan.host_id, day_of(scan.finished_at))
        current.sync_host(scan.host_id)


def _windows_missing(host_id: int, previous: Evaluation | None) -> bool:
    """Failures before, and no window at all: the host's history predates failure windows
    (an upgraded installation, before ``reevaluate --all``). Rebuild rather than start the
    windows from today."""
    return (previous is not None and previous.result_set.counts.get("fail", 0) > 0
            and not FailureWindow.objects.filter(host_id=host_id).exists())


def rebuild_history(host: DockerHost | int) -> tuple[int, int]:
    """Windows and daily rows of one host, from scratch: (windows, days)."""
    host_id = host.pk if isinstance(host, DockerHost) else host
    with transaction.atomic():
        DockerHost.objects.select_for_update().filter(pk=host_id).first()
        windows, days = rebuild_windows(host_id), rebuild_daily(host_id)
        current.sync_host(host_id)
        return windows, days

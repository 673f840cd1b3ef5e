"""Score a scan's stored evidence with the checks; store verdicts content-addressed.

Evaluation reads stored evidence only (never Docker), so history can be re-scored after a
check improves (``manage.py reevaluate``): a new Evaluation row is added, old ones are kept.
Verdicts are keyed by (evidence set, engine version): an evidence set already scored by the
same checks reuses that result set without running anything, which is what makes a daily
scan of an unchanged host, or re-scoring a year of them, cheap.

Storage is per resource (posture/models/results.py): a resource whose verdicts did not
change keeps its ``ResultChunk``; a new result set adds one membership row per resource.
Writes are idempotent and safe when two workers store the same chunks or set at once:
rows are inserted with ``ignore_conflicts`` in digest order, then locked and checked before
a chunk's verdicts (or a set's memberships) are written, all in one transaction.

After storing, the host's history (failure windows, daily posture) is brought up to date:
posture/jobs/history.py."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache

from django.db import transaction

from posture.catalog import load_catalogs
from posture.choices import ResultStatus, ScanState
from posture.jobs.ingest import canonical_json, load_snapshot, sha256_hex
from posture.models import CheckResult, Evaluation, ResultChunk, ResultSet, ResultSetChunk, ScanRun
from posture.queries.scans import previous_scan
from scanners import registry
from scanners.runner import ENGINE_REVISION, run_checks

# Worst first: a control is as bad as the worst result behind it.
STATUS_ORDER = ResultStatus.order(read_time=False)
#: A failure is fixed only when the check now passes, no longer applies, or the resource is gone:
#: an error or a coverage gap (probe failed) says nothing about the failure.
FIXED_STATUSES = ("pass", "not_applicable")
#: One stored verdict: (check id, check version, resource type, resource, status, detail,
#: evidence kind, evidence key). Chunk digests are over sorted lists of these.
Row = tuple[str, int, str, str, str, str, str, str]
Key = tuple[str, str, str]  # (check id, resource type, resource)


@lru_cache(maxsize=1)
def engine_version() -> str:
    """Digest of the engine revision and every check id and version: changes exactly when
    verdicts may change."""
    text = f"engine:{ENGINE_REVISION}\n" + "\n".join(
        f"{s.id}:{s.version}" for s in sorted(registry.all_checks(), key=lambda s: s.id)
    )
    return hashlib.sha256(text.encode()).hexdigest()


@lru_cache(maxsize=1)
def check_controls() -> dict[str, list[tuple[str, str]]]:
    """check id -> [(framework slug, control ref)], derived CIS versions included."""
    catalogs = load_catalogs()
    return {
        s.id: [(slug, ref) for slug, refs in registry.controls_of(s, catalogs).items() for ref in refs]
        for s in registry.all_checks()
    }


def worst(statuses) -> str:
    present = set(statuses)
    return next((s for s in STATUS_ORDER if s in present), "not_applicable")


def _counts(statuses: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for status in statuses:
        counts[status] += 1
    return dict(counts)


def chunk_digest(rows: list[Row]) -> str:
    """The content address of one resource's verdicts (rows sorted)."""
    return sha256_hex(canonical_json(sorted(rows)))


def set_digest(chunk_digests: Iterable[str]) -> str:
    """The content address of a scan's verdicts: over its sorted chunk digests."""
    return sha256_hex(canonical_json(sorted(chunk_digests)))


def group_rows(findings) -> dict[str, list[Row]]:
    """Findings as rows, grouped per resource and keyed by chunk digest."""
    versions = {s.id: s.version for s in registry.all_checks()}
    per_resource: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for f in findings:
        per_resource[(f.resource_type, f.resource)].append(
            (f.check_id, versions.get(f.check_id, 0), f.resource_type, f.resource, str(f.status), f.detail,
             f.evidence_kind, f.evidence_key))
    return {chunk_digest(rows): sorted(rows) for rows in per_resource.values()}


def control_counts(rows: Iterable[Row]) -> dict[str, dict[str, dict[str, int]]]:
    """{framework slug: {control ref: {status: n}}} over the rows (before exceptions)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    mapping = check_controls()
    for row in rows:
        for slug, ref in mapping.get(row[0], ()):
            per_status = out.setdefault(slug, {}).setdefault(ref, {})
            per_status[row[4]] = per_status.get(row[4], 0) + 1
    return out


def assessed_refs(counts: dict[str, dict[str, dict[str, int]]]) -> dict[str, list[str]]:
    """{framework slug: the control refs these ``control_counts`` assessed}: a ref with counts,
    none of them ``not_assessed`` or ``error`` (stored beside the counts: operating
    effectiveness reads which controls each scan in force left unassessed without decoding a
    year of counts)."""
    return {slug: sorted(ref for ref, c in refs.items() if c and not (c.get("not_assessed") or c.get("error")))
            for slug, refs in counts.items()}


def _store_chunks(chunks: dict[str, list[Row]]) -> dict[str, int]:
    """Insert the chunks not stored yet, each with its rows exactly once (caller's
    transaction); returns digest -> id of every chunk."""
    ids = dict(ResultChunk.objects.filter(digest__in=list(chunks)).values_list("digest", "id"))
    missing = sorted(set(chunks) - set(ids))
    if not missing:
        return ids
    ResultChunk.objects.bulk_create(
        [ResultChunk(digest=d, resource_type=chunks[d][0][2], resource=chunks[d][0][3], finding_count=len(chunks[d]),
                     counts=_counts(r[4] for r in chunks[d])) for d in missing],
        batch_size=500, ignore_conflicts=True)
    # A concurrent worker inserting the same chunk waited on our insert (or we on its) and
    # then skipped it; the lock makes "does it have rows yet" a question with one answer.
    new_ids = dict(ResultChunk.objects.select_for_update().filter(digest__in=missing).order_by("digest")
                   .values_list("digest", "id"))
    done = set(CheckResult.objects.filter(chunk_id__in=new_ids.values()).values_list("chunk_id", flat=True).distinct())
    CheckResult.objects.bulk_create(
        [CheckResult(chunk_id=new_ids[d], check_id=c, check_version=v, resource_type=rt, resource=r, status=st,
                     detail=det, evidence_kind=ek, evidence_key=key)
         for d in missing if new_ids[d] not in done for c, v, rt, r, st, det, ek, key in chunks[d]],
        batch_size=1000)
    return {**ids, **new_ids}


def store_result_set(findings) -> ResultSet:
    """The result set of these findings, stored (chunks, rows, memberships) if new."""
    chunks = group_rows(findings)
    digest = set_digest(chunks)
    existing = ResultSet.objects.filter(digest=digest).first()
    if existing:
        return existing
    all_rows = [row for rows in chunks.values() for row in rows]
    with transaction.atomic():
        chunk_ids = _store_chunks(chunks)
        per_control = control_counts(all_rows)
        ResultSet.objects.bulk_create(
            [ResultSet(digest=digest, finding_count=len(all_rows), counts=_counts(r[4] for r in all_rows),
                       control_counts=per_control, assessed=assessed_refs(per_control))], ignore_conflicts=True)
        # Lock the set: two workers scoring the same evidence at once store its memberships once.
        result_set = ResultSet.objects.select_for_update().get(digest=digest)
        if not result_set.memberships.exists():
            ResultSetChunk.objects.bulk_create(
                [ResultSetChunk(result_set_id=result_set.pk, chunk_id=chunk_ids[d]) for d in sorted(chunks)],
                batch_size=1000)
    return result_set


def chunk_ids(result_set_id: int) -> set[int]:
    return set(ResultSetChunk.objects.filter(result_set_id=result_set_id).values_list("chunk_id", flat=True))


def statuses_in(chunks: Iterable[int], only: Iterable[str] | None = None) -> dict[Key, str]:
    """(check, resource type, resource) -> status over the rows of the given chunks."""
    rows = CheckResult.objects.filter(chunk_id__in=list(chunks))
    if only is not None:
        rows = rows.filter(status__in=list(only))
    return {(c, rt, r): st for c, rt, r, st in rows.values_list("check_id", "resource_type", "resource", "status")}


def failure_delta(before_id: int, after_id: int) -> tuple[int, int, int]:
    """(new, fixed, unchanged) failing check x resource pairs from one result set to another.

    Only the chunks that differ are read: a resource whose chunk both sets share has the same
    verdicts in both. ``fixed`` counts failures that now pass or no longer apply, or whose
    resource is gone; a failure that turned into ``error`` or ``not_assessed`` is neither
    fixed nor unchanged."""
    before, after = chunk_ids(before_id), chunk_ids(after_id)
    shared = before & after
    unchanged = sum(c.get("fail", 0) for c in ResultChunk.objects.filter(pk__in=list(shared))
                    .values_list("counts", flat=True))
    was_failing = set(statuses_in(before - after, only=["fail"]))
    now = statuses_in(after - before)
    now_failing = {k for k, st in now.items() if st == "fail"}
    fixed = sum(1 for k in was_failing - now_failing if now.get(k, "pass") in FIXED_STATUSES)
    return len(now_failing - was_failing), fixed, unchanged + len(now_failing & was_failing)


def evaluate_scan(scan: ScanRun, *, history: bool = True, snapshot=None) -> Evaluation:
    """Score one succeeded scan; the new Evaluation becomes its current one.

    ``history=False`` leaves failure windows and daily rows alone: ``reevaluate`` rebuilds
    them once per host after re-scoring its scans, instead of once per scan.
    ``snapshot``: the scan's evidence exactly as ``load_snapshot(scan)`` would rebuild it,
    already in memory (the history seed passes it to skip reloading what it just stored)."""
    if scan.state != ScanState.SUCCEEDED or not scan.evidence_set_id:
        raise ValueError(f"scan #{scan.pk} has no evidence to evaluate ({scan.state})")
    t0 = time.perf_counter()
    version = engine_version()
    reuse = (
        Evaluation.objects.filter(scan__evidence_set_id=scan.evidence_set_id, engine_version=version)
        .values_list("result_set_id", flat=True)
        .first()
    )
    if reuse:
        result_set = ResultSet.objects.get(pk=reuse)
    else:
        result_set = store_result_set(run_checks(load_snapshot(scan) if snapshot is None else snapshot))
    previous = previous_scan(scan)
    prev_eval = previous.evaluations.filter(current=True).first() if previous else None
    if prev_eval is None:  # the first scan of a host: nothing is new or fixed yet
        new, fixed, unchanged = 0, 0, 0
    elif prev_eval.result_set_id == result_set.pk:
        new, fixed, unchanged = 0, 0, result_set.counts.get("fail", 0)
    else:
        new, fixed, unchanged = failure_delta(prev_eval.result_set_id, result_set.pk)
    with transaction.atomic():
        replaced = (Evaluation.objects.filter(scan=scan, current=True).values_list("result_set_id", flat=True)
                    .first())
        Evaluation.objects.filter(scan=scan, current=True).update(current=False)
        evaluation = Evaluation.objects.create(
            scan=scan, result_set=result_set, engine_version=version, current=True,
            new_failures=new, fixed=fixed, unchanged_failures=unchanged,
            duration_ms=int((time.perf_counter() - t0) * 1000),
        )
    if history:
        from posture.jobs.history import record_evaluation

        record_evaluation(scan, evaluation, replaced=replaced)
    return evaluation

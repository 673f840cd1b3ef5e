"""Score a scan's stored evidence with the checks; store verdicts content-addressed.

Evaluation reads stored evidence only (never Docker), so history can be re-scored after a
check improves (``manage.py reevaluate``): a new Evaluation row is added, old ones are kept.
Verdicts are keyed by (evidence set, engine version): an evidence set already scored by the
same checks reuses that result set without running anything, which is what makes a daily
scan of an unchanged host, or re-scoring a year of them, cheap."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from functools import lru_cache

from django.db import transaction

from posture.catalog import load_catalogs
from posture.choices import ResultStatus, ScanState
from posture.jobs.ingest import canonical_json, load_snapshot, sha256_hex
from posture.models import CheckResult, Control, ControlResult, Evaluation, ResultSet, ScanRun
from scanners import registry
from scanners.runner import ENGINE_REVISION, run_checks

# Worst first: a control is as bad as the worst result behind it.
STATUS_ORDER = ResultStatus.order(read_time=False)
COUNT_FIELD = {"pass": "passed", "fail": "failed", "not_applicable": "not_applicable", "manual": "manual",
               "error": "errors", "not_assessed": "not_assessed"}
#: A failure is fixed only when the check now passes, no longer applies, or the resource is gone:
#: an error or a coverage gap (probe failed) says nothing about the failure.
FIXED_STATUSES = ("pass", "not_applicable")


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


def _store_result_set(findings) -> ResultSet:
    versions = {s.id: s.version for s in registry.all_checks()}
    rows = sorted(
        (f.check_id, versions.get(f.check_id, 0), f.resource_type, f.resource, str(f.status), f.detail,
         f.evidence_kind, f.evidence_key)
        for f in findings
    )
    digest = sha256_hex(canonical_json(rows))
    existing = ResultSet.objects.filter(digest=digest).first()
    if existing:
        return existing
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row[4]] += 1
    with transaction.atomic():
        result_set, _ = ResultSet.objects.get_or_create(
            digest=digest, defaults={"finding_count": len(rows), "counts": dict(counts)}
        )
        # Lock the set: two workers scoring the same evidence at once store its rows once.
        result_set = ResultSet.objects.select_for_update().get(pk=digest)
        if result_set.results.exists():
            return result_set
        CheckResult.objects.bulk_create(
            [CheckResult(result_set=result_set, check_id=c, check_version=v, resource_type=rt, resource=r,
                         status=st, detail=d, evidence_kind=ek, evidence_key=key)
             for c, v, rt, r, st, d, ek, key in rows],
            batch_size=1000,
        )
        controls = {(c.framework.slug, c.ref): c for c in Control.objects.select_related("framework")}
        per_control: dict[int, list[str]] = defaultdict(list)
        for check_id, _v, _rt, _r, status, *_ in rows:
            for key in check_controls().get(check_id, ()):
                control = controls.get(key)
                if control is not None:
                    per_control[control.pk].append(status)
        ControlResult.objects.bulk_create(
            [ControlResult(result_set=result_set, control_id=pk, status=worst(sts),
                           **{COUNT_FIELD[s]: sts.count(s) for s in COUNT_FIELD})
             for pk, sts in per_control.items()],
            batch_size=1000,
        )
    return result_set


def failing_pairs(result_set_id: str | None) -> set[tuple[str, str, str]]:
    if not result_set_id:
        return set()
    return set(
        CheckResult.objects.filter(result_set_id=result_set_id, status="fail").values_list(
            "check_id", "resource_type", "resource"
        )
    )


def failure_delta(before_id: str, after_id: str) -> tuple[int, int, int]:
    """(new, fixed, unchanged) failing check x resource pairs from one result set to another.

    ``fixed`` counts failures that now pass or no longer apply, or whose resource is gone;
    a failure that turned into ``error`` or ``not_assessed`` is neither fixed nor unchanged."""
    before = failing_pairs(before_id)
    now_failing = failing_pairs(after_id)
    gone = before - now_failing
    status_now = {
        (check_id, rtype, resource): status
        for check_id, rtype, resource, status in CheckResult.objects.filter(
            result_set_id=after_id, check_id__in={key[0] for key in gone}
        ).values_list("check_id", "resource_type", "resource", "status")
    }
    fixed = sum(1 for key in gone if status_now.get(key, "pass") in FIXED_STATUSES)
    return len(now_failing - before), fixed, len(now_failing & before)


def evaluate_scan(scan: ScanRun) -> Evaluation:
    """Score one succeeded scan; the new Evaluation becomes its current one."""
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
        result_set = _store_result_set(run_checks(load_snapshot(scan)))
    previous = (
        ScanRun.objects.filter(host_id=scan.host_id, state=ScanState.SUCCEEDED, finished_at__lt=scan.finished_at)
        .order_by("-finished_at", "-id")
        .first()
    )
    prev_eval = previous.evaluations.filter(current=True).first() if previous else None
    if prev_eval is None:  # the first scan of a host: nothing is new or fixed yet
        new, fixed, unchanged = 0, 0, 0
    elif prev_eval.result_set_id == result_set.pk:
        new, fixed, unchanged = 0, 0, result_set.counts.get("fail", 0)
    else:
        new, fixed, unchanged = failure_delta(prev_eval.result_set_id, result_set.pk)
    with transaction.atomic():
        Evaluation.objects.filter(scan=scan, current=True).update(current=False)
        return Evaluation.objects.create(
            scan=scan, result_set=result_set, engine_version=version, current=True,
            new_failures=new, fixed=fixed, unchanged_failures=unchanged,
            duration_ms=int((time.perf_counter() - t0) * 1000),
        )

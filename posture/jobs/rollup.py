"""Read verdicts as of a moment: stored results plus the exceptions and attestations that
were in force then.

- An approved, unexpired exception matching (check, host, resource pattern) turns ``fail``
  into ``excepted``; the original detail stays, the exception is named beside it.
- A valid attestation for a manual check turns ``manual`` into ``pass``, naming who attested
  and until when; once it expires the check reads ``manual`` again.
Nothing is rewritten in storage, so "posture at T" uses what was in force at T."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from posture.choices import ResultStatus
from posture.jobs.evaluate import check_controls
from posture.models import Attestation, CheckResult, ControlException, ScanRun

# Worst first, after exceptions: an excepted failure is better than a manual gap, worse than a pass.
ROLLUP_ORDER = ResultStatus.order()


def _in_force(model, scan: ScanRun, at: datetime) -> dict[str, list]:
    rows = model.objects.filter(model.active_q(at)).filter(Q(host__isnull=True) | Q(host_id=scan.host_id))
    if model is Attestation:
        rows = rows.select_related("attested_by")
    grouped: dict[str, list] = defaultdict(list)
    for row in rows.order_by("pk"):
        grouped[row.check_id].append(row)
    return grouped


def scan_results(scan: ScanRun, at: datetime | None = None) -> list[dict]:
    """One dict per check x resource of the scan's current evaluation, as of ``at`` (now)."""
    evaluation = scan.evaluations.filter(current=True).first()
    if evaluation is None:
        return []
    at = at or timezone.now()
    exceptions = _in_force(ControlException, scan, at)
    attestations = _in_force(Attestation, scan, at)
    controls = check_controls()
    out = []
    rows = CheckResult.objects.filter(chunk__memberships__result_set_id=evaluation.result_set_id).order_by(
        "check_id", "resource_type", "resource").values_list(
        "check_id", "resource_type", "resource", "status", "detail", "evidence_kind", "evidence_key"
    )
    for check_id, rtype, resource, status, detail, ekind, ekey in rows:
        if status == "fail":
            exc = next((e for e in exceptions.get(check_id, ()) if e.matches(scan.host_id, check_id, resource)), None)
            if exc is not None:
                status = "excepted"
                detail = f"{detail} [exception #{exc.pk} until {exc.expires_at:%Y-%m-%d}: {exc.justification[:120]}]"
        elif status == "manual" and attestations.get(check_id):
            att = attestations[check_id][0]
            who = att.attested_by.get_username() if att.attested_by else "unknown"
            status = "pass"
            detail = (f"attested by {who} on {att.attested_at:%Y-%m-%d}, valid until {att.valid_until:%Y-%m-%d}: "
                      f"{' '.join(att.statement.split())[:160]}")
        by_fw: dict[str, list[str]] = defaultdict(list)
        for slug, ref in controls.get(check_id, ()):
            by_fw[slug].append(ref)
        out.append({
            "check": check_id,
            "controls": dict(by_fw),
            "resource_type": rtype,
            "resource": resource,
            "status": status,
            "detail": detail,
            "evidence": {"kind": ekind, "key": ekey} if ekind else None,
        })
    return out


def control_rollup(results: list[dict], framework: str) -> dict[str, dict]:
    """framework control ref -> {"status": worst, "counts": {status: n}} over ``results``."""
    summary: dict[str, dict] = {}
    for r in results:
        for ref in r["controls"].get(framework, ()):
            entry = summary.setdefault(ref, {"status": "not_applicable", "counts": defaultdict(int)})
            entry["counts"][r["status"]] += 1
    for entry in summary.values():
        entry["status"] = next(s for s in ROLLUP_ORDER if entry["counts"].get(s)) if entry["counts"] else "not_applicable"
        entry["counts"] = dict(entry["counts"])
    return summary

"""``/scans/<a>/diff/<b>/``: what changed between two scans of a host, as a page (the same
answer as ``GET /api/v1/scans/{a}/diff/?against={b}``, from posture/queries/diffs.py).

Container names, labels and every evidence value shown here are attacker-controlled: the
template auto-escapes them and nothing is marked safe."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render

from posture.models import ScanRun
from posture.queries.diffs import FLIP_KINDS, FLIP_LABELS, DiffError, diff_scans
from posture.views import reader_required


@reader_required
def scan_diff(request, a: int, b: int):
    found = set(ScanRun.objects.filter(pk__in=[a, b]).values_list("pk", flat=True))
    missing = [pk for pk in (a, b) if pk not in found]
    if missing:
        raise Http404(f"there is no scan #{missing[0]}")
    try:
        diff = diff_scans(a, b)
    except DiffError as exc:
        return render(request, "posture/scan_diff.html", {"error": str(exc), "a": a, "b": b}, status=400)
    groups = [(kind, FLIP_LABELS[kind], diff.flips_of(kind)) for kind in FLIP_KINDS if diff.counts.get(kind)]
    return render(request, "posture/scan_diff.html", {"diff": diff, "groups": groups, "a": a, "b": b})

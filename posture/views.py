"""Server-rendered pages. Evidence strings are attacker-controlled: templates auto-escape
them and nothing here marks evidence safe."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.shortcuts import get_object_or_404, render

from posture import roles
from posture.choices import ScanState
from posture.jobs.ingest import load_snapshot
from posture.jobs.rollup import scan_results
from posture.models import DockerHost, ScanRun


def reader_required(view):
    """Logged in (else the login page) and holding a posture role (else 403)."""

    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not roles.can_read(request.user):
            raise PermissionDenied("your account has no posture role")
        return view(request, *args, **kwargs)

    return wrapped


@reader_required
def home(request):
    hosts = list(DockerHost.objects.order_by("name"))
    latest = {
        s.host_id: s
        for s in ScanRun.objects.filter(
            pk__in=ScanRun.objects.values("host_id").annotate(m=Max("id")).values("m")
        )
    }
    current = {
        s.host_id: s
        for s in ScanRun.objects.filter(
            pk__in=ScanRun.objects.filter(state=ScanState.SUCCEEDED).values("host_id").annotate(m=Max("id")).values("m")
        )
    }
    rows = [{"host": h, "latest": latest.get(h.pk), "current": current.get(h.pk)} for h in hosts]
    return render(request, "posture/home.html", {"rows": rows})


@reader_required
def scan_detail(request, pk: int):
    scan = get_object_or_404(ScanRun.objects.select_related("host"), pk=pk)
    snapshot = load_snapshot(scan) if scan.evidence_set_id else None
    results = scan_results(scan)
    status = request.GET.get("status")
    if status:
        results = [r for r in results if r["status"] == status]
    evaluation = scan.evaluations.filter(current=True).select_related("result_set").first()
    return render(request, "posture/scan_detail.html",
                  {"scan": scan, "snapshot": snapshot, "results": results, "evaluation": evaluation, "status": status})

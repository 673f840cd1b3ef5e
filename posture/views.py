"""Server-rendered pages. Evidence strings are attacker-controlled: templates auto-escape
them and nothing here marks evidence safe."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.shortcuts import get_object_or_404, render

from posture.choices import ScanState
from posture.jobs.ingest import load_snapshot
from posture.models import DockerHost, ScanRun


@login_required
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


@login_required
def scan_detail(request, pk: int):
    scan = get_object_or_404(ScanRun.objects.select_related("host"), pk=pk)
    snapshot = load_snapshot(scan) if scan.evidence_set_id else None
    return render(request, "posture/scan_detail.html", {"scan": scan, "snapshot": snapshot})

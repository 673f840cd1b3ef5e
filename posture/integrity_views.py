"""Evidence integrity: per host the state of its hash chain (verified / broken, naming the
first broken scan), its succeeded scans, and its head chain and manifest digests; "Verify
now" recomputes one host's chain synchronously (``posture.jobs.integrity.record_verification``: chain and verdicts), one
host at a time so a request's time stays bounded by one host's history. Every role reads
and may verify (verifying changes no evidence); the POST carries a CSRF token."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from posture.jobs.integrity import record_verification
from posture.models import DockerHost
from posture.queries.integrity import chain_facts, verifications
from posture.views import PAGE_SIZE, reader_required


@reader_required
@require_safe
def integrity_page(request: HttpRequest) -> HttpResponse:
    page = Paginator(DockerHost.objects.filter(archived_at__isnull=True).order_by("name"), PAGE_SIZE) \
        .get_page(request.GET.get("page"))
    return render(request, "posture/integrity.html", {"page": page, "rows": chain_facts(page)})


@reader_required
@require_safe
def integrity_host_page(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(DockerHost, pk=pk)
    return render(request, "posture/integrity_host.html",
                  {"host": host, "facts": chain_facts([host])[0], "history": verifications(host)})


@reader_required
@require_POST
def verify_now(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(DockerHost, pk=pk)
    event = record_verification(request.user, host)
    count = event.detail["problem_count"]
    if count:
        messages.error(request, f"{host.name}: the evidence chain is broken ({count} problem{'s' if count != 1 else ''}); "
                                f"first: {event.detail['problems'][0]}")
    else:
        messages.success(request, f"{host.name}: {event.detail['scans']} scans verified, the chain is intact.")
    return redirect("integrity-host-page", pk=host.pk)

"""Server-rendered pages. Evidence strings are attacker-controlled: templates auto-escape
them and nothing here marks evidence safe."""

from __future__ import annotations

from collections.abc import Iterable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme

from posture import roles
from posture.api.serializers import FindingSerializer
from posture.filtersets import AuditEventFilterSet, FindingFilterSet, strict_filterset
from posture.jobs.ingest import load_snapshot
from posture.models import Attestation, AuditEvent, ScanRun
from posture.queries.diffs import diff_since_previous
from posture.queries.verdicts import verdict_moment
from posture.uploads import attestation_file_response

PAGE_SIZE = 50


def role_required(doing: str | None = None, needs: Iterable[str] = ()):
    """Logged in (else the login page) and holding a posture role, or one of ``needs`` when
    given (else 403 naming the account's role and what ``doing`` needs)."""
    needs = tuple(needs)

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not roles.can_read(request.user):
                raise PermissionDenied(roles.NO_ROLE)
            if needs and not roles.has_any(request.user, needs):
                raise PermissionDenied(roles.refusal(request.user, doing or "this page", needs))
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


reader_required = role_required()


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE): the login page again, status
    429, saying why and for how long. Each refused attempt restarts the cool-off, so the
    whole cool-off is the honest wait."""
    minutes = settings.POSTURE_LOGIN_COOLOFF
    message = (f"Too many failed logins for this account or address; try again in {minutes} "
               f"minute{'s' if minutes != 1 else ''}.")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.path.startswith("/admin/") and not next_url:
        next_url = "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    return render(request, "registration/login.html",
                  {"form": AuthenticationForm(request), "lockout": message, "next": next_url}, status=429)


@reader_required
def scan_detail(request, pk: int):
    """A scan: its verdicts after the exceptions and attestations in force at ``?at=``
    (default: now for the host's current scan, else when it finished), filtered with the
    API's FindingFilterSet and paginated in the database; the counts above the table are
    after exceptions too, so each count is the number of rows its link shows."""
    scan = get_object_or_404(ScanRun.objects.select_related("host", "evidence_set"), pk=pk)
    snapshot = load_snapshot(scan) if scan.evidence_set_id else None
    evaluation = scan.evaluations.filter(current=True).first()
    filterset = FindingFilterSet(request.GET, scans=[scan])
    valid = filterset.is_valid()
    page = counts = None
    if valid and evaluation is not None:
        if not filterset.form.cleaned_data.get("at"):
            filterset.default_at = verdict_moment(scan)
        counts = filterset.verdict_counts()
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
        page.rows = FindingSerializer(page.object_list, many=True).data
    return render(request, "posture/scan_detail.html",
                  {"scan": scan, "snapshot": snapshot, "evaluation": evaluation, "filterset": filterset,
                   "valid": valid, "page": page, "counts": counts, "status": request.GET.get("status", ""),
                   "moment": filterset.moment if valid else None, "changes": diff_since_previous(scan)},
                  status=200 if valid else 400)


@role_required("reading the audit trail", roles.READ_AUDIT)
def audit(request):
    """The audit trail, newest first, filtered as the API filters it (same FilterSet)."""
    filterset = strict_filterset(AuditEventFilterSet, request.GET, AuditEvent.objects.order_by("-at", "-id"))
    valid = filterset.is_valid()
    events = filterset.qs if valid else AuditEvent.objects.none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "posture/audit.html", {"filterset": filterset, "page": page, "valid": valid},
                  status=200 if valid else 400)


@reader_required
def attestation_file(request, pk: int):
    return attestation_file_response(get_object_or_404(Attestation, pk=pk))

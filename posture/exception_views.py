"""The exception and attestation pages: list (filtered with the API's FilterSets), propose,
approve / reject / revoke, an exception's audit trail, and recording attestations.

Every change goes through ``posture.jobs.exceptions`` (``propose``, ``decide``, ``revoke``,
``attest``): the workflow the API uses, with its rules (no self-approval, admins decide,
expiry in the future, manual checks only, the attestation file checks of posture/uploads.py)
and its audit events. Its refusals are shown on the page as they are worded there. Every
POST carries a CSRF token; operators and admins write, auditors read."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from posture import roles
from posture.exception_forms import AttestForm, ProposeForm
from posture.filtersets import AttestationFilterSet, AuditEventFilterSet, ControlExceptionFilterSet, strict_filterset
from posture.jobs import exceptions as workflow
from posture.models import Attestation, AuditEvent, ControlException
from posture.views import PAGE_SIZE, reader_required

#: Room for the form fields around an attestation file in a multipart body (as the API).
FORM_OVERHEAD = 64 * 1024


def exception_rows():
    return ControlException.objects.select_related("host", "proposed_by", "decided_by", "revoked_by").order_by("-id")


def _listing(request: HttpRequest, form: ProposeForm | None, status: int = 200) -> HttpResponse:
    data = request.GET
    filterset = strict_filterset(ControlExceptionFilterSet, data, exception_rows())
    valid = filterset.is_valid()
    page = Paginator(filterset.qs if valid else ControlException.objects.none(), PAGE_SIZE).get_page(data.get("page"))
    return render(request, "posture/exceptions.html",
                  {"page": page, "filterset": filterset, "valid": valid, "form": form, "now": timezone.now()},
                  status=status if valid else 400)


@reader_required
@require_http_methods(["GET", "HEAD", "POST"])
def exceptions_page(request: HttpRequest) -> HttpResponse:
    """GET: the exceptions, filtered as the API filters them, with the propose form for
    operators and admins. POST: propose (``workflow.propose``); bad input re-shows the
    form with the messages, status 400, and stores nothing."""
    can_propose = roles.can_operate(request.user)
    if request.method != "POST":
        return _listing(request, ProposeForm() if can_propose else None)
    if not can_propose:
        raise PermissionDenied(roles.refusal(request.user, "proposing exceptions", roles.OPERATE))
    form = ProposeForm(request.POST)
    if form.is_valid():
        try:
            exc = workflow.propose(request.user, **form.arguments())
        except ValidationError as error:
            form.show(error)
        else:
            messages.success(request, f"Exception #{exc.pk} proposed: an admin other than you must approve it.")
            return redirect("exception-page", pk=exc.pk)
    return _listing(request, form, status=400)


def _detail(request: HttpRequest, exc: ControlException, *, refusal: str = "", status: int = 200) -> HttpResponse:
    trail = strict_filterset(AuditEventFilterSet, {"target": f"exception #{exc.pk}"},
                             AuditEvent.objects.order_by("at", "id"))
    events = trail.qs if trail.is_valid() else AuditEvent.objects.none()
    return render(request, "posture/exception_detail.html",
                  {"exc": exc, "events": events, "now": timezone.now(), "refusal": refusal,
                   "can_decide": roles.has_any(request.user, roles.DECIDE),
                   "can_operate": roles.can_operate(request.user)}, status=status)


@reader_required
def exception_page(request: HttpRequest, pk: int) -> HttpResponse:
    """One exception, what this user may do with it, and its audit trail (oldest first)."""
    return _detail(request, get_object_or_404(exception_rows(), pk=pk))


ACTIONS = {
    "approve": (lambda user, exc: workflow.decide(user, exc, approve=True), "approved"),
    "reject": (lambda user, exc: workflow.decide(user, exc, approve=False), "rejected"),
    "revoke": (workflow.revoke, "revoked"),
}


@reader_required
@require_POST
def exception_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve, reject or revoke through the workflow. A refusal (self-approval, a role that
    may not, a state that does not allow it) is shown on the exception's page with status
    403 or 400, and nothing changes."""
    exc = get_object_or_404(exception_rows(), pk=pk)
    if action not in ACTIONS:
        raise PermissionDenied(f"unknown action {action[:40]!r}")
    run, done = ACTIONS[action]
    try:
        run(request.user, exc)
    except (PermissionDenied, ValidationError) as error:
        refusal = str(error) if isinstance(error, PermissionDenied) else " ".join(error.messages)
        return _detail(request, get_object_or_404(exception_rows(), pk=pk), refusal=refusal,
                       status=403 if isinstance(error, PermissionDenied) else 400)
    messages.success(request, f"Exception #{exc.pk} {done}.")
    return redirect("exception-page", pk=exc.pk)


# --- attestations --------------------------------------------------------------------------

def _attestations(request: HttpRequest, form: AttestForm | None, status: int = 200, refusal: str = "") -> HttpResponse:
    filterset = strict_filterset(AttestationFilterSet, request.GET,
                                 Attestation.objects.select_related("host", "attested_by").order_by("-attested_at", "-id"))
    valid = filterset.is_valid()
    page = Paginator(filterset.qs if valid else Attestation.objects.none(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "posture/attestations.html",
                  {"page": page, "filterset": filterset, "valid": valid, "form": form, "now": timezone.now(),
                   "refusal": refusal}, status=status if valid else 400)


@reader_required
@require_http_methods(["GET", "HEAD", "POST"])
def attestations_page(request: HttpRequest) -> HttpResponse:
    """GET: attestations of manual checks, filtered as the API's list, with the form for
    operators and admins. POST: record one (``workflow.attest``, which checks the file
    before anything is stored); bad input answers 400 with the messages and stores nothing."""
    can_attest = roles.can_operate(request.user)
    if request.method != "POST":
        return _attestations(request, AttestForm() if can_attest else None)
    if not can_attest:
        raise PermissionDenied(roles.refusal(request.user, "recording attestations", roles.OPERATE))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = settings.POSTURE_ATTESTATION_MAX_BYTES
    if length > limit + FORM_OVERHEAD:  # refused before the body is parsed (and spooled to disk)
        return _attestations(request, AttestForm(), status=400,
                             refusal=f"the upload is {length} bytes; attestation files may be at most {limit} bytes")
    form = AttestForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            att = workflow.attest(request.user, **form.arguments())
        except ValidationError as error:
            form.show(error)
        else:
            messages.success(request, f"Attestation #{att.pk} recorded for {att.check_id}.")
            return redirect(reverse("attestations-page"))
    return _attestations(request, form, status=400)

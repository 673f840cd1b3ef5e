"""The /tokens/ page: a person's API tokens (an admin's: everyone's), a form that creates one and
shows it once, and revoke buttons (POST with CSRF).

The new token is rendered into the answer to the POST that created it and nowhere else: it is
not put in the session or a redirect, and that answer is ``Cache-Control: no-store`` so the
browser keeps no copy of it either."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from posture import roles
from posture.filtersets import ApiTokenFilterSet, strict_filterset
from posture.jobs import tokens as token_jobs
from posture.views import PAGE_SIZE, reader_required


class TokenForm(forms.Form):
    name = forms.CharField(max_length=token_jobs.NAME_MAX, help_text="what it is for, e.g. nightly export")
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=token_jobs.EXPIRY_MAX_DAYS, initial=90,
                                         label="Expires in (days)", help_text="empty: until revoked")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@reader_required
def tokens_page(request):
    form, new, status = TokenForm(), None, 200
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                new = token_jobs.create_token(request.user, form.cleaned_data["name"],
                                              expires_in_days=form.cleaned_data["expires_in_days"], actor=request.user)
                form = TokenForm()
            except ValidationError as exc:
                form.add_error(None, exc.messages)
        if new is None:
            status = 400
    is_admin = roles.ADMIN in roles.roles_of(request.user)
    filterset = strict_filterset(ApiTokenFilterSet, request.GET, token_jobs.visible_tokens(request.user))
    valid = filterset.is_valid()
    rows = filterset.qs if valid else filterset.queryset.none()
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "posture/tokens.html", {"form": form, "new": new, "page": page, "filterset": filterset,
                                                    "valid": valid, "is_admin": is_admin},
                  status=status if valid else 400)


@require_POST
@reader_required
def revoke_token_page(request, pk: int):
    token = get_object_or_404(token_jobs.visible_tokens(request.user), pk=pk)
    token, changed = token_jobs.revoke_token(request.user, token)
    if changed:
        messages.success(request, f"Token {token.display_prefix} ({token.name}) revoked: it no longer works.")
    else:
        messages.info(request, f"Token {token.display_prefix} ({token.name}) was already revoked.")
    return redirect("tokens-page")

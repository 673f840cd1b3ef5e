"""The findings page: every verdict of the fleet at ``?at=`` (default now), filtered, ordered
and paginated in SQL through ``FindingFilterSet``, or grouped by resource or by control
(``?group=``) so a 9-container host is a few rows, not 340.

The filters are a GET form, so every view is a URL to share. An unknown parameter or a bad
value is a 400 page naming it (the FilterSet's refusal), never a silently wider list."""

from __future__ import annotations

from typing import ClassVar

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from posture.filtersets import PAGING_PARAMS, FindingFilterSet, ListingChoiceFilter
from posture.jobs.evaluate import check_controls
from posture.queries import groups
from posture.views import PAGE_SIZE, reader_required

#: The framework a control grouping reads when none is given.
DEFAULT_FRAMEWORK = "cis-docker-1.8.0"
GROUPS = {"resource": "by resource", "control": "by control"}


class FindingPageFilterSet(FindingFilterSet):
    """``FindingFilterSet`` plus the page's ``group`` (not a filter: how rows are shown)."""

    extra_params: ClassVar[tuple[str, ...]] = PAGING_PARAMS
    group = ListingChoiceFilter(choices=list(GROUPS.items()), method="keep", label="Group",
                                empty_label="no grouping")


#: Examples shown in empty filter boxes (the help text is the field's title).
PLACEHOLDERS = {"at": "2026-11-01T00:00Z", "new_since": "2026-11-01", "control": "5.5", "host": "name or id",
                "ref": "5.5 or CC6.1", "section": "5 or CC6", "resource_type": "container,image",
                "resource": "exact name", "resource_contains": "part of a name", "status": "fail,error",
                "severity": "critical,high", "ordering": "-severity,host"}


def with_placeholders(filterset):
    """Each text filter shows a short example as its placeholder and its help as a title."""
    for name, field in filterset.form.fields.items():
        if name in PLACEHOLDERS and not hasattr(field.widget, "choices"):
            field.widget.attrs.setdefault("placeholder", PLACEHOLDERS[name])
        if field.help_text:
            field.widget.attrs.setdefault("title", str(field.help_text))
    return filterset


def cis_refs(check_id: str) -> list[str]:
    return [ref for slug, ref in check_controls().get(check_id, ()) if slug == DEFAULT_FRAMEWORK]


@reader_required
def findings(request: HttpRequest) -> HttpResponse:
    filterset = with_placeholders(FindingPageFilterSet(request.GET))
    valid = filterset.is_valid()
    context: dict = {"filterset": filterset, "valid": valid, "groups": GROUPS, "group": "", "page": None}
    if not valid:
        return render(request, "posture/findings.html", context, status=400)
    data = filterset.form.cleaned_data
    group = data.get("group") or ""
    context.update(group=group, moment=filterset.moment, framework=data.get("framework") or DEFAULT_FRAMEWORK,
                   counts=filterset.verdict_counts() if not group else None)
    if group == "resource":
        page = Paginator(groups.by_resource(filterset.qs), PAGE_SIZE).get_page(request.GET.get("page"))
        page.rows = [{**row, "counts": groups.resource_counts(row)} for row in page.object_list]
    elif group == "control":
        page = Paginator(groups.by_control(filterset.qs, context["framework"]), PAGE_SIZE).get_page(
            request.GET.get("page"))
        page.rows = list(page.object_list)
    else:
        page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
        page.rows = list(page.object_list)
        for row in page.rows:
            row.cis = cis_refs(row.check_id)
    context["page"] = page
    return render(request, "posture/findings.html", context)

"""One pagination style for every API list: page numbers.

``?page=`` (from 1) and ``?page_size=`` (default 50). A page size over ``max_page_size`` (500)
is clamped to it (the answer's ``results`` then hold 500 rows: a script asking for "all" gets
the most the server gives per request and follows ``next``). A page or page size that is not
a whole number of at least 1 is a 400 naming the parameter; a page past the last one is a 404
that says how many pages there are. DRF's default would silently use 50 for a bad page size
and answer "Invalid page." for both."""

from __future__ import annotations

from django.core.paginator import InvalidPage
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

MAX_PAGE_SIZE = 500


def _whole(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValidationError({name: [f"a whole number of at least 1 (got {raw[:40]!r})"]})
    return int(raw)


class Pagination(PageNumberPagination):
    """50 per page by default; ``?page_size=`` up to 500 (more is clamped to 500)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_query_description = "page number, from 1 (a page past the last one is a 404)"
    page_size_query_description = f"rows per page, from 1; default 50, at most {MAX_PAGE_SIZE} (more is clamped)"

    def get_page_size(self, request) -> int:
        size = _whole(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        number = _whole(request, self.page_query_param) or 1
        self.request = request
        paginator = self.django_paginator_class(queryset, self.get_page_size(request))
        try:
            self.page = paginator.page(number)
        except InvalidPage:
            pages = paginator.num_pages
            raise NotFound(f"no page {number}: there {'is 1 page' if pages == 1 else f'are {pages} pages'} "
                           f"of {paginator.per_page}") from None
        return list(self.page)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            param["schema"]["minimum"] = 1
        return params


class RollupPagination(Pagination):
    """A scan's control rollups: the page, plus ``summary`` (each framework's score and
    coverage over the whole rollup, not just the page), documented in the schema."""

    #: Registered as a component by posture.api.schema.AutoSchema (the serializer, by path).
    summary_component = "RollupSummary"
    summary_serializer = "posture.api.serializers.RollupSummarySerializer"

    def get_paginated_response_schema(self, schema: dict) -> dict:
        paged = super().get_paginated_response_schema(schema)
        paged["properties"]["summary"] = {
            "type": "array", "items": {"$ref": f"#/components/schemas/{self.summary_component}"},
            "description": "each framework's score and coverage over every row, not only this page"}
        paged["required"] = [*paged.get("required", []), "summary"]
        return paged

"""The API's default filter backend: strict filtering for every list action.

The rule itself (an unknown parameter is a 400 listing the accepted ones; a bad value is a
400 from the FilterSet, ``ListingChoiceFilter`` naming the valid choices) lives in
``posture.filtersets`` (``StrictFilterSet``, ``strict_filterset``), shared with the pages
and exports; this module only applies it to DRF views and raises the API's error.

Accepted everywhere besides the FilterSet's own parameters: ``page``, ``page_size``,
``format`` and ``ordering`` (``ALWAYS_ACCEPTED``); a view may accept more with
``extra_query_params`` (e.g. ``framework`` on /controls/, which the view reads itself)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions

from posture.filtersets import (  # noqa: F401 (re-exported: their home before posture.filtersets)
    ALWAYS_ACCEPTED,
    accepted_params,
    strict_filterset,
    unknown_message,
    unknown_params,
)

#: View actions that list (and so are filtered); others (detail, custom actions) read their
#: own parameters and are left alone, so ``/hosts/5/`` is never hidden by a list filter.
LIST_ACTIONS = ("list",)


def reject_unknown(data: Mapping[str, object], accepted: Iterable[str]) -> None:
    """Raise the API's 400 (a ValidationError by parameter) for any parameter not accepted,
    for endpoints without a FilterSet."""
    accepted = list(accepted)
    unknown = unknown_params(data, accepted)
    if unknown:
        message = unknown_message(accepted)
        raise exceptions.ValidationError({name[:100]: [message] for name in unknown})


class StrictFilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend for list actions that refuses unknown parameters (400 listing the
    accepted ones) and invalid values (400 from the FilterSet). A listing without a
    FilterSet accepts only ``ALWAYS_ACCEPTED`` and the view's ``extra_query_params``."""

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", None) not in LIST_ACTIONS:
            return queryset
        extra = getattr(view, "extra_query_params", ())
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            reject_unknown(request.query_params, accepted_params(None, extra))
            return queryset
        filterset = strict_filterset(filterset_class, request.query_params, queryset, request=request, extra=extra)
        if not filterset.is_valid():
            raise exceptions.ValidationError({k: list(v) for k, v in filterset.errors.items()})
        return filterset.qs

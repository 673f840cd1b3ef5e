"""The schema's AutoSchema: every operation documents the errors it can answer, all with the
one error body (posture.api.errors.ErrorSerializer), so a generated client knows their shape
and a schema-driven test (tests/posture/api/test_schemathesis.py) can hold every response to
the schema.

Which errors, and why each operation gets them:
- 401: every operation needs credentials (a missing, invalid, expired or revoked token).
- 403: every operation checks roles (posture/api/permissions.py).
- 429: every operation is throttled (posture/api/throttling.py).
- 404: operations with a path parameter (no such object), and lists (a page past the last).
- 400: operations that take a body or query parameters (bad values, unknown filters).

Operations marked by posture.api.conditional also document ``If-None-Match``, the ``ETag``
header of their 200 and the 304.

Filter parameters say what the server parses (``filter_schema``): a moment is a date-time, a
yes/no a boolean, a comma-separated list an array (``style: form, explode: false``) of its
choices, a fixed choice list an enum. Choices read from the database at request time (the
frameworks, the checks) are not listed: the schema never queries the database.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.utils.module_loading import import_string
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import build_choice_description_list, build_parameter_type
from drf_spectacular.utils import OpenApiParameter

from posture.api.conditional import MARK
from posture.api.errors import ErrorSerializer
from posture.filtersets import CSVChoiceField, MomentField, TrueFalseFilter

ERRORS = {
    "400": "invalid input: `message` says what to fix, `fields` which parameter or field",
    "401": "no credentials, or a token that is invalid, expired or revoked (`code` says which)",
    "403": "the caller's role does not allow this: `message` names the role it needs",
    "404": "no such object, or a page past the last one",
    "429": "too many requests: `Retry-After` says when to try again",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, plus the error answers of every operation."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        params = operation.get("parameters", [])
        codes = ["401", "403", "429"]
        if any(p.get("in") == "path" for p in params) or self._is_list_view():
            codes.append("404")
        if "requestBody" in operation or any(p.get("in") == "query" for p in params):
            codes.append("400")
        ref = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation["responses"]
        for code in sorted(codes):
            responses.setdefault(code, {"content": {"application/json": {"schema": ref}}, "description": ERRORS[code]})
        summary = getattr(self._get_paginator(), "summary_serializer", None)
        if summary:  # by path: serializers import views' neighbours
            self.resolve_serializer(import_string(summary), "response")  # the page's summary items
        if self._is_conditional():
            self._document_conditional(operation)
        return operation

    def _is_conditional(self) -> bool:
        action = getattr(self.view, "action", None) or self.method.lower()
        return self.method == "GET" and getattr(getattr(self.view, action, None), MARK, False)

    @staticmethod
    def _document_conditional(operation: dict) -> None:
        operation.setdefault("parameters", []).append({
            "in": "header", "name": "If-None-Match", "required": False, "schema": {"type": "string"},
            "description": "the ETag of an earlier answer: 304 (no body) if the answer is still the same"})
        ok = operation["responses"].get("200")
        if ok is not None:
            ok.setdefault("headers", {})["ETag"] = {
                "schema": {"type": "string"}, "description": "a hash of the body: send it back as If-None-Match"}
        operation["responses"]["304"] = {"description": "not modified: the answer would be the same as for the ETag"}


# --- filter parameters -------------------------------------------------------------------------

#: Form field classes -> the schema of the value they parse (first match, in order).
_FIELD_SCHEMAS: tuple[tuple[type[forms.Field], dict[str, str]], ...] = (
    (MomentField, {"type": "string", "format": "date-time"}),  # a date alone is midnight
    (forms.DateTimeField, {"type": "string", "format": "date-time"}),
    (forms.DateField, {"type": "string", "format": "date"}),
    (forms.NullBooleanField, {"type": "boolean"}),
    (forms.BooleanField, {"type": "boolean"}),
    (forms.IntegerField, {"type": "integer"}),
    (forms.DecimalField, {"type": "number"}),
    (forms.FloatField, {"type": "number"}),
)


def filter_schema(filter_: django_filters.Filter) -> dict[str, Any]:
    """What one filter's query parameter takes, from the form field that parses it: the
    ``build_parameter_type`` keywords ``schema``, ``description``, ``required`` and, for a
    comma-separated list, ``style`` and ``explode``. Choices are listed (an enum) only when
    they are a fixed list: a callable is evaluated at request time, never here."""
    field_class, extra = filter_.field_class, filter_.extra
    choices = extra.get("choices")
    fixed = [str(key) for key, _label in choices] if choices and not callable(choices) else None
    description = str(extra.get("help_text") or filter_.label or "")
    schema: dict[str, Any] = {"type": "string"}
    if isinstance(filter_, TrueFalseFilter):
        fixed, schema = None, {"type": "boolean"}  # exactly "true" or "false"
    else:
        schema = next((dict(s) for cls, s in _FIELD_SCHEMAS if issubclass(field_class, cls)), schema)
    if schema["type"] == "integer" and extra.get("min_value") is not None:
        schema["minimum"] = extra["min_value"]
    if fixed:
        description = "\n\n".join(filter(None, (description, build_choice_description_list(choices))))
        numbers = all(key.isdigit() for key in fixed)  # e.g. days=30: parsed from its digits
        schema = {"type": "integer", "enum": sorted(map(int, fixed))} if numbers else {**schema, "enum": sorted(fixed)}
    result: dict[str, Any] = {"schema": schema, "description": description, "required": bool(extra.get("required"))}
    if issubclass(field_class, CSVChoiceField):  # "fail,error": any of the values
        result.update(schema={"type": "array", "items": schema}, style="form", explode=False)
    return result


class StrictFilterExtension(DjangoFilterExtension):
    """The filter parameters of listings filtered by ``posture.api.filters.StrictFilterBackend``
    (a view's ``filterset_class``), by ``filter_schema`` like ``filter_parameters``'."""

    target_class = "posture.api.filters.StrictFilterBackend"
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        return [build_parameter_type(name=field_name, location=OpenApiParameter.QUERY, **filter_schema(filter_field))]

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
"""

from __future__ import annotations

from django.utils.module_loading import import_string
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from posture.api.conditional import MARK
from posture.api.errors import ErrorSerializer

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

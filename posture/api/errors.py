"""One error body for the whole API, whatever went wrong:

    {"error": {"status": 400, "code": "invalid", "message": "url: ...", "fields": {"url": ["..."]}}}

- ``status`` repeats the HTTP status; ``code`` is a stable slug to branch on (``invalid``,
  ``parse_error``, ``not_authenticated``, ``token_expired``, ``token_revoked``,
  ``token_invalid``, ``permission_denied``, ``not_found``, ``method_not_allowed``,
  ``conflict``, ``throttled``, ``server_error``, ...); ``message`` is one sentence for a person.
- ``fields`` only on validation errors (400): field name -> list of messages (nested as the
  input is); errors about the request as a whole go into ``message`` only.
- 429 adds ``Retry-After``; 401 adds ``WWW-Authenticate: Bearer realm="posture"``.

Why an envelope rather than DRF's shapes: DRF answers ``{"detail": ...}`` for most errors but
``{"<field>": [...]}`` for validation errors, and a field could be called ``detail``; a client
had to guess which one it got. Unknown URLs under /api/ and errors outside the views (500)
get the same body (``not_found``, ``server_error``), never an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

log = logging.getLogger("posture.api")

API_PREFIX = "/api/"
NOT_AUTHENTICATED = ("authentication credentials were not provided: send 'Authorization: Bearer <token>' "
                     "(create a token on the /tokens/ page) or log in")
SERVER_ERROR = "internal server error: it has been logged; please report it with the time of the request"
#: Keys DRF uses for errors about the whole input rather than one field.
_COMPACT = {"separators": (",", ":")}  # as DRF renders JSON
_WHOLE_INPUT = ("non_field_errors", "detail", "__all__")


class Conflict(exceptions.APIException):
    """409: the request is valid but clashes with the current state (e.g. a name taken)."""

    status_code = 409
    default_detail = "the request conflicts with the current state of the resource"
    default_code = "conflict"


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(required=False, help_text="validation errors by field (400 only)")


class ErrorSerializer(serializers.Serializer):
    """The body of every API error (for the schema: ``responses={400: ErrorSerializer}``)."""

    error = ErrorDetailSerializer()


def error_body(status: int, code: str, message: str, fields: dict | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _plain(detail: Any) -> Any:
    """ErrorDetail trees as plain str/list/dict."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_plain(v) for v in detail]
    return str(detail)


def _flat(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [m for v in detail.values() for m in _flat(v)]
    if isinstance(detail, list):
        return [m for v in detail for m in _flat(v)]
    return [str(detail)]


def _validation(detail: Any) -> tuple[str, dict | None]:
    """(message, fields) of a ValidationError's detail (a list, or a dict by field)."""
    if not isinstance(detail, dict):
        return "; ".join(_flat(detail)) or "invalid input", None
    whole = [m for key in _WHOLE_INPUT for m in _flat(detail.get(key, []))]
    fields = {k: _plain(v) for k, v in detail.items() if k not in _WHOLE_INPUT}
    parts = whole + [f"{name}: {'; '.join(_flat(errors))}" for name, errors in fields.items()]
    return "; ".join(parts) or "invalid input", fields or None


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error as ``error_body``; unexpected exceptions are
    logged with their traceback and answered 500 (with DEBUG on, Django's debug page)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        if settings.DEBUG:
            return None
        request = context.get("request")
        log.error("unhandled error in %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"),
                  exc_info=exc)
        set_rollback()
        response = Response(error_body(500, "server_error", SERVER_ERROR), status=500)
        response._has_been_logged = True  # logged above with the traceback; Django need not repeat it
        return response
    assert isinstance(exc, exceptions.APIException)
    fields = None
    if isinstance(exc, exceptions.ValidationError):
        message, fields = _validation(exc.detail)
        code = "invalid"
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        message = "; ".join(_flat(exc.detail))
        if isinstance(exc, exceptions.NotAuthenticated):
            message = NOT_AUTHENTICATED
    response.data = error_body(response.status_code, code, message, fields)
    return response


def _wants_json(request) -> bool:
    return request.path.startswith(API_PREFIX)


def bad_request(request, exception=None):
    """handler400: JSON under /api/ (e.g. a disallowed Host header), Django's page elsewhere."""
    if _wants_json(request):
        return JsonResponse(error_body(400, "bad_request", "bad request"), status=400, json_dumps_params=_COMPACT)
    return defaults.bad_request(request, exception)


def not_found(request, exception=None):
    """handler404: an unknown URL under /api/ answers the JSON shape, not an HTML page."""
    if _wants_json(request):
        return JsonResponse(error_body(404, "not_found", f"no API endpoint at {request.path[:200]}"), status=404,
                            json_dumps_params=_COMPACT)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: errors outside the API views (middleware) under /api/ answer JSON too."""
    if _wants_json(request):
        return JsonResponse(error_body(500, "server_error", SERVER_ERROR), status=500, json_dumps_params=_COMPACT)
    return defaults.server_error(request)

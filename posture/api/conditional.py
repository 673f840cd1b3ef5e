"""``ETag`` and conditional GET for the heavy read endpoints (findings, control rollups, scan
diffs): the ETag is a hash of the answer's data (and its media type), and a GET with a
matching ``If-None-Match`` is answered 304 with no body.

Why per view rather than site-wide (ConditionalGetMiddleware): the heavy answers are the ones a
polling script re-fetches unchanged; hashing every page would cost for nothing. And why a hash
of the data rather than of the body: a rollup's ``summary`` says the moment it was computed for
(``at``: now, unless ``?at=`` was given), which changes on every request while the verdicts do
not; ``ignore`` leaves such echoes out of the hash. The server still computes the answer (the
saving is the transfer and the client's parsing): whether verdicts changed depends on the
exceptions and attestations in force now."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.utils.cache import get_conditional_response

#: Marks a view method as conditional, for the schema (posture/api/schema.py documents
#: If-None-Match, the ETag header and the 304).
MARK = "posture_conditional_get"


def etag_of(data: Any, media_type: str = "") -> str:
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(f"{media_type}\n{payload}".encode()).hexdigest()[:32] + '"'


def conditional(view_method=None, *, ignore: Callable[[Any], Any] | None = None):
    """A viewset method with an ETag on 200 answers and a 304 for a matching If-None-Match.
    ``ignore`` maps the answer's data to what the ETag covers (default: all of it)."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, request, *args, **kwargs):
            response = method(self, request, *args, **kwargs)
            if request.method not in ("GET", "HEAD") or response.status_code != 200:
                return response
            data = ignore(response.data) if ignore else response.data
            etag = etag_of(data, getattr(request, "accepted_media_type", "") or "")
            response["ETag"] = etag
            return get_conditional_response(request, etag=etag, response=response)

        setattr(wrapper, MARK, True)
        return wrapper

    return decorate(view_method) if view_method is not None else decorate


def without_summary_moment(data: dict) -> dict:
    """A scan's control rollup without ``summary[].at`` (the moment asked for; see above)."""
    return {**data, "summary": [{k: v for k, v in row.items() if k != "at"} for row in data.get("summary", [])]}

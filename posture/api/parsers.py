"""JSON request bodies with a nesting limit and a size limit.

Python's json module recurses once per nested array or object, so a body nested 100,000
deep raises RecursionError inside the parser: a 500, and a cheap way to make a worker burn
its stack. No request posture accepts needs more than a few levels, so the body is measured
first, in linear time and without recursion, and refused with a 400 past
``MAX_JSON_DEPTH`` levels, before ``json.loads`` ever sees it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

MAX_JSON_DEPTH = 64

# A JSON string, escapes included. The closing quote is optional so that an unterminated
# string simply runs to the end of the text: the pattern always matches where it starts, and
# a malformed body can never make the scan quadratic by failing and restarting.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str, stop_above: int | None = None) -> int:
    """How deeply arrays and objects nest in ``text`` (brackets inside strings do not count).

    Stops counting once the depth passes ``stop_above``: the answer is then just "too deep"."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        else:
            depth -= 1
    return deepest


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser (strict: no NaN or Infinity), refusing bodies nested deeper than
    ``MAX_JSON_DEPTH`` or larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    max_depth = MAX_JSON_DEPTH

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(f"JSON body larger than {limit} bytes")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"JSON parse error - the body is not {encoding} text") from None
        # Cheap pre-check: a body with few brackets cannot be deep.
        if text.count("[") + text.count("{") > self.max_depth and json_depth(text, self.max_depth) > self.max_depth:
            raise ParseError(f"JSON nested deeper than {self.max_depth} levels")
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None

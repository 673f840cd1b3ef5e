"""Make attacker-controlled daemon data storable in PostgreSQL JSONB.

Anyone who can start a container chooses its labels, env names, command line and image
metadata. PostgreSQL's ``jsonb`` rejects ``\\u0000`` and unpaired surrogates outright, and a
multi-megabyte label would bloat every scan that carries it. So before anything is stored:

* NUL characters (in keys and values) become U+FFFD;
* unpaired surrogates and undecodable bytes become U+FFFD (bytes are decoded as UTF-8 with
  ``errors="replace"``);
* any single string longer than ``MAX_STRING_BYTES`` (UTF-8) is cut to a prefix plus
  ``…[truncated: N bytes, sha256=<hex>]``, so it still differs when the original differs;
* non-finite floats (not valid JSON) become ``None``; tuples become lists.

This runs over every inspect document, so the common case (short ASCII strings) is a
couple of C-level checks per string.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from scanners.snapshot import MAX_STRING_BYTES

__all__ = ["REPLACEMENT", "sanitize", "sanitize_str"]

REPLACEMENT = "\ufffd"
_MARKER = "…[truncated: {n} bytes, sha256={digest}]"


def _truncate(encoded: bytes, limit: int) -> str:
    marker = _MARKER.format(n=len(encoded), digest=hashlib.sha256(encoded).hexdigest())
    room = max(0, limit - len(marker.encode()))
    # errors="ignore" drops a multi-byte character cut in half at the boundary.
    return encoded[:room].decode("utf-8", "ignore") + marker


def _fix_surrogates(s: str) -> str:
    return "".join(REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in s)


def sanitize_str(s: str, limit: int = MAX_STRING_BYTES) -> str:
    """One string made storable: no NUL, valid UTF-8, at most ``limit`` bytes."""
    if "\x00" in s:
        s = s.replace("\x00", REPLACEMENT)
    if s.isascii():
        return s if len(s) <= limit else _truncate(s.encode("ascii"), limit)
    try:
        encoded = s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from "\\ud800" in JSON
        s = _fix_surrogates(s)
        encoded = s.encode("utf-8")
    return s if len(encoded) <= limit else _truncate(encoded, limit)


def sanitize(value: Any, limit: int = MAX_STRING_BYTES) -> Any:
    """Return a storable copy of a JSON-like value (dicts, lists, strings, numbers, bytes)."""
    t = type(value)
    if t is str:
        return sanitize_str(value, limit)
    if t is dict:
        return {
            (sanitize_str(k, limit) if type(k) is str else sanitize(k, limit)): sanitize(v, limit)
            for k, v in value.items()
        }
    if t is list or t is tuple:
        return [sanitize(v, limit) for v in value]
    if value is None or t is bool or t is int:
        return value
    if t is float:
        return value if math.isfinite(value) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return sanitize_str(bytes(value).decode("utf-8", "replace"), limit)
    if isinstance(value, str):  # str subclasses
        return sanitize_str(str(value), limit)
    if isinstance(value, dict):
        return sanitize(dict(value), limit)
    if isinstance(value, (list, tuple)):
        return [sanitize(v, limit) for v in value]
    return sanitize_str(str(value), limit)

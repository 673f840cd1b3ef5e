"""Evidence as pretty JSON lines, with the field a finding's detail names marked.

The payload is attacker-controlled (container names, labels, env names): this module only
produces plain strings, which the template auto-escapes; nothing here is marked safe. The
deciding field is found by the ``Path.To.Key=value`` tokens checks write in their detail
(``HostConfig.Privileged=true``), matched against the key paths of the JSON lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

#: ``A.B.C=value`` in a check's detail: a key path and the value it had.
_TOKEN = re.compile(r"(?<![\w.])([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*)=([^\s,;()]*)")
#: Payloads bigger than this many lines are cut (the digest names the whole payload).
MAX_LINES = 4000
#: Marks the opening and closing lines of objects and lists (no scalar value of their own).
_OPEN = object()


@dataclass(frozen=True)
class Line:
    text: str
    hit: bool = False
    path: str = ""  # the key path of a marked line, e.g. inspect.HostConfig.Privileged
    value: str = ""  # its value as JSON, e.g. true


def deciding_paths(detail: str) -> list[tuple[tuple[str, ...], str]]:
    """The (key path, value) pairs a detail names, e.g. ``(("HostConfig", "Privileged"), "true")``."""
    return [(tuple(path.split(".")), value) for path, value in _TOKEN.findall(detail or "")]


def _scalar(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _walk(value: object, path: tuple[str, ...], indent: int, key: str | None, last: bool, out: list):
    """Append (path, text, scalar) for ``value`` printed as ``json.dumps(indent=2)`` would."""
    pad = "  " * indent
    prefix = f"{pad}{_scalar(key)}: " if key is not None else pad
    comma = "" if last else ","
    if isinstance(value, dict) and value:
        out.append((path, prefix + "{", _OPEN))
        items = list(value.items())
        for i, (k, v) in enumerate(items):
            _walk(v, (*path, str(k)), indent + 1, str(k), i == len(items) - 1, out)
        out.append((path[:-1] + ("}",), pad + "}" + comma, _OPEN))
    elif isinstance(value, list) and value:
        out.append((path, prefix + "[", _OPEN))
        for i, v in enumerate(value):
            _walk(v, path, indent + 1, None, i == len(value) - 1, out)
        out.append((path[:-1] + ("]",), pad + "]" + comma, _OPEN))
    else:
        out.append((path, prefix + _scalar(value) + comma, value))


def _matches(path: tuple[str, ...], scalar: object, wanted: tuple[str, ...], value: str) -> bool:
    """A line is the deciding one when its key path ends with the detail's path and, for a
    one-key path (``LiveRestoreEnabled=false``), its value is the one the detail names too:
    a bare ``name=`` in prose must not light up every ``name`` key."""
    if len(path) < len(wanted) or path[len(path) - len(wanted):] != wanted:
        return False
    if len(wanted) > 1:
        return True
    if scalar is _OPEN:
        return False
    shown = scalar if isinstance(scalar, str) else _scalar(scalar)
    return shown == value


def evidence_lines(payload: object, detail: str = "") -> list[Line]:
    """``payload`` as indented JSON lines, those naming a field of ``detail`` marked ``hit``."""
    raw: list = []
    _walk(payload, (), 0, None, True, raw)
    wanted = deciding_paths(detail)
    lines = []
    for path, text, scalar in raw:
        hit = any(_matches(path, scalar, w, v) for w, v in wanted)
        lines.append(Line(text, hit, ".".join(path), "" if scalar is _OPEN else _scalar(scalar)) if hit else Line(text))
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], Line(f"… {len(lines) - MAX_LINES} more lines")]
    return lines

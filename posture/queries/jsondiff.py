"""Field-level differences between two stored evidence payloads (plain JSON), as
``path: old -> new`` lines a person can read: ``HostConfig.Privileged: false -> true``.

Kept apart from posture/queries/diffs.py because it is pure (no database): it knows JSON,
not scans.

- Objects are compared key by key; a key present on one side only is ``added`` or ``removed``.
- A list of plain values (``CapAdd``, ``Cmd``, ``Binds``, an image's tags) is one value:
  ``["NET_ADMIN"] -> ["NET_ADMIN", "SYS_ADMIN"]`` says more than "item 1 added", and for
  ``Cmd`` the order matters anyway.
- A list of objects is matched by an identity key every item carries with distinct values
  (``Mounts`` by ``Destination``, redacted ``Env`` entries by ``name``): a mount added in the
  middle is one ``added`` entry, not every later mount "changed". Without such a key, lists
  of the same length are compared item by item, others as one value.
- Types matter: ``false -> 0`` is a change (Python's ``False == 0`` is not used).
- Values whose JSON is longer than ``VALUE_MAX_CHARS`` are replaced by a summary (their
  length, sha256 and first characters): a 64 KB label must not make a diff page megabytes.

Paths use ``.Key`` for identifier-like keys and ``["key"]`` (JSON-quoted) for any other key;
list items are ``[3]`` or ``[Destination="/data"]``. Keys and values are attacker-controlled
strings: they are data here, and templates escape them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: A value whose compact JSON is longer than this is summarised (see ``bounded``).
VALUE_MAX_CHARS = 1000
#: Characters of a summarised value kept for reading.
VALUE_PREVIEW_CHARS = 200
#: Keys that identify an item of a list of objects, tried in this order.
IDENTITY_KEYS = ("Destination", "name", "Name", "Target", "Path", "Id", "ID")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FieldChange:
    """One changed JSON path. ``change`` is ``changed``, ``added`` (``old`` is None: the path
    was absent) or ``removed`` (``new`` is None). A JSON ``null`` that was really there reads
    ``changed`` with a None value."""

    path: str
    change: str
    old: Any
    new: Any

    @property
    def old_json(self) -> str:
        return "" if self.change == "added" else compact(self.old)

    @property
    def new_json(self) -> str:
        return "" if self.change == "removed" else compact(self.new)


def compact(value: Any) -> str:
    """The JSON text of a value as shown (sorted keys, no padding, non-ASCII kept)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def bounded(value: Any) -> Any:
    """``value``, or a summary of it when its JSON is longer than ``VALUE_MAX_CHARS``:
    ``{"truncated": true, "chars": n, "sha256": "...", "start": "<first characters>"}``."""
    text = compact(value)
    if len(text) <= VALUE_MAX_CHARS:
        return value
    return {"truncated": True, "chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "start": text[:VALUE_PREVIEW_CHARS]}


def _key_segment(key: str) -> str:
    return f".{key}" if _IDENTIFIER.fullmatch(key) else f"[{compact(key)}]"


def _join(path: str, segment: str) -> str:
    return (path + segment).removeprefix(".")


def _same(a: Any, b: Any) -> bool:
    """JSON equality: types count (``False`` is not ``0``, ``1`` is not ``1.0``)."""
    return type(a) is type(b) and (a == b if not isinstance(a, (dict, list)) else compact(a) == compact(b))


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _identity(old: list, new: list) -> str | None:
    """A key every object of both lists has, with distinct plain values on each side."""
    items = old + new
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in IDENTITY_KEYS:
        if all(key in i and _is_scalar(i[key]) and i[key] is not None for i in items):
            if all(len({compact(i[key]) for i in side}) == len(side) for side in (old, new)):
                return key
    return None


def changes(old: Any, new: Any, path: str = "") -> Iterator[FieldChange]:
    """Every difference between two JSON values, depth first, keys in sorted order."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            child = _join(path, _key_segment(str(key)))
            if key not in old:
                yield FieldChange(child, "added", None, bounded(new[key]))
            elif key not in new:
                yield FieldChange(child, "removed", bounded(old[key]), None)
            else:
                yield from changes(old[key], new[key], child)
        return
    if isinstance(old, list) and isinstance(new, list) and not _same(old, new):
        key = _identity(old, new)
        if key is not None:
            before = {compact(i[key]): i for i in old}
            after = {compact(i[key]): i for i in new}
            for ident in sorted(set(before) | set(after)):
                child = _join(path, f"[{key}={ident}]")
                if ident not in before:
                    yield FieldChange(child, "added", None, bounded(after[ident]))
                elif ident not in after:
                    yield FieldChange(child, "removed", bounded(before[ident]), None)
                else:
                    yield from changes(before[ident], after[ident], child)
            return
        if len(old) == len(new) and not all(_is_scalar(i) for i in old + new):
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                yield from changes(a, b, _join(path, f"[{index}]"))
            return
    if not _same(old, new):
        yield FieldChange(path or "(whole document)", "changed", bounded(old), bounded(new))


def capped_changes(old: Any, new: Any, limit: int) -> tuple[list[FieldChange], int]:
    """The first ``limit`` changes (path order) and how many there are in all."""
    kept: list[FieldChange] = []
    total = 0
    for change in changes(old, new):
        total += 1
        if len(kept) < limit:
            kept.append(change)
    return kept, total

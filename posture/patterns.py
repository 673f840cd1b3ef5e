"""Shell-style resource patterns (``web-*``, ``db-[0-9]``) as regular expressions that both
PostgreSQL (``~``) and SQLite (Django's REGEXP, Python ``re``) evaluate exactly as
``fnmatch.fnmatchcase`` does, so exceptions can be matched in SQL.

``fnmatch.translate`` cannot be used as is: it emits Python-only syntax (``(?s:...)``,
atomic groups). This follows its parsing rules (what a bracket means, empty ranges, a
missing ``]``) and emits only syntax the two engines read alike:

- ``(?s)`` first: ``.`` matches a newline (PostgreSQL: non-newline-sensitive, its default);
- ``\\A`` and ``\\Z``: start and very end of the string in both (``$`` would also match
  before a final newline in Python);
- ASCII punctuation escaped with a backslash (a literal in both), inside brackets too;
  every other character as itself;
- ``*`` as ``.*`` (fnmatch's atomic ``(?>.*?X)`` matches the same strings)."""

from __future__ import annotations

import re
import string
from functools import lru_cache

MATCH_ALL = r"(?s)\A.*\Z"
#: No string matches: after one character, the start of the string cannot follow.
MATCH_NOTHING = r"(?s).\A"
_PUNCTUATION = frozenset(string.punctuation)


def _lit(c: str) -> str:
    return "\\" + c if c in _PUNCTUATION else c


def _bracket_stuff(pat: str, i: int, j: int) -> str:
    """fnmatch's bracket content (pat[i:j]) as the text of a Python character class, exactly
    as ``fnmatch.translate`` computes it (Python 3.11/3.12), escapes included."""
    stuff = pat[i:j]
    if "-" not in stuff:
        stuff = stuff.replace("\\", r"\\")
    else:
        chunks = []
        k = i + 2 if pat[i] == "!" else i + 1
        while True:
            k = pat.find("-", k, j)
            if k < 0:
                break
            chunks.append(pat[i:k])
            i = k + 1
            k = k + 3
        chunk = pat[i:j]
        if chunk:
            chunks.append(chunk)
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):  # empty ranges (z-a) are dropped
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
        stuff = "-".join(s.replace("\\", r"\\").replace("-", r"\-") for s in chunks)
    return stuff


def _class_items(body: str) -> list[str | tuple[str, str]]:
    """Parse the text of a Python character class (no leading ^) into characters and
    (low, high) ranges, by the rules of Python's regex parser."""
    tokens: list[tuple[str, bool]] = []  # (char, escaped)
    k = 0
    while k < len(body):
        if body[k] == "\\" and k + 1 < len(body):
            tokens.append((body[k + 1], True))
            k += 2
        else:
            tokens.append((body[k], False))
            k += 1
    items: list[str | tuple[str, str]] = []
    k = 0
    while k < len(tokens):
        c, _ = tokens[k]
        if k + 2 < len(tokens) and tokens[k + 1] == ("-", False):
            items.append((c, tokens[k + 2][0]))
            k += 3
        else:
            items.append(c)
            k += 1
    return items


def _bracket(stuff: str) -> str | None:
    """The portable regex of one bracket, None when it matches no character."""
    if not stuff:
        return None
    if stuff == "!":
        return "."
    negate = stuff[0] == "!"
    body = stuff[1:] if negate else stuff
    if not negate and body[:1] in ("^", "["):
        body = "\\" + body  # what fnmatch does: a literal first ^ or [
    parts = []
    for item in _class_items(body):
        if isinstance(item, tuple):
            parts.append(f"{_lit(item[0])}-{_lit(item[1])}")
        else:
            parts.append(_lit(item))
    if not parts:
        return "." if negate else None
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


@lru_cache(maxsize=1024)
def shell_pattern_regex(pattern: str) -> str:
    """The anchored regex of a shell pattern; an empty pattern matches every resource."""
    if not pattern:
        return MATCH_ALL
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
            else:
                bracket = _bracket(_bracket_stuff(pattern, i, j))
                if bracket is None:
                    return MATCH_NOTHING
                out.append(bracket)
                i = j + 1
        else:
            out.append(_lit(c))
    return r"(?s)\A" + "".join(out) + r"\Z"


def pattern_matches(pattern: str, resource: str) -> bool:
    """What SQL's ``resource ~ resource_regex`` says, in Python."""
    return re.search(shell_pattern_regex(pattern), resource) is not None

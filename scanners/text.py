"""One-line text for anything shown to people: finding details, scan errors, probe notes.

The one implementation of ``one_line`` (checks, scan errors, the probe and the scan job all
import it from here): Docker hosts, library errors and container names can put newlines,
tabs and pages of text into a message, and every place that stores or shows one wants the
same thing, a single bounded line.
"""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(text: object, limit: int = 300) -> str:
    """Collapse all whitespace (newlines included) to single spaces and cut at ``limit``
    characters, marking the cut with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

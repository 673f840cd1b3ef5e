"""Score and coverage: the one definition of each (DESIGN.md §3), for rollups, trends,
pages and reports alike.

- **score** = pass / (pass + fail). ``excepted`` counts as neither: an accepted risk is not
  a pass, and not an open failure either. None when nothing passed or failed.
- **coverage** = assessed / applicable, where applicable is everything but
  ``not_applicable`` and assessed is pass + fail + excepted: ``manual`` (unattested),
  ``not_assessed`` and ``error`` are applicable but undecided. None when nothing applies.

Both take counts per status (``ResultStatus`` values), of controls or of results."""

from __future__ import annotations

from collections.abc import Mapping

from posture.choices import ResultStatus

ASSESSED = (ResultStatus.PASS.value, ResultStatus.FAIL.value, ResultStatus.EXCEPTED.value)


def score(counts: Mapping[str, int]) -> float | None:
    decided = counts.get("pass", 0) + counts.get("fail", 0)
    return counts.get("pass", 0) / decided if decided else None


def coverage(counts: Mapping[str, int]) -> float | None:
    applicable = sum(n for status, n in counts.items() if status != ResultStatus.NOT_APPLICABLE)
    return sum(counts.get(s, 0) for s in ASSESSED) / applicable if applicable else None

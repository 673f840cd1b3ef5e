"""Run a management command in-process the way a script sees it: exit code, stdout, stderr."""

from __future__ import annotations

import io

from django.core.management import call_command


def run_command(*args: str) -> tuple[int, str, str]:
    """``call_command`` that returns (exit code, stdout, stderr) instead of raising SystemExit."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()

"""``one_line``: one implementation for finding details, scan errors and probe notes."""

from __future__ import annotations

from scanners import errors
from scanners.checks import daemon
from scanners.text import one_line


def test_it_squashes_whitespace_and_bounds_the_line():
    assert one_line("a\n\tb   c\r\n") == "a b c"
    assert one_line("x" * 400) == "x" * 299 + "…"
    assert one_line("x" * 400, 10) == "x" * 9 + "…" and len(one_line("y" * 10, 10)) == 10


def test_it_is_the_same_function_everywhere():
    assert errors.one_line is one_line and daemon.one_line is one_line
    assert str(errors.ScanError("first\n  second " + "z" * 600)).startswith("first second z")
    assert len(str(errors.ScanError("z" * 600))) == 500  # scan errors keep their longer bound

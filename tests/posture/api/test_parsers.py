"""The JSON parser refuses deep nesting before Python's recursion limit is anywhere near."""

from __future__ import annotations

import io
import sys

import pytest
from rest_framework.exceptions import ParseError

from posture.api.parsers import MAX_JSON_DEPTH, DepthLimitedJSONParser, json_depth


def parse(text: str):
    return DepthLimitedJSONParser().parse(io.BytesIO(text.encode()), "application/json", {})


def test_it_parses_json_exactly_at_the_limit():
    assert MAX_JSON_DEPTH == 64
    value = parse("[" * 64 + "1" + "]" * 64)
    for _ in range(64):
        value = value[0]
    assert value == 1


@pytest.mark.parametrize("depth", [65, 1_000, sys.getrecursionlimit() * 2, 100_000])
def test_it_refuses_json_one_level_deeper_and_beyond(depth):
    with pytest.raises(ParseError, match="^JSON nested deeper than 64 levels$"):
        parse('{"a": ' * depth + "1" + "}" * depth)


def test_it_ignores_brackets_inside_strings():
    text = '{"s": "' + "[{" * 500 + '\\" [[[", "t": ["\\\\", "]]]]"]}'
    assert parse(text)["t"] == ["\\", "]]]]"]
    assert json_depth(text) == 2


def test_it_still_reports_malformed_json_as_a_parse_error():
    with pytest.raises(ParseError, match="JSON parse error"):
        parse('{"a": ')


def test_it_refuses_nan_like_the_default_parser():
    with pytest.raises(ParseError):
        parse('{"a": NaN}')

"""Sanitizing: whatever the daemon says becomes storable in PostgreSQL JSONB."""

from __future__ import annotations

import hashlib
import json
import re
import time

from scanners.sanitize import REPLACEMENT, sanitize, sanitize_str
from scanners.snapshot import MAX_STRING_BYTES


def _storable(value) -> bool:
    """What PostgreSQL's jsonb refuses: \\u0000 and text that is not valid UTF-8."""
    text = json.dumps(value, ensure_ascii=False)
    text.encode("utf-8")  # raises on lone surrogates
    return "\\u0000" not in text and "\x00" not in text


def test_it_replaces_nul_in_keys_and_values():
    out = sanitize({"a\x00b": ["x\x00y", {"k": "\x00"}]})
    assert out == {f"a{REPLACEMENT}b": [f"x{REPLACEMENT}y", {"k": REPLACEMENT}]}
    assert _storable(out)


def test_it_replaces_lone_surrogates():
    value = json.loads('{"label": "ok \\ud800 end", "\\udfff": 1, "pair": "\\ud83d\\ude00"}')
    out = sanitize(value)
    assert out["label"] == f"ok {REPLACEMENT} end"
    assert out[REPLACEMENT] == 1
    assert out["pair"] == "\U0001f600"  # a valid pair is kept
    assert _storable(out)


def test_it_decodes_bytes_with_replacement():
    assert sanitize(b"caf\xc3\xa9 \xff\xfe") == f"café {REPLACEMENT}{REPLACEMENT}"


def test_it_truncates_long_strings_with_length_and_digest():
    big = "é" * MAX_STRING_BYTES  # 2 bytes each
    out = sanitize_str(big)
    encoded = big.encode()
    assert len(out.encode()) <= MAX_STRING_BYTES
    m = re.search(r"…\[truncated: (\d+) bytes, sha256=([0-9a-f]{64})\]$", out)
    assert m and int(m.group(1)) == len(encoded)
    assert m.group(2) == hashlib.sha256(encoded).hexdigest()
    assert out.startswith("é" * 1000)


def test_it_keeps_strings_at_the_limit():
    s = "a" * MAX_STRING_BYTES
    assert sanitize_str(s) is s
    assert sanitize_str(s + "b").endswith("]")


def test_it_keeps_numbers_bools_and_null_and_drops_non_finite_floats():
    assert sanitize([1, 2.5, True, None, float("nan"), float("inf")]) == [1, 2.5, True, None, None, None]


def test_it_is_fast_on_inspect_sized_documents():
    doc = {
        f"Key{i}": {"Labels": {f"l{j}": f"value {j}" for j in range(20)}, "List": list(range(20)), "s": "x" * 200}
        for i in range(200)
    }
    start = time.perf_counter()
    for _ in range(10):
        sanitize(doc)
    per_doc = (time.perf_counter() - start) / 10
    assert per_doc < 0.05, per_doc  # ~10k strings: a few ms

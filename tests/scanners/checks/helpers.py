"""Shared helpers for check tests: load recorded fixtures, evaluate one check on one resource.

Fixtures in tests/fixtures/checks/ were recorded from a real dockerd by record.py (snapshot,
daemon-swarm, daemon-variant) or written by hand in the probe's HostEvidence shape (host-good,
host-bad). Each call returns a fresh copy, so a test may mutate what it gets.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from scanners.checks.base import Status
from scanners.runner import run_checks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "checks"


@cache
def _raw(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def load(name: str) -> Any:
    """A fresh deep copy of a fixture file."""
    return copy.deepcopy(_raw(name))


def snapshot(host: str | None = None, daemon: str | None = None) -> dict[str, Any]:
    """The recorded snapshot, optionally with a host-probe fixture and another daemon's info."""
    snap = load("snapshot.json")
    if host is not None:
        snap["host"] = load(host)
    if daemon is not None:
        other = load(daemon)
        snap["daemon"] = {"info": other["info"], "version": other["version"]}
    return snap


def container(snap: dict[str, Any], name: str) -> dict[str, Any]:
    """The inspect document of a recorded container (to mutate in a test)."""
    return next(c for c in snap["containers"] if c["name"] == name)["inspect"]


def image(snap: dict[str, Any], tag: str) -> dict[str, Any]:
    """The evidence (inspect + history) of a recorded image."""
    return next(i for i in snap["images"] if tag in i["tags"])


def evaluate(check_fn: Any, snap: dict[str, Any], resource: str | None = None) -> tuple[Status, str]:
    """Run one check through the real runner; return (status, detail) for one resource."""
    findings = run_checks(snap, [check_fn.spec])
    if resource is not None:
        findings = [f for f in findings if f.resource == resource]
    assert len(findings) == 1, [(f.resource, f.status, f.detail) for f in findings]
    return findings[0].status, findings[0].detail

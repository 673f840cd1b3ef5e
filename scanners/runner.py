"""Evaluate checks on one snapshot: ``run_checks(snapshot) -> list[Finding]``.

Pure and total: it reads only the snapshot (fresh or re-assembled from storage, so history can
be re-scored when a check improves), never talks to Docker, and never aborts. A check that
raises, or returns something that is not ``(Status, str)``, yields an ``error`` finding carrying
the exception's one-line message, and the run goes on. An evidence document that cannot be
parsed at all yields ``error`` findings for that resource.

One finding per check x applicable resource:
* daemon scope  -> resource_type "daemon", resource "daemon";
* host scope    -> resource_type "host", resource "host";
* image scope   -> each image, named by its first tag or its short id;
* container scope -> each container (running and stopped), named by its name.

Speed: the snapshot is parsed once (``build_context``: views with SecurityOpt, capabilities,
ports, history already parsed), then the checks run over plain attributes; a 200-container,
20-image snapshot takes a few tens of milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scanners.checks.base import CheckSpec, Finding, Scope, Status
from scanners.checks.context import Context, build_context
from scanners.snapshot import (
    KIND_CONTAINER,
    KIND_DAEMON_INFO,
    KIND_DAEMON_VERSION,
    KIND_HOST,
    KIND_IMAGE,
)
from scanners.text import one_line

#: Bump when logic shared by many checks changes (Context parsing, the runner itself): it is
#: part of the engine version, so stored evidence is re-scored instead of reusing old verdicts.
#: A change to one check bumps that check's own ``version`` instead.
ENGINE_REVISION = 4
# 4: the dockerd command line is parsed as dockerd's pflag does (scanners.dockerd_args): a
#    boolean flag the old parser did not list (--ipv6, --cri-containerd...) no longer swallows
#    the next flag, and combined short flags (-Dl debug) are read. Verdicts of the dockerd
#    settings checks can change for such command lines, so stored evidence is re-scored.

_SNAPSHOT_KEYS = {KIND_DAEMON_INFO: "daemon", KIND_DAEMON_VERSION: "daemon", KIND_HOST: "probe"}


def _snapshot_evidence(spec: CheckSpec, ctx: Context) -> tuple[str, str]:
    """(kind, key) of the stored evidence a daemon/host finding was decided from."""
    for kind in spec.requires:
        if kind == KIND_HOST and ctx.host is None:
            continue  # nothing stored to link to: the finding says the probe is off
        if kind in _SNAPSHOT_KEYS:
            return kind, _SNAPSHOT_KEYS[kind]
    return "", ""


def _evaluate(spec: CheckSpec, resource: Any, ctx: Context) -> tuple[Status, str]:
    try:
        result = spec.fn(resource, ctx)
        if (not isinstance(result, tuple) or len(result) != 2
                or not isinstance(result[0], Status) or not isinstance(result[1], str)):
            raise TypeError(f"check returned {result!r:.80}, expected (Status, str)")
        return result[0], one_line(result[1], 500)
    except Exception as exc:  # noqa: BLE001 - a broken check must not abort the run
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Status.ERROR, one_line(f"{type(exc).__name__}: {message}" if message
                                      else type(exc).__name__)


def run_checks(snapshot: Mapping[str, Any], checks: Iterable[CheckSpec] | None = None
               ) -> list[Finding]:
    """All findings for one snapshot; ``checks`` defaults to every registered check."""
    if checks is None:
        from scanners import registry  # late: registry imports every check module

        checks = registry.all_checks()
    ctx = build_context(snapshot)
    findings: list[Finding] = []
    append = findings.append
    for spec in checks:
        scope = spec.scope
        if scope is Scope.CONTAINER:
            for c in ctx.containers:
                status, detail = _evaluate(spec, c, ctx)
                append(Finding(spec.id, "container", c.name, status, detail, KIND_CONTAINER, c.id))
        elif scope is Scope.IMAGE:
            for img in ctx.images:
                status, detail = _evaluate(spec, img, ctx)
                append(Finding(spec.id, "image", img.name, status, detail, KIND_IMAGE, img.id))
        else:
            status, detail = _evaluate(spec, ctx, ctx)
            kind, key = _snapshot_evidence(spec, ctx)
            append(Finding(spec.id, scope.value, scope.value, status, detail, kind, key))
        for rtype, name, key, reason in ctx.broken:
            if rtype == scope.value:
                kind = KIND_CONTAINER if rtype == "container" else KIND_IMAGE
                append(Finding(spec.id, rtype, name, Status.ERROR, one_line(reason), kind, key))
    return findings


__all__ = ["ENGINE_REVISION", "run_checks"]

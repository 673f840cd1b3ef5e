"""``docker info`` and ``docker version``: the daemon-level evidence.

Evidence is content-addressed, so an unchanged host must produce byte-identical documents
on every scan. ``info`` carries a few counters that change every second (clock, goroutines,
open files, event listeners — our own scan moves them); they say nothing about posture and
are dropped. Lists whose order is not meaningful are sorted for the same reason.
"""

from __future__ import annotations

from typing import Any

from docker.api import APIClient

from scanners.collectors._common import call
from scanners.collectors.shapes import guarded
from scanners.redact import redact_info

__all__ = ["VOLATILE_INFO_KEYS", "collect_daemon", "normalize_info", "normalize_version"]

#: Keys of ``docker info`` that change on an idle, unchanged host.
VOLATILE_INFO_KEYS = ("SystemTime", "NGoroutines", "NFd", "NEventsListener")


def normalize_info(info: dict[str, Any]) -> dict[str, Any]:
    """Drop volatile counters, redact proxy credentials, sort set-like lists."""
    info = {k: v for k, v in info.items() if k not in VOLATILE_INFO_KEYS}
    info = redact_info(info)
    plugins = info.get("Plugins")
    if isinstance(plugins, dict):
        info["Plugins"] = {k: sorted(v, key=str) if isinstance(v, list) else v for k, v in plugins.items()}
    for key in ("SecurityOptions", "Warnings"):
        if isinstance(info.get(key), list):
            info[key] = sorted(info[key], key=str)
    swarm = info.get("Swarm")
    if isinstance(swarm, dict) and isinstance(swarm.get("RemoteManagers"), list):
        swarm = dict(swarm)
        swarm["RemoteManagers"] = sorted(swarm["RemoteManagers"], key=str)
        info["Swarm"] = swarm
    return info


def normalize_version(version: dict[str, Any]) -> dict[str, Any]:
    """``docker version`` is already stable; copy it so callers can't alias daemon data."""
    return dict(version)


def collect_daemon(api: APIClient, *, deadline: float | None = None) -> dict[str, dict[str, Any]]:
    """``{"info": ..., "version": ...}`` for the snapshot's ``daemon`` key (not yet sanitized)."""
    info = call(guarded, api.info, shape="info", path="/info", doing="reading docker info", deadline=deadline)
    version = call(
        guarded, api.version, shape="version", path="/version", doing="reading docker version", deadline=deadline
    )
    return {"info": normalize_info(info), "version": normalize_version(version)}

"""Containers, running and stopped: one ``inspect`` document each, env values removed.

Uses the low-level API: ``client.containers.list()`` would inspect every container a second
time. A container removed between the list and its inspect is a warning, not a failure:
on a busy host, short-lived containers come and go during every scan.
"""

from __future__ import annotations

import re
from typing import Any

import docker.errors
from docker.api import APIClient

from scanners.collectors._common import DEFAULT_WORKERS, Progress, call, inspect_all
from scanners.redact import redact_config, scrub_text
from scanners.snapshot import ContainerEvidence, Warning_

__all__ = ["collect_containers", "container_evidence"]


def container_evidence(inspect: dict[str, Any]) -> ContainerEvidence:
    """Build one ContainerEvidence from a raw inspect document (pure; tested on recorded JSON).

    Besides redaction, this removes what changes on an unchanged container (healthcheck
    probe log with timestamps) and sorts ``Mounts``, which the daemon returns in map order.
    """
    inspect = dict(inspect)
    inspect["Config"] = redact_config(inspect.get("Config"))
    if isinstance(inspect.get("Args"), list):
        inspect["Args"] = [scrub_text(a) if isinstance(a, str) else a for a in inspect["Args"]]
    if isinstance(inspect.get("Path"), str):
        inspect["Path"] = scrub_text(inspect["Path"])
    state = inspect.get("State")
    if isinstance(state, dict) and isinstance(state.get("Health"), dict):
        health = {k: v for k, v in state["Health"].items() if k != "Log"}
        inspect["State"] = {**state, "Health": health}
    if isinstance(inspect.get("Mounts"), list):
        inspect["Mounts"] = sorted(inspect["Mounts"], key=lambda m: (str(m.get("Destination")), str(m.get("Source"))))
    name = str(inspect.get("Name") or "").lstrip("/") or inspect["Id"][:12]
    return {"id": inspect["Id"], "name": name, "inspect": inspect}


def collect_containers(
    api: APIClient,
    *,
    deadline: float | None = None,
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> tuple[list[ContainerEvidence], list[Warning_]]:
    """All containers sorted by name, plus warnings for containers removed meanwhile."""
    summaries = call(api.containers, all=True, doing="listing containers", deadline=deadline)
    ids = sorted({s["Id"] for s in summaries})

    def fetch(container_id: str) -> ContainerEvidence:
        return container_evidence(api.inspect_container(container_id))

    found, warnings = inspect_all(ids, fetch, kind="container", deadline=deadline, progress=progress, workers=workers)
    result = [found[i] for i in ids if i in found]
    result.sort(key=lambda c: (c["name"], c["id"]))
    attach_volume_options(api, result, deadline=deadline)
    return result, warnings


_SECRET_OPT = re.compile(r"((?:pass(?:word)?|secret|token|key|credentials?)=)[^,]*", re.IGNORECASE)


def volume_options(volume: dict[str, Any]) -> dict[str, Any]:
    """What a volume really mounts: its driver and the local driver's type/device/o options
    (a local volume with ``o=bind`` and ``device=/etc`` is a bind mount of /etc). Option
    values that look like credentials (CIFS ``password=``) are dropped."""
    opts = volume.get("Options") or {}
    return {
        "Driver": volume.get("Driver") or "",
        "type": str(opts.get("type") or ""),
        "device": str(opts.get("device") or ""),
        "o": _SECRET_OPT.sub(r"\1<redacted>", str(opts.get("o") or "")),
    }


def attach_volume_options(api: APIClient, containers: list[ContainerEvidence], *, deadline: float | None) -> None:
    """Add ``VolumeOptions`` to every named-volume mount: inspect only shows the volume's
    name and its folder under the data root, not what it is backed by. One call per volume."""
    names = sorted({str(m.get("Name")) for c in containers for m in c["inspect"].get("Mounts") or []
                    if isinstance(m, dict) and m.get("Type") == "volume" and m.get("Name")})
    options: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            options[name] = volume_options(call(api.inspect_volume, name, doing=f"inspecting volume {name}",
                                                deadline=deadline))
        except docker.errors.NotFound:
            continue  # removed meanwhile: the mount keeps what inspect said
    for c in containers:
        for m in c["inspect"].get("Mounts") or []:
            if isinstance(m, dict) and m.get("Type") == "volume" and str(m.get("Name")) in options:
                m["VolumeOptions"] = options[str(m.get("Name"))]

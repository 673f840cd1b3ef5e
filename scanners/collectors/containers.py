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
from scanners.collectors.shapes import guarded
from scanners.errors import MalformedAnswer
from scanners.redact import known_names, redact_command, redact_config
from scanners.snapshot import ContainerEvidence, Warning_

__all__ = ["collect_containers", "container_evidence"]


def container_evidence(inspect: dict[str, Any]) -> ContainerEvidence:
    """Build one ContainerEvidence from a raw inspect document (pure; tested on recorded JSON).

    Besides redaction, this removes what changes on an unchanged container (healthcheck
    probe log with timestamps) and sorts ``Mounts``, which the daemon returns in map order.
    """
    inspect = dict(inspect)
    config = inspect.get("Config")
    names = known_names(config.get("Env") if isinstance(config, dict) else None)
    inspect["Config"] = redact_config(config, names)
    # Path + Args is the command again (a build container kept with --rm=false runs
    # "/bin/sh -c #(nop) ENV K=V"): redact them as one list, as Config.Cmd is.
    path, args = inspect.get("Path"), inspect.get("Args")
    command = redact_command([path if isinstance(path, str) else "", *(args if isinstance(args, list) else [])], names)
    if isinstance(path, str):
        inspect["Path"] = command[0]
    if isinstance(args, list):
        inspect["Args"] = command[1:]
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
    summaries = call(
        guarded, api.containers, all=True, shape="container_list", path="/containers/json",
        doing="listing containers", deadline=deadline,
    )  # fmt: skip
    ids = sorted({s["Id"] for s in summaries})

    def fetch(container_id: str) -> dict[str, Any]:
        # Only the call and its shape check run inside the pool: a failure in
        # container_evidence afterwards is our bug, not the host's.
        path = f"/containers/{container_id[:12]}/json"
        inspect = guarded(api.inspect_container, container_id, shape="container", path=path)
        if inspect["Id"] != container_id:
            raise MalformedAnswer(path, "its Id is not the container that was asked for")
        return inspect

    found, warnings = inspect_all(ids, fetch, kind="container", deadline=deadline, progress=progress, workers=workers)
    result = [container_evidence(found[i]) for i in ids if i in found]
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
            volume = call(guarded, api.inspect_volume, name, shape="volume", path=f"/volumes/{name[:64]}",
                          doing=f"inspecting volume {name}", deadline=deadline)
            options[name] = volume_options(volume)
        except docker.errors.NotFound:
            continue  # removed meanwhile: the mount keeps what inspect said
    for c in containers:
        for m in c["inspect"].get("Mounts") or []:
            if isinstance(m, dict) and m.get("Type") == "volume" and str(m.get("Name")) in options:
                m["VolumeOptions"] = options[str(m.get("Name"))]

"""The shape of collected evidence: the one contract between collection, storage and checks.

A *snapshot* is what one scan of one Docker host saw, as plain JSON-able dicts. The
collectors build it from the Docker API; the Django side splits it into content-addressed
evidence items (one per daemon document, image, container and probe result) and can put
the very same dict back together from storage, so checks never know whether they are
looking at a fresh collection or at history.

    {
      "scanner_version": "1",
      "daemon": {"info": {...}, "version": {...}},          # docker info / version; volatile
                                                            #   counters (SystemTime, NGoroutines,
                                                            #   NFd, NEventsListener) stripped
      "images": [ImageEvidence, ...],
      "containers": [ContainerEvidence, ...],               # running and stopped
      "host": HostEvidence | None,                          # None when the probe is off
      "warnings": [{"resource_type": "container", "resource": "<id or name>",
                    "message": "removed between list and inspect"}, ...],
    }

ImageEvidence:
    {"id": "sha256:...", "tags": ["repo:tag", ...],
     "inspect": <GET /images/{id}/json, env redacted>,
     "history": [<GET /images/{id}/history entries, ENV/ARG values in CreatedBy redacted>]}
    ENV/ARG values are also removed from inspect.Config/ContainerConfig .Cmd, .Entrypoint
    and .OnBuild (the classic builder repeats them there; see scanners/redact.py).

ContainerEvidence:
    {"id": "<64 hex>", "name": "<name without leading slash>",
     "inspect": <GET /containers/{id}/json, env redacted>}
    Each named-volume entry of inspect.Mounts also carries
    "VolumeOptions": {"Driver", "type", "device", "o"} from GET /volumes/{name}, so a local
    volume that binds a host folder (o=bind, device=/etc) is seen for what it mounts;
    credential-like values in "o" are redacted.

Redacted environment (images: inspect.Config.Env and inspect.ContainerConfig.Env;
containers: inspect.Config.Env) is a list of objects instead of "NAME=value" strings:
    [{"name": "DB_PASSWORD", "looks_secret": true}, {"name": "PATH", "looks_secret": false}]
No value is ever kept. `looks_secret` is true when the name or the value looked like a secret.

HostEvidence (from the read-only probe container, see collectors/probe.py):
    {"probe_image": "...",
     "files": {"/etc/docker": {"exists": true, "type": "directory", "mode": "0755",
                                "uid": 0, "gid": 0, "owner": "root", "group": "root"},
               "/etc/sysconfig/docker": {"exists": false}, ...},
     "contents": {"/etc/docker/daemon.json": "<text>", "/etc/audit/audit.rules": "<text>",
                  "/etc/audit/rules.d/docker.rules": "<text>", ...},
     "daemon_json": {...} | None,          # parsed /etc/docker/daemon.json (None when absent)
     "daemon_json_error": "..." | None,    # when present but not valid JSON
     "dockerd_cmdline": ["dockerd", "--host", ...] | None,   # the process of this daemon
     "mounts": [{"mount_point": "/var/lib/docker", "fstype": "ext4", "source": "/dev/sdb1"}],
     "docker_root_dir": "/var/lib/docker", "docker_root_is_mount": bool,
     "docker_group_members": ["alice", ...] | None,
     "errors": ["..."]}

Answers from the daemon are untrusted input. Before collectors use one, its shape is
checked (scanners/collectors/shapes.py: objects where objects belong, ``Id`` strings,
``Env`` lists of strings...); an answer of the wrong shape raises ``MalformedAnswer`` and
the scan fails with a reason naming the call, so a peer's garbage is never mistaken for a
bug in posture.

Strings from the daemon are attacker-controlled. Collectors keep them as data, but make
them storable: NUL characters are replaced and any single string longer than
MAX_STRING_BYTES is cut, with a marker that says how long it was and its sha256.
"""

from __future__ import annotations

from typing import Any, TypedDict

SCANNER_VERSION = "1"

#: A single attacker-controlled string longer than this is truncated at collection.
MAX_STRING_BYTES = 64 * 1024

#: Evidence kinds: how a snapshot is split into stored items (kind, key) and back.
KIND_DAEMON_INFO = "daemon.info"
KIND_DAEMON_VERSION = "daemon.version"
KIND_IMAGE = "image"
KIND_CONTAINER = "container"
KIND_HOST = "host"
KINDS = (KIND_DAEMON_INFO, KIND_DAEMON_VERSION, KIND_IMAGE, KIND_CONTAINER, KIND_HOST)


class EnvEntry(TypedDict):
    name: str
    looks_secret: bool


class ImageEvidence(TypedDict):
    id: str
    tags: list[str]
    inspect: dict[str, Any]
    history: list[dict[str, Any]]


class ContainerEvidence(TypedDict):
    id: str
    name: str
    inspect: dict[str, Any]


class Warning_(TypedDict):
    resource_type: str
    resource: str
    message: str


class Snapshot(TypedDict, total=False):
    scanner_version: str
    daemon: dict[str, dict[str, Any]]
    images: list[ImageEvidence]
    containers: list[ContainerEvidence]
    host: dict[str, Any] | None
    warnings: list[Warning_]


def split(snapshot: Snapshot) -> list[tuple[str, str, Any]]:
    """Cut a snapshot into (kind, key, payload) items, one per stored evidence document."""
    items: list[tuple[str, str, Any]] = [
        (KIND_DAEMON_INFO, "daemon", snapshot["daemon"]["info"]),
        (KIND_DAEMON_VERSION, "daemon", snapshot["daemon"]["version"]),
    ]
    items += [(KIND_IMAGE, img["id"], img) for img in snapshot.get("images", [])]
    items += [(KIND_CONTAINER, c["id"], c) for c in snapshot.get("containers", [])]
    if snapshot.get("host") is not None:
        items.append((KIND_HOST, "probe", snapshot["host"]))
    return items


def join(items: list[tuple[str, str, Any]], warnings: list[Warning_] | None = None) -> Snapshot:
    """Put stored (kind, key, payload) items back together into a snapshot (inverse of split)."""
    snap: Snapshot = {
        "scanner_version": SCANNER_VERSION,
        "daemon": {"info": {}, "version": {}},
        "images": [],
        "containers": [],
        "host": None,
        "warnings": list(warnings or []),
    }
    for kind, _key, payload in items:
        if kind == KIND_DAEMON_INFO:
            snap["daemon"]["info"] = payload
        elif kind == KIND_DAEMON_VERSION:
            snap["daemon"]["version"] = payload
        elif kind == KIND_IMAGE:
            snap["images"].append(payload)
        elif kind == KIND_CONTAINER:
            snap["containers"].append(payload)
        elif kind == KIND_HOST:
            snap["host"] = payload
    snap["images"].sort(key=lambda i: i["id"])
    snap["containers"].sort(key=lambda c: c["name"])
    return snap

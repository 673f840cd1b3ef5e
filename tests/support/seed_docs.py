"""Evidence documents for seeded history, shaped exactly like the collectors' output.

Every document starts from one recorded from a real daemon (tests/fixtures/checks/
snapshot.json, the contract in scanners/snapshot.py) and varies only what a real fleet
varies: ids, names, timestamps, image versions, counts, and the configuration fields behind
the checks a seeded change is meant to flip. Nothing here touches the database.

Two declared tables make seeded history checkable without reading it back through posture:
``TEMPLATES`` (which tracked checks each kind of container fails as deployed) and ``FAULTS``
(the configuration change a deployment can carry, and the tracked checks it makes fail).
tests/posture/test_seed.py runs the real checks over every (template, fault) pair to prove
the tables say what the checks see."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "checks"
RECORDED: dict[str, Any] = json.loads((FIXTURES / "snapshot.json").read_text())
HOST_RECORDED: dict[str, Any] = json.loads((FIXTURES / "host-recorded.json").read_text())

_CONTAINERS = {c["name"]: c for c in RECORDED["containers"]}
_IMAGES = {i["tags"][0]: i for i in RECORDED["images"]}


def hexdigest(*parts: object, length: int = 64) -> str:
    """A stable fake id (container id, image digest, daemon id) from its parts."""
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:length]


def docker_time(moment: datetime) -> str:
    """Docker's RFC 3339 with nanoseconds, as inspect shows it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


# --- checks the seed flips on purpose ------------------------------------------------------

PRIVILEGED = "container.privileged_disabled"
CAPS = "container.capabilities_restricted"
SECCOMP = "container.seccomp_enabled"
DEVICES = "container.host_devices_not_exposed"
USER = "container.user_not_root"
MEMORY = "container.memory_limited"
ROOTFS = "container.read_only_rootfs"
PORTS = "container.ports_bound_to_interface"
HEALTH = "container.health_reported"
PID = "container.host_pid_not_shared"
NET = "container.host_network_not_shared"

#: Container checks whose failure windows the seed knows by construction.
TRACKED = (PRIVILEGED, CAPS, SECCOMP, DEVICES, USER, MEMORY, ROOTFS, PORTS, HEALTH, PID, NET)


@dataclass(frozen=True)
class Template:
    """A kind of workload container, from one recorded container, with the tracked checks
    it fails as deployed (``fails``)."""

    name: str
    recorded: str  # the recorded container it is cloned from
    image_base: str  # the recorded image its images are cloned from
    running: bool
    fails: frozenset[str]


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    # Hardened services: pass every tracked check until a deployment changes them.
    Template("hardened", "rec-hardened", "rec/good:1", True, frozenset()),
    # Typical defaults: root, no limits, writable root, ports on every interface.
    Template("default", "rec-default", "local/busybox:1", True, frozenset({USER, MEMORY, ROOTFS, PORTS, HEALTH})),
    # Stopped one-off containers (jobs, leftovers): as configured, never running.
    Template("stopped", "rec-stopped", "rec/uid0:1", False, frozenset({USER, ROOTFS})),
)}
#: How often each template is deployed (weights).
TEMPLATE_WEIGHTS = {"hardened": 6, "default": 3, "stopped": 1}


def _privileged(i: dict) -> None:
    i["HostConfig"]["Privileged"] = True


def _cap_add(i: dict) -> None:
    i["HostConfig"]["CapAdd"] = [*(i["HostConfig"].get("CapAdd") or []), "SYS_ADMIN"]


def _user_root(i: dict) -> None:
    i["Config"]["User"] = "0"


def _no_memory_limit(i: dict) -> None:
    i["HostConfig"].update(Memory=0, MemorySwap=0)


def _writable_rootfs(i: dict) -> None:
    i["HostConfig"]["ReadonlyRootfs"] = False


def _published_port(i: dict) -> None:
    binding = [{"HostIp": "0.0.0.0", "HostPort": "9000"}]
    i["Config"].setdefault("ExposedPorts", {})
    i["Config"]["ExposedPorts"] = {**(i["Config"]["ExposedPorts"] or {}), "9000/tcp": {}}
    i["HostConfig"]["PortBindings"] = {**(i["HostConfig"].get("PortBindings") or {}), "9000/tcp": binding}
    i["NetworkSettings"]["Ports"] = {**(i["NetworkSettings"].get("Ports") or {}), "9000/tcp": binding}


def _no_healthcheck(i: dict) -> None:
    i["Config"].pop("Healthcheck", None)
    i["State"].pop("Health", None)


def _pid_host(i: dict) -> None:
    i["HostConfig"]["PidMode"] = "host"
    # Docker disables labels by itself for a container sharing the host PID namespace.
    i["HostConfig"]["SecurityOpt"] = [*(i["HostConfig"].get("SecurityOpt") or []), "label=disable"]


def _net_host(i: dict) -> None:
    i["HostConfig"]["NetworkMode"] = "host"
    i["HostConfig"]["PortBindings"] = {}
    i["Config"]["ExposedPorts"] = None
    i["NetworkSettings"].update(Ports={}, Networks={"host": {**_NETWORK_ENTRY, "NetworkID": hexdigest("net", "host")}})


_NETWORK_ENTRY = {"Aliases": None, "DriverOpts": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
                  "GlobalIPv6PrefixLen": 0, "IPAMConfig": None, "IPAddress": "", "IPPrefixLen": 0,
                  "IPv6Gateway": "", "Links": None, "MacAddress": ""}


@dataclass(frozen=True)
class Fault:
    """A configuration change a deployment can carry (``apply`` edits inspect in place) and
    the tracked checks it makes fail on any template (``fails``)."""

    name: str
    field: str  # what a diff shows as changed
    apply: Callable[[dict], None]
    fails: frozenset[str]
    clears: frozenset[str] = frozenset()  # tracked failures it would hide: never deployed on those


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("privileged", "HostConfig.Privileged", _privileged, frozenset({PRIVILEGED, CAPS, SECCOMP, DEVICES})),
    Fault("cap_add", "HostConfig.CapAdd", _cap_add, frozenset({CAPS})),
    Fault("user_root", "Config.User", _user_root, frozenset({USER})),
    Fault("no_memory_limit", "HostConfig.Memory", _no_memory_limit, frozenset({MEMORY})),
    Fault("writable_rootfs", "HostConfig.ReadonlyRootfs", _writable_rootfs, frozenset({ROOTFS})),
    Fault("published_port", "HostConfig.PortBindings", _published_port, frozenset({PORTS})),
    Fault("no_healthcheck", "Config.Healthcheck", _no_healthcheck, frozenset({HEALTH})),
    Fault("pid_host", "HostConfig.PidMode", _pid_host, frozenset({PID})),
    # Host networking drops published ports: the ports check no longer applies.
    Fault("net_host", "HostConfig.NetworkMode", _net_host, frozenset({NET}), clears=frozenset({PORTS})),
)}
#: Faults that only make sense on a running template (ports, health: not applicable when stopped).
RUNNING_ONLY = frozenset({"published_port", "no_healthcheck"})


def faults_for(template: str) -> list[str]:
    """The faults a deployment of ``template`` can carry without hiding a failure it has."""
    tpl = TEMPLATES[template]
    return [f for f in FAULTS if (tpl.running or f not in RUNNING_ONLY) and not (FAULTS[f].clears & tpl.fails)]


def expected_failing(template: str, fault: str | None) -> frozenset[str]:
    """The tracked checks a container of ``template`` carrying ``fault`` fails (the tables)."""
    return TEMPLATES[template].fails | (FAULTS[fault].fails if fault else frozenset())


# --- documents -------------------------------------------------------------------------------

def image_doc(repo: str, version: int, template: str, created: datetime) -> dict:
    """One image version of a fleet repository (the same document on every host that pulls
    it, so it is stored once)."""
    base = _IMAGES[TEMPLATES[template].image_base]
    image_id = "sha256:" + hexdigest("image", repo, version)
    tag = f"registry.example.com/{repo}:{version}"
    doc = copy.deepcopy(base)
    doc["id"], doc["tags"] = image_id, [tag]
    inspect = doc["inspect"]
    inspect.update(Id=image_id, RepoTags=[tag], RepoDigests=[f"registry.example.com/{repo}@sha256:"
                                                                + hexdigest("digest", repo, version)],
                   Created=docker_time(created), Size=inspect.get("Size", 0) + 4096 * version,
                   Parent="", Container=hexdigest("build", repo, version))
    inspect["VirtualSize"] = inspect["Size"]
    inspect.setdefault("Metadata", {})["LastTagTime"] = docker_time(created)
    for entry in doc["history"]:
        entry["Created"] = int(created.timestamp())
    return doc


def container_doc(*, host_key: str, name: str, serial: int, template: str, fault: str | None,
                  image: dict, created: datetime) -> dict:
    """One container as inspect shows it: a clone of the template's recorded container with
    its own id, name, image and timestamps, and the fault applied."""
    tpl = TEMPLATES[template]
    doc = copy.deepcopy(_CONTAINERS[tpl.recorded])
    cid = hexdigest("container", host_key, name, serial)
    i = doc["inspect"]
    doc["id"], doc["name"] = cid, name
    i.update(Id=cid, Name="/" + name, Image=image["id"], Created=docker_time(created))
    i["Config"].update(Image=image["tags"][0], Hostname=cid[:12])
    for path in ("HostnamePath", "HostsPath", "ResolvConfPath"):
        if i.get(path):
            i[path] = f"/var/lib/docker/containers/{cid}/{i[path].rsplit('/', 1)[-1]}"
    if i.get("LogPath"):
        i["LogPath"] = f"/var/lib/docker/containers/{cid}/{cid}-json.log"
    i["GraphDriver"] = {"Name": "overlay2", "Data": {
        k: f"/var/lib/docker/overlay2/{hexdigest('layer', cid)}/{leaf}"
        for k, leaf in (("LowerDir", "diff"), ("MergedDir", "merged"), ("UpperDir", "diff"), ("WorkDir", "work"))}}
    if i["NetworkSettings"].get("SandboxID"):
        sandbox = hexdigest("sandbox", cid)
        i["NetworkSettings"].update(SandboxID=sandbox, SandboxKey=f"/var/run/docker/netns/{sandbox[:12]}")
    state = i["State"]
    if tpl.running:
        state.update(StartedAt=docker_time(created), Pid=1000 + int(cid[:6], 16) % 60000)
        for entry in state.get("Health", {}).get("Log", []):
            entry.update(Start=docker_time(created), End=docker_time(created))
    if fault:
        FAULTS[fault].apply(i)
    return doc


def daemon_docs(host_key: str, hostname: str, containers: list[dict], images: list[dict],
                engine: tuple[str, str]) -> dict[str, dict]:
    """docker info / version of a host: its name, id, engine version and object counts."""
    info = copy.deepcopy(RECORDED["daemon"]["info"])
    version = copy.deepcopy(RECORDED["daemon"]["version"])
    running = sum(1 for c in containers if c["inspect"]["State"].get("Running"))
    info.update(Name=hostname, ID=":".join(hexdigest("daemon", host_key).upper()[i:i + 4] for i in range(0, 48, 4)),
                Containers=len(containers), ContainersRunning=running, ContainersStopped=len(containers) - running,
                Images=len(images), DockerRootDir="/var/lib/docker", NCPU=8, MemTotal=33_524_088_832,
                ServerVersion=engine[0], KernelVersion=engine[1])
    version.update(Version=engine[0], KernelVersion=engine[1])
    for component in version.get("Components", []):
        if component.get("Name") == "Engine":
            component["Version"] = engine[0]
            component.get("Details", {})["KernelVersion"] = engine[1]
    return {"info": info, "version": version}


def host_doc(hostname: str, *, failed: bool = False) -> dict:
    """The host probe's evidence (recorded), or what a probe that could not read gives."""
    doc = copy.deepcopy(HOST_RECORDED)
    if failed:
        doc.update(files={}, contents={}, mounts=[], docker_root_is_mount=None, daemon_json=None,
                   docker_group_members=None, dockerd_cmdline=None,
                   errors=["the host probe script failed: exit code 2"])
    return doc


def snapshot_of(daemon: dict, images: list[dict], containers: list[dict], host: dict | None) -> dict:
    """The snapshot a collection would return (scanners/snapshot.py), images by id and
    containers by name, as the collectors list them."""
    return {"scanner_version": RECORDED["scanner_version"], "daemon": daemon,
            "images": sorted(images, key=lambda i: i["id"]),
            "containers": sorted(containers, key=lambda c: c["name"]), "host": host, "warnings": []}

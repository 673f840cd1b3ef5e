"""The correctness scenario matrix: real containers, images and daemons, exact CIS verdicts.

A hardened baseline (image: non-root USER, HEALTHCHECK, no ADD, no secrets; container: that
user, read-only root, memory/CPU/PIDs limits, no-new-privileges, cap-drop ALL, restart
on-failure:5, no published ports, network none) and scenarios that each change ONE thing.
Everything is collected by the real collector (host probe on) and evaluated by the real
checks, then mapped to CIS v1.8.0 ids through the registry and the catalog:

* ``test_it_flags_<scenario>``: each CIS id the change touches has its exact status, and the
  detail names the field that decided it;
* ``test_it_keeps_unrelated_*``: every other id of that scope keeps the baseline's status;
* the baseline container, image and daemon pass (or are the documented ``not_applicable``).

Container and image scenarios live on the session daemon and are collected ONCE; daemon
scenarios each get a private daemon (hardened daemon.json, one setting changed), started,
probed and stopped in parallel. A scenario marked ``xfail(strict=True)`` is a bug in a check:
the reason says which one; the marker must go when the check is fixed.

Machine constraints (all private daemons run ``--bridge=none --iptables=false
--ip-masq=false``; no AppArmor, SELinux, /etc/subuid here; ``--privileged`` cannot start):
2.2 icc is not_applicable without a default bridge and ``--icc=false`` cannot start with
``--iptables=false``, so icc is also checked on the real evidence with the bridge flag
removed; 2.4 always fails (``--iptables=false``); 5.31 notes that userns-remap is off;
a privileged and an rshared container are created but never started (stopped
containers are audited like running ones).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import docker.types
import pytest
from django.core.management import call_command

from scanners import registry
from scanners.checks.base import Scope, Status
from scanners.client import HostConfig
from scanners.runner import run_checks
from tests.integration.scenarios_support import (
    CATALOGS,
    CIS,
    CIS_160,
    DROP,
    FAIL,
    MANUAL,
    NA,
    PASS,
    DaemonRun,
    Verdict,
    assert_expected,
    bring_up_all,
    build_image,
    collect_and_check,
    create,
    free_port,
    merge,
    scope_ids,
    statuses,
    stop_all,
    verdicts,
)
from tests.support.certs import make_bundle
from tests.support.dockerd import BASE_IMAGE, PrivateDaemon, make_base_image

pytestmark = pytest.mark.docker

CANARY = "sc-canary-7d41e0"
CONTAINER_IDS = scope_ids(Scope.CONTAINER)
IMAGE_IDS = scope_ids(Scope.IMAGE)
DAEMON_IDS = scope_ids(Scope.DAEMON)

# =========================================================================== images

USER = "USER 65534:65534"
HEALTH = 'HEALTHCHECK --interval=2s --timeout=2s --retries=3 CMD ["/bin/true"]'
#: Dockerfile lines after FROM (a LABEL naming the image keeps build caches apart).
IMAGES: dict[str, list[str]] = {
    "hardened": [USER, HEALTH],
    "nouser": [HEALTH],
    "nohealth": [USER],
    "healthnone": [USER, "HEALTHCHECK NONE"],
    "envsecret": [f"ENV DB_PASSWORD={CANARY}", USER, HEALTH],
    "envsecretvalue": [f"ENV DATABASE_URL=postgres://app:{CANARY}@db.invalid/app", USER, HEALTH],
    "argsecret": [f"ARG API_TOKEN={CANARY}", 'RUN test -n "$API_TOKEN"', USER, HEALTH],
    "add": ["ADD motd.txt /opt/motd.txt", USER, HEALTH],
    "setuid": ["RUN cp /bin/busybox /bin/sc-suid && chmod 4755 /bin/sc-suid", USER, HEALTH],
    "updateonly": ["RUN apk update || true", USER, HEALTH],
}
IMAGE_FILES = {"add": {"motd.txt": b"hello from the scenario matrix\n"}}


def image_tag(key: str) -> str:
    return f"sc/{key}:1"


BASELINE_IMAGE: dict[str, tuple[str, str]] = {
    "4.1": (PASS, "Config.User=65534:65534"),
    "4.6": (PASS, "Config.Healthcheck.Test=['CMD', '/bin/true']"),
    "4.7": (PASS, "no update-only RUN"),
    "4.9": (PASS, "no ADD in history"),
    "4.10": (PASS, "no secret-looking Env, label or history entry"),
}


@dataclass(frozen=True)
class ImageScenario:
    name: str
    image: str
    why: str
    expect: dict[str, tuple[str, str]]
    #: Expectations on the daemon-scope finding (manual checks are one finding per host).
    daemon_expect: dict[str, tuple[str, str]] = field(default_factory=dict)
    bug: str | None = None


IMAGE_SCENARIOS = [
    ImageScenario("image_without_user", "nouser", "An image with no USER runs as root (4.1).",
                  {"4.1": (FAIL, 'Config.User="" (defaults to root)')}),
    ImageScenario("image_without_healthcheck", "nohealth", "An image without HEALTHCHECK (4.6).",
                  {"4.6": (FAIL, "Config.Healthcheck not set")}),
    ImageScenario("image_healthcheck_none", "healthnone", "HEALTHCHECK NONE is no health check (4.6).",
                  {"4.6": (FAIL, "Config.Healthcheck.Test=[NONE] (HEALTHCHECK NONE)")}),
    ImageScenario("image_secret_env", "envsecret", "A secret-named ENV is baked in (4.10).",
                  {"4.10": (FAIL, "Config.Env DB_PASSWORD looks secret")}),
    ImageScenario("image_secret_value_in_env", "envsecretvalue",
                  "An innocuous ENV name whose value carries a URL password (4.10).",
                  {"4.10": (FAIL, "Config.Env DATABASE_URL looks secret")}),
    ImageScenario("image_secret_build_arg", "argsecret", "An ARG default keeps a token in history (4.10).",
                  {"4.10": (FAIL, "history ARG API_TOKEN keeps a secret-looking value")}),
    ImageScenario("image_add_in_history", "add", "ADD of a local file instead of COPY (4.9).",
                  {"4.9": (FAIL, "history ADD file:")}),
    ImageScenario("image_update_only_run", "updateonly", "A RUN that only refreshes the package index (4.7).",
                  {"4.7": (FAIL, "history RUN apk update || true")}),
    ImageScenario(
        "image_setuid_file", "setuid",
        "A setuid copy of busybox: 4.8 is manual (the check reads no image file modes), so no "
        "automated id may change and the host-wide 4.8 stays manual, never pass.",
        {},
        daemon_expect={"4.8": (MANUAL, "file modes are not visible through the Docker API")},
    ),
]

# =========================================================================== containers

#: The hardened run options (create_host_config keyword arguments); network none by default.
HARDENED: dict[str, Any] = {
    "read_only": True,
    "mem_limit": "64m",
    "nano_cpus": 500_000_000,
    "pids_limit": 64,
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
    "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 5},
}


@dataclass(frozen=True)
class Env:
    """Paths known only at run time (the session daemon's socket, a scratch directory)."""

    socket_path: str
    socket_dir: str
    scratch: str
    etc_volume: str


@dataclass(frozen=True)
class ContainerScenario:
    name: str
    why: str
    expect: dict[str, tuple[str, str]]
    changes: Mapping[str, Any] | Callable[[Env], Mapping[str, Any]] = field(default_factory=dict)
    image: str = "hardened"
    user: str | None = None
    healthcheck: dict[str, Any] | None = None
    ports: tuple[int, ...] = ()
    start: bool = True
    bug: str | None = None

    @property
    def container(self) -> str:
        return f"sc-{self.name}"

    def options(self, env: Env) -> dict[str, Any]:
        changes = self.changes(env) if callable(self.changes) else self.changes
        return merge(HARDENED, changes)


def _bind(source: str, target: str, *, ro: bool, propagation: str | None = None) -> docker.types.Mount:
    return docker.types.Mount(target, source, type="bind", read_only=ro, propagation=propagation)


ETC_VOLUME = "sc-etc"
NOT_STARTED = (NA, "container not running (State.Status=created)")
S = ContainerScenario
CONTAINER_SCENARIOS: list[ContainerScenario] = [
    S("cap_add", "--cap-add SYS_ADMIN (outside Docker's default set).",
      {"5.4": (FAIL, "HostConfig.CapAdd=SYS_ADMIN")}, {"cap_add": ["SYS_ADMIN"]}),
    S("cap_add_default_only", "--cap-add CHOWN (inside the default set) is not a finding.",
      {"5.4": (PASS, "HostConfig.CapAdd=CHOWN (within defaults), CapDrop=ALL")}, {"cap_add": ["CHOWN"]}),
    S("pid_host", "--pid=host.", {"5.16": (FAIL, "HostConfig.PidMode=host")}, {"pid_mode": "host"}),
    S("net_host", "--net=host: 5.10 fails; ports and bridge ids have nothing to judge.",
      {"5.10": (FAIL, "HostConfig.NetworkMode=host"),
       "5.8": (NA, "NetworkMode=host publishes no ports"),
       "5.14": (NA, "NetworkMode=host publishes no ports"),
       "5.30": (NA, "NetworkMode=host has no network of its own")},
      {"network_mode": "host"}),
    S("ipc_host", "--ipc=host.", {"5.17": (FAIL, "HostConfig.IpcMode=host")}, {"ipc_mode": "host"}),
    S("uts_host", "--uts=host.", {"5.21": (FAIL, "HostConfig.UTSMode=host")}, {"uts_mode": "host"}),
    S("userns_host",
      "--userns=host fails 5.31 whatever the daemon does, as CIS's audit and docker-bench do; "
      "the detail says remap is off on the daemon (this host has no /etc/subuid, so 2.10 fails too).",
      {"5.31": (FAIL, "HostConfig.UsernsMode=host; the daemon has no userns-remap (see 2.10)")},
      {"userns_mode": "host"}),
    S("default_network_without_bridge",
      "NetworkMode=default on a --bridge=none daemon: inspect still lists a 'bridge' entry, with "
      "no NetworkID, but there is no docker0 to be on: 5.30 passes, judged on networks that exist.",
      {"5.30": (PASS, "the daemon has no default bridge")}, {"network_mode": "default"}),
    S("sensitive_dir_rw", "-v /etc:/host-etc (read-write).",
      {"5.6": (FAIL, "Mounts /etc -> /host-etc (rw)")},
      lambda env: {"mounts": [_bind("/etc", "/host-etc", ro=False)]}),
    S("sensitive_dir_ro", "-v /etc:/host-etc:ro: the directory itself fails in any mode.",
      {"5.6": (FAIL, "Mounts /etc -> /host-etc (ro)")},
      lambda env: {"mounts": [_bind("/etc", "/host-etc", ro=True)]}),
    S("file_below_sensitive_dir_ro", "-v /etc/hostname:/etc/host-hostname:ro is allowed (NOTES: 5.6).",
      {"5.6": (PASS, "no sensitive host directory among 1 bind mounts")},
      lambda env: {"mounts": [_bind("/etc/hostname", "/etc/host-hostname", ro=True)]}),
    S("docker_sock", "The daemon's own socket mounted at /var/run/docker.sock (read-only).",
      {"5.32": (FAIL, "-> /var/run/docker.sock")},
      lambda env: {"mounts": [_bind(env.socket_path, "/var/run/docker.sock", ro=True)]}),
    S("docker_sock_dir",
      "The directory holding the daemon's socket (its -H unix:// path) mounted read-only: the "
      "socket is reachable inside just the same. Created, never started.",
      {"5.32": (FAIL, "-> /dockerd"), "5.27": NOT_STARTED},
      lambda env: {"mounts": [_bind(env.socket_dir, "/dockerd", ro=True)]}, start=False),
    S("joins_host_network_container",
      "--network container:sc-net_host: it joins the namespace of a --net=host container, so "
      "it shares the host's network namespace without saying host itself.",
      {"5.10": (FAIL, "NetworkMode=container:"), "5.30": (NA, "has no network of its own")},
      {"network_mode": "container:sc-net_host"}),
    S("joins_host_pid_container",
      "--pid container:sc-pid_host: it joins the PID namespace of a --pid=host container.",
      {"5.16": (FAIL, "PidMode=container:")},
      {"pid_mode": "container:sc-pid_host"}),
    S("sensitive_dir_via_local_volume",
      "A named local volume with driver options type=none,o=bind,ro,device=/etc mounted at "
      "/host-etc: the container gets the host's /etc, but inspect shows Type=volume and "
      "Source=<data-root>/volumes/sc-etc/_data. Created only (the volume is never mounted).",
      {"5.6": (FAIL, "/etc"), "5.27": NOT_STARTED},
      lambda env: {"mounts": [docker.types.Mount("/host-etc", env.etc_volume, type="volume", read_only=True)]},
      start=False),
    S("no_memory_limit", "No --memory.", {"5.11": (FAIL, "HostConfig.Memory=0 (unlimited)")},
      {"mem_limit": DROP}),
    S("no_cpu_limit", "No --cpus / --cpu-shares.",
      {"5.12": (FAIL, "HostConfig.CpuShares=0 (default), no NanoCpus or CpuQuota")}, {"nano_cpus": DROP}),
    S("no_pids_limit", "No --pids-limit.", {"5.29": (FAIL, "(unlimited)")}, {"pids_limit": DROP}),
    S("restart_always", "--restart=always.", {"5.15": (FAIL, "RestartPolicy.Name=always")},
      {"restart_policy": {"Name": "always", "MaximumRetryCount": 0}}),
    S("no_no_new_privileges", "No --security-opt no-new-privileges, and the daemon default is off.",
      {"5.26": (FAIL, "SecurityOpt lacks no-new-privileges and the daemon default is off")},
      {"security_opt": DROP}),
    S("writable_rootfs", "No --read-only.", {"5.13": (FAIL, "HostConfig.ReadonlyRootfs=false")},
      {"read_only": False}),
    S("privileged_port",
      "-p 127.0.0.1:80:80. With --bridge=none and network none the daemon records the binding "
      "(HostConfig.PortBindings, what the check reads) but opens no host port: nothing listens.",
      {"5.8": (FAIL, "PortBindings 80/tcp -> 127.0.0.1:80"),
       "5.14": (PASS, "PortBindings 80/tcp -> 127.0.0.1:80")},
      {"port_bindings": {80: ("127.0.0.1", 80)}}, ports=(80,)),
    S("port_on_every_interface",
      "-p 8080:80 (every interface); recorded, not opened, as above.",
      {"5.14": (FAIL, "PortBindings on every interface: 80/tcp -> *:8080"),
       "5.8": (PASS, "no published host port below 1024 (1 bindings)")},
      {"port_bindings": {80: 8080}}, ports=(80,)),
    S("container_of_image_without_user", "The hardened run options on an image without USER.",
      {"4.1": (FAIL, 'Config.User="" (defaults to root)')}, image="nouser"),
    S("user_root_override", "--user 0 on the hardened image.", {"4.1": (FAIL, "Config.User=0")}, user="0"),
    S("container_of_image_without_healthcheck", "An image without HEALTHCHECK, run hardened.",
      {"5.27": (FAIL, "State.Health absent: Config.Healthcheck not set")}, image="nohealth"),
    S("container_of_image_healthcheck_none", "An image with HEALTHCHECK NONE, run hardened.",
      {"5.27": (FAIL, "State.Health absent: Config.Healthcheck.Test=[NONE] (HEALTHCHECK NONE)")},
      image="healthnone"),
    S("no_healthcheck_flag", "--no-healthcheck on the hardened image.",
      {"5.27": (FAIL, "(HEALTHCHECK NONE)")}, healthcheck={"test": ["NONE"]}),
    S("seccomp_unconfined", "--security-opt seccomp=unconfined.",
      {"5.22": (FAIL, "SecurityOpt has seccomp=unconfined")},
      {"security_opt": ["no-new-privileges", "seccomp=unconfined"]}),
    S("host_device", "--device /dev/null:/dev/xnull:r.",
      {"5.18": (FAIL, "HostConfig.Devices /dev/null -> /dev/xnull (r)")}, {"devices": ["/dev/null:/dev/xnull:r"]}),
    S("ulimit_override", "--ulimit nofile=1024:1024.",
      {"5.19": (FAIL, "HostConfig.Ulimits=nofile=1024:1024")},
      {"ulimits": [docker.types.Ulimit(name="nofile", soft=1024, hard=1024)]}),
    S("shared_propagation",
      "A bind with rshared propagation. The host's / is a private mount, so it cannot start "
      "here: created only.",
      {"5.20": (FAIL, "Propagation=rshared"), "5.27": NOT_STARTED},
      lambda env: {"mounts": [_bind(env.scratch, "/shared", ro=True, propagation="rshared")]}, start=False),
    S("cgroup_parent", "--cgroup-parent sc-parent (created only: starting would make a host cgroup).",
      {"5.25": (FAIL, "HostConfig.CgroupParent=sc-parent"), "5.27": NOT_STARTED},
      {"cgroup_parent": "sc-parent"}, start=False),
    S("privileged",
      "--privileged. This kernel refuses to start it (runc: unable to apply caps), so it is "
      "created only; the daemon holds exactly that configuration.",
      {"5.5": (FAIL, "HostConfig.Privileged=true"),
       "5.4": (FAIL, "HostConfig.Privileged=true grants every capability"),
       "5.18": (FAIL, "HostConfig.Privileged=true exposes every host device"),
       "5.22": (FAIL, "HostConfig.Privileged=true runs without seccomp"),
       "5.27": NOT_STARTED},
      {"privileged": True}, start=False),
    S("never_started", "The baseline container, created but never started.", {"5.27": NOT_STARTED}, start=False),
]
SCENARIO_BY_NAME = {s.name: s for s in CONTAINER_SCENARIOS}
BASELINE = ContainerScenario("baseline", "The hardened baseline container.", {})


def baseline_container(info: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """What the hardened container gets on this host (5.2/5.3 depend on AppArmor/SELinux)."""
    options = " ".join(info.get("SecurityOptions") or [])
    return {
        "4.1": (PASS, "Config.User=65534:65534"),
        "5.2": (PASS, "AppArmorProfile=") if "apparmor" in options else (NA, "host has no AppArmor"),
        "5.3": (PASS, "ProcessLabel=") if "selinux" in options else (NA, "host has no SELinux"),
        "5.4": (PASS, "HostConfig.CapAdd=none (within defaults), CapDrop=ALL"),
        "5.5": (PASS, "HostConfig.Privileged=false"),
        "5.6": (PASS, "no sensitive host directory among 0 bind mounts"),
        "5.8": (PASS, "no published host port below 1024 (0 bindings)"),
        "5.10": (PASS, "HostConfig.NetworkMode=none"),
        "5.11": (PASS, "HostConfig.Memory=67108864"),
        "5.12": (PASS, "HostConfig.NanoCpus=500000000"),
        "5.13": (PASS, "HostConfig.ReadonlyRootfs=true"),
        "5.14": (NA, "no published ports"),
        "5.15": (PASS, "RestartPolicy=on-failure:5"),
        "5.16": (PASS, 'HostConfig.PidMode=""'),
        "5.17": (PASS, "HostConfig.IpcMode="),
        "5.18": (PASS, "HostConfig.Devices, DeviceRequests and DeviceCgroupRules are empty"),
        "5.19": (PASS, "HostConfig.Ulimits empty (daemon defaults)"),
        "5.20": (PASS, "no shared propagation among 0 mounts"),
        "5.21": (PASS, 'HostConfig.UTSMode=""'),
        "5.22": (PASS, "daemon seccomp profile=default"),
        "5.25": (PASS, 'HostConfig.CgroupParent="" (default)'),
        "5.26": (PASS, "SecurityOpt has no-new-privileges"),
        "5.27": (PASS, "State.Health.Status="),
        "5.29": (PASS, "HostConfig.PidsLimit=64"),
        "5.30": (PASS, "NetworkMode=none, networks=none"),
        "5.31": (PASS, 'HostConfig.UsernsMode=""; the daemon has no userns-remap (see 2.10)'),
        "5.32": (PASS, "no docker.sock among 0 mounts"),
    }


@dataclass
class Matrix:
    """One collection of the session daemon holding every image and container scenario."""

    snapshot: dict
    findings: list
    start_errors: dict[str, str | None]

    def container(self, name: str) -> dict[str, Verdict]:
        return verdicts(self.findings, "container", f"sc-{name}")

    def image(self, key: str) -> dict[str, Verdict]:
        return verdicts(self.findings, "image", image_tag(key))

    def daemon(self) -> dict[str, Verdict]:
        return verdicts(self.findings, "daemon", "daemon")

    def inspect(self, name: str) -> dict:
        return next(c["inspect"] for c in self.snapshot["containers"] if c["name"] == f"sc-{name}")


@pytest.fixture(scope="module")
def matrix(dockerd, make_module_container) -> Iterator[Matrix]:
    client = make_module_container.client
    scratch = tempfile.mkdtemp(prefix="sc-prop", dir="/tmp")
    env = Env(socket_path=dockerd.socket_path, socket_dir=os.path.dirname(dockerd.socket_path), scratch=scratch,
              etc_volume=ETC_VOLUME)
    errors: dict[str, str | None] = {}
    try:
        for key, lines in IMAGES.items():
            dockerfile = "\n".join([f"FROM {BASE_IMAGE}", f"LABEL sc.scenario={key}", *lines]) + "\n"
            build_image(client, image_tag(key), dockerfile, IMAGE_FILES.get(key))
        # read-only bind options, and never mounted: no container using it is ever started
        client.api.create_volume(ETC_VOLUME, driver="local",
                                 driver_opts={"type": "none", "o": "bind,ro", "device": "/etc"})
        for scn in [BASELINE, *CONTAINER_SCENARIOS]:
            _cid, errors[scn.name] = create(
                make_module_container, scn.container, image=image_tag(scn.image), options=scn.options(env),
                start=scn.start, user=scn.user, healthcheck=scn.healthcheck, ports=scn.ports,
            )
        snapshot, findings = collect_and_check(HostConfig(url=dockerd.url), probe_image=BASE_IMAGE)
        yield Matrix(snapshot, findings, errors)
    finally:
        make_module_container.remove_all()
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_volume(ETC_VOLUME, force=True)
        for key in IMAGES:
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_image(image_tag(key), force=True)
        shutil.rmtree(scratch, ignore_errors=True)


def test_it_builds_every_scenario_as_configured(matrix):
    """Every started scenario really runs, and the probe saw this daemon (no probe errors)."""
    assert {name: err for name, err in matrix.start_errors.items() if err} == {}
    for scn in [BASELINE, *CONTAINER_SCENARIOS]:
        state = matrix.inspect(scn.name)["State"]["Status"]
        assert state == ("running" if scn.start else "created"), scn.name
    assert matrix.snapshot["host"] is not None and matrix.snapshot["host"]["errors"] == []


def test_it_passes_the_hardened_baseline_container(matrix):
    expected = baseline_container(matrix.snapshot["daemon"]["info"])
    assert set(expected) == CONTAINER_IDS, "the baseline must pin every container-scope CIS id"
    assert_expected(matrix.container("baseline"), expected, "baseline container")


def test_it_passes_the_hardened_baseline_image(matrix):
    assert set(BASELINE_IMAGE) == IMAGE_IDS, "the baseline must pin every image-scope CIS id"
    assert_expected(matrix.image("hardened"), BASELINE_IMAGE, "hardened image")


def _named_test(name: str, why: str, bug: str | None, body: Callable[..., None]) -> Callable[..., None]:
    """``test_it_flags_<name>``: one test per scenario; a known bug makes it a strict xfail."""
    body.__name__ = body.__qualname__ = f"test_it_flags_{name}"
    body.__doc__ = why
    return pytest.mark.xfail(strict=True, reason=bug)(body) if bug else body


def _container_flag_test(scn: ContainerScenario):
    def test(matrix):
        assert_expected(matrix.container(scn.name), scn.expect, scn.name)

    return _named_test(scn.name, scn.why, scn.bug, test)


def _image_flag_test(scn: ImageScenario):
    def test(matrix):
        assert_expected(matrix.image(scn.image), scn.expect, scn.name)
        if scn.daemon_expect:
            assert_expected(matrix.daemon(), scn.daemon_expect, f"{scn.name} (host-wide)")

    return _named_test(scn.name, scn.why, scn.bug, test)


for _scn in CONTAINER_SCENARIOS:
    globals()[f"test_it_flags_{_scn.name}"] = _container_flag_test(_scn)
for _iscn in IMAGE_SCENARIOS:
    globals()[f"test_it_flags_{_iscn.name}"] = _image_flag_test(_iscn)


@pytest.mark.parametrize("scn", CONTAINER_SCENARIOS, ids=lambda s: s.name)
def test_it_keeps_unrelated_container_ids_at_baseline(matrix, scn):
    """A single change flips only the ids it touches (e.g. --pid=host still passes 5.10)."""
    others = CONTAINER_IDS - set(scn.expect)
    assert statuses(matrix.container(scn.name), others) == statuses(matrix.container("baseline"), others)


@pytest.mark.parametrize("scn", IMAGE_SCENARIOS, ids=lambda s: s.name)
def test_it_keeps_unrelated_image_ids_at_baseline(matrix, scn):
    others = IMAGE_IDS - set(scn.expect)
    assert statuses(matrix.image(scn.image), others) == statuses(matrix.image("hardened"), others)


def test_it_records_published_ports_without_opening_them(matrix):
    """The port scenarios publish nothing for real: network none has no endpoint to forward to."""
    for name in ("privileged_port", "port_on_every_interface"):
        inspect = matrix.inspect(name)
        assert inspect["HostConfig"]["PortBindings"], name
        assert not inspect["NetworkSettings"]["Ports"], name


def test_it_never_keeps_the_baked_in_secret_values(matrix):
    assert CANARY not in json.dumps(matrix.snapshot)


def test_it_keeps_the_host_wide_verdict_of_the_setuid_check_manual(matrix):
    """4.8 is one host-wide manual finding: the setuid image cannot turn it into a pass."""
    found = matrix.daemon()["4.8"]
    assert found.status == MANUAL and found.check == "manual.setuid_removed"


# =========================================================================== daemons

#: The hardened daemon.json every daemon scenario starts from (icc cannot be false here).
BASE_JSON: dict[str, Any] = {
    "log-level": "info",
    "log-driver": "syslog",
    "log-opts": {"syslog-address": "udp://127.0.0.1:5514"},
    "no-new-privileges": True,
    "live-restore": True,
    "userland-proxy": False,
    "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 4096, "Hard": 4096}},
    "experimental": False,
}
BASELINE_DAEMON: dict[str, tuple[str, str]] = {
    "2.2": (NA, "dockerd --bridge=none: there is no default bridge"),
    "2.3": (PASS, "daemon.json log-level=info"),
    "2.4": (FAIL, "dockerd --iptables=false"),  # every private daemon runs --iptables=false
    "2.5": (PASS, "RegistryConfig lists only the loopback defaults as insecure"),
    "2.8": (NA, "no tcp:// listener"),
    "2.9": (PASS, "daemon.json default-ulimits sets nofile"),
    "2.11": (PASS, "cgroup-parent not set (default)"),
    "2.14": (PASS, "LoggingDriver=syslog"),
    "2.15": (PASS, "daemon.json no-new-privileges=true"),
    "2.16": (PASS, "LiveRestoreEnabled=true"),
    "2.17": (PASS, "daemon.json userland-proxy=false"),
    "2.18": (PASS, "SecurityOptions name=seccomp,profile=default"),
    "2.19": (PASS, "ExperimentalBuild=false"),
}
#: Containers made on some daemons: one that relies on the daemon's no-new-privileges, and
#: the hardened run options (with the daemon's default ulimits merged in by Docker at start).
INHERITS_NNP = {"options": merge(HARDENED, {"security_opt": DROP}), "user": "65534:65534"}
HARDENED_ON_DAEMON = {"options": HARDENED, "user": "65534:65534"}


@dataclass(frozen=True)
class DaemonScenario:
    name: str
    why: str
    expect: dict[str, tuple[str, str]]
    json_changes: Mapping[str, Any] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    tls_without_verify: bool = False
    #: chmod of the daemon's --config-file before it starts.
    config_mode: int | None = None
    #: Expectations on host-scope ids (CIS section 3), decided from the probe's stat of files.
    host_expect: Callable[[PrivateDaemon], dict[str, tuple[str, str]]] | None = None
    bug: str | None = None


TCP = "{tcp}"  # replaced by tcp://127.0.0.1:<free port>; never any other address
D = DaemonScenario
DAEMON_SCENARIOS: list[DaemonScenario] = [
    D("daemon_icc_true",
      '"icc": true. There is no default bridge (--bridge=none), so 2.2 is not_applicable; '
      "see test_it_judges_icc_on_the_real_evidence_when_a_bridge_exists for the verdicts.",
      {"2.2": (NA, "dockerd --bridge=none: there is no default bridge")}, {"icc": True}),
    D("daemon_userland_proxy_on", '"userland-proxy": true.',
      {"2.17": (FAIL, "daemon.json userland-proxy=true")}, {"userland-proxy": True}),
    D("daemon_userland_proxy_flag", "A bare --userland-proxy flag (means true) instead of daemon.json.",
      {"2.17": (FAIL, "dockerd --userland-proxy=true")}, {"userland-proxy": DROP}, args=("--userland-proxy",)),
    D("daemon_log_driver_flag", "--log-driver=local on the command line (logs stay on the host).",
      {"2.14": (FAIL, "LoggingDriver=local keeps logs on the host")},
      {"log-driver": DROP, "log-opts": DROP}, args=("--log-driver=local",)),
    D("daemon_live_restore_off", '"live-restore": false.',
      {"2.16": (FAIL, "LiveRestoreEnabled=false")}, {"live-restore": False}),
    D("daemon_log_driver_json_file", '"log-driver": "json-file" (logs stay on the host).',
      {"2.14": (FAIL, "LoggingDriver=json-file keeps logs on the host")},
      {"log-driver": "json-file", "log-opts": DROP}),
    D("daemon_no_new_privileges_off", '"no-new-privileges": false.',
      {"2.15": (FAIL, "daemon.json no-new-privileges=false")}, {"no-new-privileges": False}),
    D("daemon_insecure_registry", '"insecure-registries": ["10.1.2.3:5000"].',
      {"2.5": (FAIL, "RegistryConfig insecure: 10.1.2.3:5000")}, {"insecure-registries": ["10.1.2.3:5000"]}),
    D("daemon_insecure_registry_cidr_flag", "--insecure-registry=10.9.0.0/16 on the command line.",
      {"2.5": (FAIL, "RegistryConfig insecure: 10.9.0.0/16")}, args=("--insecure-registry=10.9.0.0/16",)),
    D("daemon_experimental", '"experimental": true.',
      {"2.19": (FAIL, "ExperimentalBuild=true")}, {"experimental": True}),
    D("daemon_log_level_debug", '"log-level": "debug".',
      {"2.3": (FAIL, "daemon.json log-level=debug")}, {"log-level": "debug"}),
    D("daemon_no_default_ulimits", "No default-ulimits.",
      {"2.9": (FAIL, "default-ulimits not set")}, {"default-ulimits": DROP}),
    D("daemon_tcp_without_tls", "-H tcp://127.0.0.1:PORT without any TLS (loopback only).",
      {"2.8": (FAIL, "tlsverify not set while listening on tcp://127.0.0.1:")}, args=("--host", TCP)),
    D("daemon_tcp_tls_without_verify",
      "-H tcp://127.0.0.1:PORT with --tls and a server certificate but no --tlsverify: dockerd "
      "20.10+ still requires client certificates (only --tlsverify=false turns that off).",
      {"2.8": (PASS, "dockerd --tls=true, tlsverify unset (verified by default since 20.10) on tcp://127.0.0.1:")},
      tls_without_verify=True),
    D("daemon_tcp_tls_verify_off",
      "-H tcp://127.0.0.1:PORT with --tls and --tlsverify=false (any client gets in).",
      {"2.8": (FAIL, "dockerd --tlsverify=false while listening on tcp://127.0.0.1:")},
      args=("--tlsverify=false",), tls_without_verify=True),
    D("daemon_config_file_world_writable",
      "The daemon's --config-file is mode 0666 (anyone can reconfigure dockerd). The probe "
      "reads and stats that file; 3.18 must judge it.",
      {}, config_mode=0o666,
      host_expect=lambda d: {"3.18": (FAIL, f"{d.config_path} mode=0666"),
                             "3.17": (PASS, f"{d.config_path} owner=root:root")}),
]
DAEMON_CONTAINERS: dict[str, dict[str, Mapping[str, Any]]] = {
    "daemon_baseline": {"sc-inherits-nnp": INHERITS_NNP, "sc-hardened": HARDENED_ON_DAEMON,
                        "sc-hardened-created": {**HARDENED_ON_DAEMON, "start": False}},
    "daemon_no_new_privileges_off": {"sc-inherits-nnp": INHERITS_NNP},
}


def _daemon_run(name: str, scn: DaemonScenario | None) -> DaemonRun:
    changes = scn.json_changes if scn else {}
    args = [a.replace(TCP, f"tcp://127.0.0.1:{free_port()}") for a in (scn.args if scn else ())]
    daemon = PrivateDaemon(daemon_json=merge(BASE_JSON, changes), extra_args=args, prefix="sc")
    if scn is not None and scn.config_mode is not None:
        assert daemon.config_path is not None
        os.chmod(daemon.config_path, scn.config_mode)
    if scn is not None and scn.tls_without_verify:
        files = make_bundle().write_server_files(daemon.dir)
        # Without --tlsverify, dockerd 20.10+ still requires and verifies client certificates
        # against --tlscacert (test_it_refuses_a_client_without_a_certificate_under_tls_alone).
        daemon.extra_args += ["--host", f"tcp://127.0.0.1:{free_port()}", "--tls",
                              *(f"--{flag}={path}" for flag, path in sorted(files.items()))]
    return DaemonRun(name=name, daemon=daemon, containers=DAEMON_CONTAINERS.get(name, {}))


@pytest.fixture(scope="module")
def daemons():
    from tests.support.docker_fixtures import require_docker

    require_docker()
    runs = [_daemon_run("daemon_baseline", None), *(_daemon_run(s.name, s) for s in DAEMON_SCENARIOS)]
    try:
        bring_up_all(runs)
        yield {run.name: run for run in runs}
    finally:
        stop_all(runs)


def test_it_passes_the_hardened_baseline_daemon(daemons):
    assert_expected(daemons["daemon_baseline"].daemon_verdicts(), BASELINE_DAEMON, "baseline daemon")


def _daemon_flag_test(scn: DaemonScenario):
    def test(daemons):
        run = daemons[scn.name]
        assert_expected(run.daemon_verdicts(), scn.expect, scn.name)
        if scn.host_expect is not None:
            assert_expected(run.host_verdicts(), scn.host_expect(run.daemon), f"{scn.name} (host)")

    return _named_test(scn.name, scn.why, scn.bug, test)


for _dscn in DAEMON_SCENARIOS:
    globals()[f"test_it_flags_{_dscn.name}"] = _daemon_flag_test(_dscn)


@pytest.mark.parametrize("scn", DAEMON_SCENARIOS, ids=lambda s: s.name)
def test_it_keeps_unrelated_daemon_ids_at_baseline(daemons, scn):
    others = DAEMON_IDS - set(scn.expect)
    base = daemons["daemon_baseline"].daemon_verdicts()
    assert statuses(daemons[scn.name].daemon_verdicts(), others) == statuses(base, others)


@pytest.mark.parametrize("name, lets_in", [("daemon_tcp_tls_without_verify", False),
                                           ("daemon_tcp_tls_verify_off", True)])
def test_it_refuses_a_client_without_a_certificate_under_tls_alone(daemons, name, lets_in):
    """What 2.8 says of --tls without --tlsverify is what dockerd does: a TLS client with no
    certificate of its own is refused, unless --tlsverify=false (then it is in)."""
    import socket
    import ssl

    args = daemons[name].daemon.extra_args
    port = int(next(a for a in reversed(args) if a.startswith("tcp://")).rsplit(":", 1)[1])
    ca = next(a.split("=", 1)[1] for a in args if a.startswith("--tlscacert="))
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            answer = tls.recv(100)
    except (ssl.SSLError, ConnectionResetError):
        answer = b""
    assert answer.startswith(b"HTTP/1.1 200") is lets_in, answer


def test_it_flags_daemon_tcp_with_tlsverify_as_passing(dockerd_tls):
    """dockerd_tls listens on tcp://127.0.0.1 with --tlsverify and its CA/cert/key: 2.8 passes.

    Collected over that very TLS listener, with the probe (busybox imported for it, removed after).
    """
    client = dockerd_tls.daemon.client()
    try:
        try:
            client.api.inspect_image(BASE_IMAGE)
            imported = False
        except docker.errors.ImageNotFound:
            make_base_image(client)
            imported = True
        try:
            snapshot, findings = collect_and_check(dockerd_tls.host_config(), probe_image=BASE_IMAGE)
        finally:
            if imported:
                client.api.remove_image(BASE_IMAGE, force=True)
    finally:
        client.close()
    found = verdicts(findings, "daemon", "daemon")
    assert_expected(found, {"2.8": (PASS, f"dockerd --tlsverify=true on {dockerd_tls.url}")}, "tls daemon")


def test_it_lets_containers_inherit_no_new_privileges_from_the_daemon(daemons):
    """5.26 follows the daemon default: inherited on the baseline daemon, failed when it is off."""
    on = daemons["daemon_baseline"].container_verdicts("sc-inherits-nnp")
    off = daemons["daemon_no_new_privileges_off"].container_verdicts("sc-inherits-nnp")
    assert set(daemons["daemon_baseline"].container_errors.values()) == {None}
    assert_expected(on, {"5.26": (PASS, "inherited from daemon.json no-new-privileges=true")}, "on")
    assert_expected(off, {"5.26": (FAIL, "the daemon default is off")}, "off")


def test_it_does_not_blame_containers_for_the_daemons_default_ulimits(daemons):
    """No --ulimit given: the limits Docker copied from default-ulimits are not an override."""
    run = daemons["daemon_baseline"]
    for name in ("sc-hardened", "sc-hardened-created"):
        assert_expected(run.container_verdicts(name),
                        {"5.19": (PASS, "HostConfig.Ulimits=nofile=4096:4096 equal the daemon's default-ulimits")}, name)


def test_it_sees_docker_merge_the_daemons_default_ulimits_into_every_container(daemons):
    """Why 5.19 needs the daemon's defaults: no --ulimit was given to either container, yet both
    the started and the never-started one show the daemon's default-ulimits in
    HostConfig.Ulimits (Docker 20.10 merges them at create)."""
    run = daemons["daemon_baseline"]
    run.require()
    inspect = {c["name"]: c["inspect"] for c in run.snapshot["containers"]}
    for name in ("sc-hardened", "sc-hardened-created"):
        assert inspect[name]["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Hard": 4096, "Soft": 4096}], name


def test_it_judges_icc_on_the_real_evidence_when_a_bridge_exists(daemons):
    """icc=false cannot start here (it needs iptables) and --bridge=none makes 2.2 moot, so
    the real probe evidence of two daemons is re-scored with ``--bridge=none`` taken out of
    the recorded command line: explicit icc=true and unset icc (default true) both fail."""
    spec = registry.get("daemon.icc_disabled")

    def without_bridge(run: DaemonRun) -> dict[str, Verdict]:
        snap = copy.deepcopy(run.snapshot)
        snap["host"]["dockerd_cmdline"] = [a for a in snap["host"]["dockerd_cmdline"] if a != "--bridge=none"]
        return verdicts(run_checks(snap, [spec]), "daemon", "daemon")

    assert_expected(without_bridge(daemons["daemon_icc_true"]), {"2.2": (FAIL, "daemon.json icc=true")}, "icc=true")
    assert_expected(without_bridge(daemons["daemon_baseline"]), {"2.2": (FAIL, "icc not set (default true)")}, "unset")


def test_it_never_passes_probe_settings_without_the_probe(daemons):
    """The baseline daemon's evidence without host evidence (what --no-probe collects)."""
    run = daemons["daemon_baseline"]
    run.require()
    snap = dict(run.snapshot, host=None)
    findings = run_checks(snap)
    found = verdicts(findings, "daemon", "daemon")
    for cid in ("2.2", "2.3", "2.8", "2.9", "2.11", "2.15", "2.17"):
        assert (found[cid].status, found[cid].detail) == (Status.NOT_ASSESSED, "host probe not enabled"), cid
    inherits = verdicts(findings, "container", "sc-inherits-nnp")["5.26"]
    assert inherits.status == FAIL and "no host probe" in inherits.detail
    ulimits = verdicts(findings, "container", "sc-hardened")["5.19"]
    assert ulimits.status == FAIL and "unknown without the host probe" in ulimits.detail


# =========================================================================== Django pipeline

PIPELINE_CONTAINERS = ("baseline", "pid_host", "docker_sock", "no_no_new_privileges", "privileged_port")
PIPELINE_IMAGES = ("hardened", "nouser", "add")


@pytest.mark.django_db(transaction=True)
def test_it_gives_the_same_verdicts_through_the_django_pipeline(dockerd, matrix, settings):
    """addhost + scan --json (PostgreSQL) agree with the pure path on status and controls."""
    settings.POSTURE_PROBE_IMAGE = BASE_IMAGE
    call_command("addhost", "sc-matrix", dockerd.url, "--probe", stdout=io.StringIO())
    out = io.StringIO()
    try:
        call_command("scan", "sc-matrix", "--json", stdout=out, stderr=io.StringIO())
    except SystemExit as exc:  # the command exits 1 on a failed scan
        pytest.fail(f"scan exited {exc.code}: {out.getvalue()[:500]}")
    doc = json.loads(out.getvalue())
    assert doc["state"] == "succeeded" and doc["evidence"]["host_probe"] is True
    results = {(r["check"], r["resource_type"], r["resource"]): r for r in doc["results"]}
    wanted = {("container", f"sc-{n}") for n in PIPELINE_CONTAINERS}
    wanted |= {("image", image_tag(k)) for k in PIPELINE_IMAGES} | {("daemon", "daemon")}
    compared = 0
    for f in matrix.findings:
        if (f.resource_type, f.resource) not in wanted or not registry.controls_of(registry.get(f.check_id)).get(CIS):
            continue
        got = results.get((f.check_id, f.resource_type, f.resource))
        assert got is not None, (f.check_id, f.resource)
        controls = registry.controls_of(registry.get(f.check_id), CATALOGS)
        assert got["status"] == str(f.status), (f.check_id, f.resource, got["detail"], f.detail)
        assert got["controls"][CIS] == list(controls[CIS]), f.check_id
        assert got["controls"].get(CIS_160, []) == list(controls.get(CIS_160, ())), f.check_id
        compared += 1
    assert compared >= len(PIPELINE_CONTAINERS) * len(CONTAINER_IDS)

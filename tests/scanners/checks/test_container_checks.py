"""Container checks (CIS 4.1 and section 5) on containers created by a real daemon (record.py):

rec-default     docker run defaults, -p 80:80 -p 0.0.0.0:8443:443, running
rec-hardened    user 65534, read-only, cap-drop ALL + NET_BIND_SERVICE, memory, cpus, pids,
                on-failure:3, no-new-privileges, user-defined network, 127.0.0.1 port,
                /etc/localtime:ro, healthcheck (healthy), running
rec-hostns      pid/ipc/uts/net/userns host, SYS_ADMIN + NET_ADMIN, always, seccomp=unconfined,
                running
rec-mounts      /etc rw, /usr ro, docker.sock, rshared mount, a device, a ulimit, cgroup parent,
                unless-stopped, no-new-privileges:false, --no-healthcheck, created
rec-privileged  --privileged, created (cannot start on this machine)
rec-stopped     user 0, on-failure (unlimited), 127.0.0.1:2222, created
rec-sshd        main process /usr/sbin/sshd, created
rec-publishall  -P with an exposed port, created
"""

from __future__ import annotations

import pytest

from scanners.checks import network as n
from scanners.checks import resources as r
from scanners.checks import runtime as rt
from scanners.checks.base import Status

from .helpers import container, evaluate, snapshot

PASS, FAIL, NA = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE


def _with_security_options(*opts: str) -> dict:
    snap = snapshot()
    snap["daemon"]["info"]["SecurityOptions"] += list(opts)
    return snap


# --- who runs, and how it is confined (runtime.py) --------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "Config.User=65534:65534")),
    ("rec-mounts", (FAIL, "Config.User=root")),  # the image's USER root, as Docker merged it
    ("rec-stopped", (FAIL, "Config.User=0")),
    ("rec-default", (FAIL, 'Config.User="" (defaults to root)')),
])
def test_it_checks_the_effective_user(name, expected):
    assert evaluate(rt.user_not_root, snapshot(), name) == expected


def test_it_skips_apparmor_on_hosts_without_it():
    assert evaluate(rt.apparmor_profile, snapshot(), "rec-default") == (
        NA, "host has no AppArmor (SecurityOptions lacks name=apparmor)")


def test_it_checks_apparmor_profiles_on_apparmor_hosts():
    snap = _with_security_options("name=apparmor")
    container(snap, "rec-default")["AppArmorProfile"] = "docker-default"
    container(snap, "rec-hostns")["AppArmorProfile"] = "unconfined"
    assert evaluate(rt.apparmor_profile, snap, "rec-default") == (PASS, "AppArmorProfile=docker-default")
    assert evaluate(rt.apparmor_profile, snap, "rec-hostns") == (FAIL, "AppArmorProfile=unconfined")
    assert evaluate(rt.apparmor_profile, snap, "rec-privileged")[0] is FAIL
    assert evaluate(rt.apparmor_profile, snap, "rec-hardened") == (FAIL, 'AppArmorProfile="" on a running container')
    assert evaluate(rt.apparmor_profile, snap, "rec-stopped")[0] is PASS  # set at first start


def test_it_checks_selinux_labels_on_selinux_hosts():
    assert evaluate(rt.selinux_options, snapshot(), "rec-default")[0] is NA
    snap = _with_security_options("name=selinux")
    container(snap, "rec-default")["ProcessLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    assert evaluate(rt.selinux_options, snap, "rec-default")[0] is PASS
    # Docker itself adds label=disable to privileged and host-namespace containers (recorded).
    assert evaluate(rt.selinux_options, snap, "rec-hostns") == (FAIL, "SecurityOpt has label=disable")
    assert evaluate(rt.selinux_options, snap, "rec-privileged") == (FAIL, "SecurityOpt has label=disable")
    assert evaluate(rt.selinux_options, snap, "rec-stopped") == (FAIL, 'ProcessLabel=""')


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "HostConfig.CapAdd=NET_BIND_SERVICE (within defaults), CapDrop=ALL")),
    ("rec-default", (PASS, "HostConfig.CapAdd=none (within defaults), CapDrop=none")),
    ("rec-hostns", (FAIL, "HostConfig.CapAdd=NET_ADMIN,SYS_ADMIN")),
    ("rec-privileged", (FAIL, "HostConfig.Privileged=true grants every capability")),
])
def test_it_checks_added_capabilities(name, expected):
    assert evaluate(rt.capabilities_restricted, snapshot(), name) == expected


def test_it_reads_capabilities_with_the_cap_prefix_and_all():
    snap = snapshot()
    container(snap, "rec-default")["HostConfig"]["CapAdd"] = ["cap_chown", "ALL"]
    assert evaluate(rt.capabilities_restricted, snap, "rec-default") == (FAIL, "HostConfig.CapAdd=ALL")


@pytest.mark.parametrize(("name", "status"), [("rec-privileged", FAIL), ("rec-hostns", PASS)])
def test_it_checks_privileged_mode(name, status):
    assert evaluate(rt.privileged_disabled, snapshot(), name)[0] is status


@pytest.mark.parametrize(("check_fn", "field"), [
    (rt.host_pid_not_shared, "PidMode"), (rt.host_ipc_not_shared, "IpcMode"),
    (rt.host_uts_not_shared, "UTSMode")])
def test_it_checks_host_namespaces(check_fn, field):
    assert evaluate(check_fn, snapshot(), "rec-hostns") == (FAIL, f"HostConfig.{field}=host")
    assert evaluate(check_fn, snapshot(), "rec-hardened")[0] is PASS


@pytest.mark.parametrize(("check_fn", "field"), [
    (rt.host_pid_not_shared, "PidMode"), (rt.host_ipc_not_shared, "IpcMode"),
    (n.host_network_not_shared, "NetworkMode")])
def test_it_follows_a_namespace_joined_from_another_container(check_fn, field):
    snap = snapshot()
    joiner = container(snap, "rec-hardened")
    joiner["HostConfig"][field] = "container:" + next(c["id"] for c in snap["containers"] if c["name"] == "rec-hostns")[:12]
    host_side = container(snap, "rec-hostns")
    host_side["HostConfig"][field] = "host"
    status, detail = evaluate(check_fn, snap, "rec-hardened")
    assert status is FAIL and detail.endswith(f"-> rec-hostns: {field}=host")
    joiner["HostConfig"][field] = "container:gone"
    assert evaluate(check_fn, snap, "rec-hardened")[0] is Status.ERROR


def test_it_fails_a_host_user_namespace_whatever_the_daemon_does():
    # CIS's audit (and docker-bench) flag UsernsMode=host even without remapping on the daemon.
    assert evaluate(rt.host_userns_not_shared, snapshot(), "rec-hostns") == (
        FAIL, "HostConfig.UsernsMode=host; the daemon has no userns-remap (see 2.10)")
    snap = _with_security_options("name=userns")
    assert evaluate(rt.host_userns_not_shared, snap, "rec-hostns") == (FAIL, "HostConfig.UsernsMode=host")
    assert evaluate(rt.host_userns_not_shared, snap, "rec-default") == (PASS, 'HostConfig.UsernsMode=""')


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-default", (PASS, "daemon seccomp profile=default")),
    ("rec-hostns", (FAIL, "SecurityOpt has seccomp=unconfined")),
    ("rec-privileged", (FAIL, "HostConfig.Privileged=true runs without seccomp")),
])
def test_it_checks_seccomp(name, expected):
    assert evaluate(rt.seccomp_enabled, snapshot(), name) == expected


def test_it_reads_the_colon_spelling_of_seccomp():
    snap = snapshot()
    container(snap, "rec-default")["HostConfig"]["SecurityOpt"] = ["seccomp:unconfined"]
    assert evaluate(rt.seccomp_enabled, snap, "rec-default")[0] is FAIL


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "SecurityOpt has no-new-privileges")),
    ("rec-mounts", (FAIL, "SecurityOpt has no-new-privileges:false")),
    ("rec-default", (FAIL, "SecurityOpt lacks no-new-privileges (daemon default unknown: no host probe)")),
])
def test_it_checks_no_new_privileges(name, expected):
    assert evaluate(rt.no_new_privileges, snapshot(), name) == expected


def test_it_accepts_no_new_privileges_inherited_from_the_daemon():
    snap = snapshot(host="host-good.json")
    assert evaluate(rt.no_new_privileges, snap, "rec-default") == (
        PASS, "inherited from daemon.json no-new-privileges=true")
    snap = snapshot(host="host-bad.json")
    assert evaluate(rt.no_new_privileges, snap, "rec-default")[0] is FAIL


def test_it_accepts_the_true_spelling_of_no_new_privileges():
    snap = snapshot()
    container(snap, "rec-default")["HostConfig"]["SecurityOpt"] = ["no-new-privileges:true"]
    assert evaluate(rt.no_new_privileges, snap, "rec-default")[0] is PASS


# --- what it can reach (network.py) -------------------------------------------------------------

def test_it_fails_sensitive_host_directories_in_any_mode_and_paths_below_them_read_write():
    assert evaluate(n.sensitive_host_dirs_not_mounted, snapshot(), "rec-mounts") == (
        FAIL, "Mounts /etc -> /host/etc (rw); /usr -> /host/usr (ro)")


def test_it_allows_single_files_below_sensitive_directories_read_only():
    assert evaluate(n.sensitive_host_dirs_not_mounted, snapshot(), "rec-hardened") == (
        PASS, "no sensitive host directory among 1 bind mounts")  # /etc/localtime:ro


def test_it_fails_paths_below_sensitive_directories_read_write():
    snap = snapshot()
    container(snap, "rec-hardened")["Mounts"][0]["RW"] = True
    assert evaluate(n.sensitive_host_dirs_not_mounted, snap, "rec-hardened")[0] is FAIL


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-default", (FAIL, "PortBindings 80/tcp -> *:80")),
    ("rec-hardened", (PASS, "no published host port below 1024 (1 bindings)")),
    ("rec-hostns", (NA, "NetworkMode=host publishes no ports (see 5.10)")),
])
def test_it_checks_privileged_host_ports(name, expected):
    assert evaluate(n.privileged_ports_not_mapped, snapshot(), name) == expected


def test_it_judges_the_host_port_not_the_container_port():
    assert evaluate(n.privileged_ports_not_mapped, snapshot(), "rec-stopped")[0] is PASS  # 2222 -> 22


@pytest.mark.parametrize(("name", "status"), [
    ("rec-default", FAIL), ("rec-hardened", PASS), ("rec-stopped", PASS), ("rec-mounts", NA),
    ("rec-publishall", FAIL)])
def test_it_checks_published_ports_are_bound_to_an_address(name, status):
    assert evaluate(n.ports_bound_to_interface, snapshot(), name)[0] is status


def test_it_names_ports_bound_to_every_interface():
    assert evaluate(n.ports_bound_to_interface, snapshot(), "rec-default") == (
        FAIL, "PortBindings on every interface: 443/tcp -> 0.0.0.0:8443, 80/tcp -> *:80")


def test_it_checks_the_host_network():
    assert evaluate(n.host_network_not_shared, snapshot(), "rec-hostns") == (FAIL, "HostConfig.NetworkMode=host")
    assert evaluate(n.host_network_not_shared, snapshot(), "rec-hardened")[0] is PASS


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-mounts", (FAIL, "HostConfig.Devices /dev/null -> /dev/xnull (rwm)")),
    ("rec-privileged", (FAIL, "HostConfig.Privileged=true exposes every host device")),
    ("rec-default", (PASS, "HostConfig.Devices, DeviceRequests and DeviceCgroupRules are empty")),
])
def test_it_checks_host_devices(name, expected):
    assert evaluate(n.host_devices_not_exposed, snapshot(), name) == expected


def test_it_checks_mount_propagation():
    assert evaluate(n.mount_propagation_private, snapshot(), "rec-mounts") == (
        FAIL, "Mounts /tmp/posture-rec-scratch/shared -> /shared Propagation=rshared")
    assert evaluate(n.mount_propagation_private, snapshot(), "rec-hardened")[0] is PASS


def _with_bridge_network(snap: dict, network_id: str = "f00dfeed" * 8) -> dict:
    """The recording daemon ran --bridge=none; give its default-mode containers a real bridge."""
    for c in snap["containers"]:
        entry = c["inspect"]["NetworkSettings"]["Networks"].get("bridge")
        if entry is not None:
            entry["NetworkID"] = network_id
    return snap


@pytest.mark.parametrize(("name", "status"), [
    ("rec-default", FAIL), ("rec-stopped", FAIL), ("rec-hardened", PASS), ("rec-hostns", NA)])
def test_it_checks_the_default_bridge(name, status):
    assert evaluate(n.default_bridge_unused, _with_bridge_network(snapshot()), name)[0] is status


@pytest.mark.parametrize("name", ["rec-default", "rec-stopped"])
def test_it_passes_the_default_network_mode_when_the_daemon_has_no_bridge(name):
    # Recorded on dockerd --bridge=none: inspect lists "bridge" with an empty NetworkID.
    status, detail = evaluate(n.default_bridge_unused, snapshot(), name)
    assert status is PASS and "the daemon has no default bridge" in detail


def test_it_fails_a_stopped_container_when_nothing_shows_the_bridge_is_missing():
    snap = snapshot()
    snap["containers"] = [c for c in snap["containers"] if c["name"] == "rec-stopped"]
    assert evaluate(n.default_bridge_unused, snap, "rec-stopped")[0] is FAIL


def test_it_finds_the_docker_socket_by_name_and_by_the_daemons_socket_path():
    assert evaluate(n.docker_socket_not_mounted, snapshot(), "rec-mounts") == (
        FAIL, "Mounts /tmp/h2d/docker.sock -> /var/run/docker.sock")
    assert evaluate(n.docker_socket_not_mounted, snapshot(), "rec-hardened")[0] is PASS
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"]["hosts"] = ["unix:///srv/engine.api"]
    mount = container(snap, "rec-hardened")["Mounts"][0]
    mount.update(Source="/srv/engine.api", Destination="/engine")
    assert evaluate(n.docker_socket_not_mounted, snap, "rec-hardened")[0] is FAIL


@pytest.mark.parametrize(("source", "status"), [
    ("/srv", FAIL),  # the folder holding the daemon's socket gives the socket too
    ("/", FAIL),
    ("/srv/engine.api", FAIL),
    ("/srv2", PASS),  # a sibling that merely shares a prefix
    ("/srv/data", PASS),
])
def test_it_finds_the_docker_socket_through_a_mounted_parent_directory(source, status):
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"]["hosts"] = ["unix:///srv/engine.api"]
    container(snap, "rec-hardened")["Mounts"][0].update(Source=source, Destination="/mnt/x")
    assert evaluate(n.docker_socket_not_mounted, snap, "rec-hardened")[0] is status


# --- limits, lifecycle, health (resources.py) ---------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "HostConfig.Memory=67108864")),
    ("rec-default", (FAIL, "HostConfig.Memory=0 (unlimited)")),
])
def test_it_checks_memory_limits(name, expected):
    assert evaluate(r.memory_limited, snapshot(), name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "HostConfig.CpuShares=512")),
    ("rec-default", (FAIL, "HostConfig.CpuShares=0 (default), no NanoCpus or CpuQuota")),
    ("rec-mounts", (FAIL, "HostConfig.CpuShares=1024 (default), no NanoCpus or CpuQuota")),
])
def test_it_checks_cpu_priority(name, expected):
    assert evaluate(r.cpu_priority_set, snapshot(), name) == expected


def test_it_accepts_a_cpu_cap_as_cpu_priority():
    snap = snapshot()
    container(snap, "rec-default")["HostConfig"]["NanoCpus"] = 500_000_000
    assert evaluate(r.cpu_priority_set, snap, "rec-default") == (PASS, "HostConfig.NanoCpus=500000000")


def test_it_checks_the_read_only_root_filesystem():
    assert evaluate(r.read_only_rootfs, snapshot(), "rec-hardened") == (PASS, "HostConfig.ReadonlyRootfs=true")
    assert evaluate(r.read_only_rootfs, snapshot(), "rec-default")[0] is FAIL


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "RestartPolicy=on-failure:3")),
    ("rec-default", (PASS, "RestartPolicy.Name=no (never restarted)")),
    ("rec-hostns", (FAIL, "RestartPolicy.Name=always")),
    ("rec-mounts", (FAIL, "RestartPolicy.Name=unless-stopped")),
    ("rec-stopped", (FAIL, "RestartPolicy=on-failure:0 (0 retries forever)")),
])
def test_it_checks_the_restart_policy(name, expected):
    assert evaluate(r.restart_policy_bounded, snapshot(), name) == expected


def test_it_fails_more_than_five_restarts():
    snap = snapshot()
    container(snap, "rec-hardened")["HostConfig"]["RestartPolicy"]["MaximumRetryCount"] = 6
    assert evaluate(r.restart_policy_bounded, snap, "rec-hardened")[0] is FAIL


def test_it_checks_ulimit_overrides():
    assert evaluate(r.ulimits_default, snapshot(), "rec-mounts") == (
        FAIL, "HostConfig.Ulimits=nofile=1024:2048 (daemon default-ulimits unknown without the host probe)")
    assert evaluate(r.ulimits_default, snapshot(), "rec-default")[0] is PASS


@pytest.mark.parametrize(("defaults", "expected"), [
    # dockerd copies its default-ulimits into every started container: equal is not an override.
    ({"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}, PASS),
    ({"nofile": {"Name": "nofile", "Soft": 64000, "Hard": 64000}}, FAIL),
    (None, FAIL),
])
def test_it_does_not_count_the_daemons_default_ulimits_as_overrides(defaults, expected):
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {**(snap["host"]["daemon_json"] or {}), "default-ulimits": defaults}
    if defaults is None:
        del snap["host"]["daemon_json"]["default-ulimits"]
    status, detail = evaluate(r.ulimits_default, snap, "rec-mounts")
    assert status is expected and "nofile=1024:2048" in detail


def test_it_checks_the_cmdline_form_of_default_ulimits():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {k: v for k, v in (snap["host"]["daemon_json"] or {}).items() if k != "default-ulimits"}
    snap["host"]["dockerd_cmdline"] = [*snap["host"]["dockerd_cmdline"], "--default-ulimit", "nofile=1024:2048"]
    assert evaluate(r.ulimits_default, snap, "rec-mounts")[0] is PASS


def test_it_checks_the_cgroup_parent():
    assert evaluate(r.cgroup_parent_default, snapshot(), "rec-mounts") == (FAIL, "HostConfig.CgroupParent=/rec-parent")
    assert evaluate(r.cgroup_parent_default, snapshot(), "rec-default")[0] is PASS


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "State.Health.Status=healthy")),
    ("rec-default", (FAIL, "State.Health absent: Config.Healthcheck not set")),
    ("rec-mounts", (NA, "container not running (State.Status=created)")),
])
def test_it_checks_health_at_runtime(name, expected):
    assert evaluate(r.health_reported, snapshot(), name) == expected


def test_it_fails_a_running_container_with_healthcheck_none():
    snap = snapshot()
    c = container(snap, "rec-mounts")
    c["State"].update(Running=True, Status="running")
    assert evaluate(r.health_reported, snap, "rec-mounts") == (
        FAIL, "State.Health absent: Config.Healthcheck.Test=[NONE] (HEALTHCHECK NONE)")


@pytest.mark.parametrize(("name", "expected"), [
    ("rec-hardened", (PASS, "HostConfig.PidsLimit=100")),
    ("rec-default", (FAIL, "HostConfig.PidsLimit=null (unlimited)")),
    ("rec-hostns", (FAIL, "HostConfig.PidsLimit=null (unlimited)")),  # recorded from --pids-limit -1
])
def test_it_checks_the_pids_limit(name, expected):
    assert evaluate(r.pids_limited, snapshot(), name) == expected


@pytest.mark.parametrize("raw", [0, -1])
def test_it_treats_zero_and_minus_one_pids_limits_as_unlimited(raw):
    snap = snapshot()
    container(snap, "rec-default")["HostConfig"]["PidsLimit"] = raw
    assert evaluate(r.pids_limited, snap, "rec-default") == (FAIL, f"HostConfig.PidsLimit={raw} (unlimited)")


@pytest.mark.parametrize(("options", "status"), [
    ({"Driver": "local", "type": "none", "o": "bind", "device": "/etc"}, FAIL),  # a bind of /etc in disguise
    ({"Driver": "local", "type": "none", "o": "bind,ro", "device": "/srv/data"}, PASS),
    ({"Driver": "local", "type": "", "o": "", "device": ""}, PASS),  # a plain named volume
])
def test_it_sees_host_directories_behind_bind_backed_volumes(options, status):
    snap = snapshot()
    mount = container(snap, "rec-hardened")["Mounts"][0]
    mount.update(Type="volume", Name="cfg", Source="/var/lib/docker/volumes/cfg/_data", Destination="/cfg",
                 RW=True, VolumeOptions=options)
    assert evaluate(n.sensitive_host_dirs_not_mounted, snap, "rec-hardened")[0] is status


@pytest.mark.parametrize(("opts", "expected"), [
    (['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}'], FAIL),
    (['seccomp={"defaultAction":"SCMP_ACT_LOG"}'], FAIL),
    (['seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}'], PASS),
    (["seccomp:unconfined"], FAIL),  # the old colon form
    (["no-new-privileges:true"], PASS),
])
def test_it_reads_a_containers_inline_seccomp_profile(opts, expected):
    snap = snapshot()
    container(snap, "rec-hardened")["HostConfig"]["SecurityOpt"] = opts
    assert evaluate(rt.seccomp_enabled, snap, "rec-hardened")[0] is expected

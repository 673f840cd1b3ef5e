"""Daemon checks (CIS section 2, 1.2.2) on docker info recorded from real daemons.

snapshot.json: the default private daemon; daemon-variant.json: a daemon started with
--insecure-registry, --live-restore, --experimental, a custom seccomp profile and syslog logging;
host-good.json / host-bad.json: the probe's daemon.json and dockerd command line.
"""

from __future__ import annotations

import pytest

from scanners.checks import daemon as d
from scanners.checks.base import Status
from scanners.checks.context import parse_dockerd_cmdline

from .helpers import evaluate, load, snapshot

PASS, FAIL, NA, MANUAL, ERROR = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.MANUAL,
                                 Status.ERROR)


def test_it_fails_rootful_daemons():
    assert evaluate(d.rootless_mode, snapshot()) == (
        FAIL, "SecurityOptions lacks name=rootless (daemon runs as root)")


def test_it_passes_rootless_daemons():
    snap = snapshot()
    snap["daemon"]["info"]["SecurityOptions"].append("name=rootless")
    assert evaluate(d.rootless_mode, snap)[0] is PASS


def test_it_errors_when_docker_info_is_missing():
    snap = snapshot()
    snap["daemon"]["info"] = {}
    assert evaluate(d.rootless_mode, snap) == (ERROR, "docker info not collected")


# --- settings only the probe can see -------------------------------------------------------

PROBE_ONLY = [d.icc_disabled, d.log_level_info, d.iptables_enabled, d.tcp_requires_tls,
              d.default_ulimits_set, d.default_cgroup_parent, d.no_new_privileges_default,
              d.userland_proxy_disabled]


@pytest.mark.parametrize("check_fn", PROBE_ONLY, ids=lambda f: f.spec.id)
def test_it_says_not_assessed_without_the_probe(check_fn):
    assert evaluate(check_fn, snapshot()) == (Status.NOT_ASSESSED, "host probe not enabled")


@pytest.mark.parametrize(("check_fn", "good", "bad"), [
    (d.icc_disabled, "daemon.json icc=false", "daemon.json icc=true"),
    (d.log_level_info, "daemon.json log-level=info", "daemon.json log-level=debug"),
    (d.iptables_enabled, "iptables not set (default true)", "daemon.json iptables=false"),
    (d.default_ulimits_set, "daemon.json default-ulimits sets nofile,nproc", "default-ulimits not set"),
    (d.default_cgroup_parent, "cgroup-parent not set (default)", "daemon.json cgroup-parent=/custom-parent"),
    (d.no_new_privileges_default, "daemon.json no-new-privileges=true",
     "no-new-privileges not set (default false)"),
    (d.userland_proxy_disabled, "daemon.json userland-proxy=false", "daemon.json userland-proxy=true"),
], ids=lambda v: getattr(getattr(v, "spec", None), "id", None))
def test_it_decides_probe_settings(check_fn, good, bad):
    assert evaluate(check_fn, snapshot(host="host-good.json")) == (PASS, good)
    assert evaluate(check_fn, snapshot(host="host-bad.json")) == (FAIL, bad)


def test_it_reads_settings_from_the_dockerd_command_line():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {}
    snap["host"]["dockerd_cmdline"] = ["dockerd", "--icc=false", "--userland-proxy=false",
                                       "--default-ulimit", "nofile=1024:2048", "--no-new-privileges"]
    assert evaluate(d.icc_disabled, snap) == (PASS, "dockerd --icc=false")
    assert evaluate(d.userland_proxy_disabled, snap) == (PASS, "dockerd --userland-proxy=false")
    assert evaluate(d.default_ulimits_set, snap) == (PASS, "dockerd --default-ulimit sets nofile")
    assert evaluate(d.no_new_privileges_default, snap) == (PASS, "dockerd --no-new-privileges=true")


@pytest.mark.parametrize(("argv", "check_fn", "expected"), [
    # a boolean flag never takes the next word: --icc=false after --ipv6 is still read
    (["--ipv6", "--icc=false"], d.icc_disabled, (PASS, "dockerd --icc=false")),
    (["--cri-containerd", "--userland-proxy=false"], d.userland_proxy_disabled,
     (PASS, "dockerd --userland-proxy=false")),
    # combined short flags: -D is a boolean, -l takes the next word
    (["-Dl", "debug"], d.log_level_info, (FAIL, "dockerd --log-level=debug")),
    (["-Dlwarn"], d.log_level_info, (FAIL, "dockerd --log-level=warn")),
], ids=["ipv6-then-icc", "cri-then-proxy", "Dl-debug", "Dlwarn"])
def test_it_reads_the_command_line_as_dockerd_does(argv, check_fn, expected):
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {}
    snap["host"]["dockerd_cmdline"] = ["dockerd", *argv]
    assert evaluate(check_fn, snap) == expected


def test_it_uses_the_recorded_variant_command_line():
    snap = snapshot(host="host-good.json", daemon="daemon-variant.json")
    snap["host"]["daemon_json"] = {}
    snap["host"]["dockerd_cmdline"] = load("daemon-variant.json")["dockerd_cmdline"]
    assert evaluate(d.icc_disabled, snap)[0] is NA  # --bridge=none: no default bridge
    assert evaluate(d.iptables_enabled, snap) == (FAIL, "dockerd --iptables=false")
    assert evaluate(d.no_new_privileges_default, snap)[0] is PASS


def test_it_errors_when_daemon_json_is_unreadable():
    snap = snapshot(host="host-good.json")
    snap["host"].update(daemon_json=None, daemon_json_error="not valid JSON: line 1")
    assert evaluate(d.icc_disabled, snap) == (ERROR, "daemon.json unreadable: not valid JSON: line 1")


def test_it_errors_when_the_command_line_was_not_collected():
    snap = snapshot(host="host-good.json")
    snap["host"].update(daemon_json={}, dockerd_cmdline=None)
    status, detail = evaluate(d.userland_proxy_disabled, snap)
    assert status is ERROR and "command line not collected" in detail


def test_it_does_not_need_the_command_line_for_settings_in_daemon_json():
    snap = snapshot(host="host-good.json")
    snap["host"]["dockerd_cmdline"] = None
    assert evaluate(d.icc_disabled, snap) == (PASS, "daemon.json icc=false")


def test_it_fails_the_log_level_on_debug_mode_from_docker_info_alone():
    snap = snapshot()
    snap["daemon"]["info"]["Debug"] = True
    assert evaluate(d.log_level_info, snap) == (FAIL, "docker info Debug=true")


def test_it_passes_an_unset_log_level():
    snap = snapshot(host="host-good.json")
    del snap["host"]["daemon_json"]["log-level"]
    assert evaluate(d.log_level_info, snap) == (PASS, "log-level not set (default info)")


def test_it_fails_icc_when_unset():
    snap = snapshot(host="host-good.json")
    del snap["host"]["daemon_json"]["icc"]
    assert evaluate(d.icc_disabled, snap) == (FAIL, "icc not set (default true)")


# --- TLS on TCP ------------------------------------------------------------------------------

def test_it_passes_tcp_with_tlsverify():
    assert evaluate(d.tcp_requires_tls, snapshot(host="host-good.json")) == (
        PASS, "daemon.json tlsverify=true on tcp://10.0.0.5:2376")


def test_it_passes_tcp_with_tls_and_tlsverify_unset_on_a_dockerd_that_verifies_by_default():
    """dockerd 20.10+ requires client certificates when tls is on unless tlsverify=false
    (moby cmd/dockerd newAPIServerTLSConfig; a real 20.10.24 refuses a client without one:
    tests/integration/test_scenarios.py)."""
    assert evaluate(d.tcp_requires_tls, snapshot(host="host-bad.json")) == (
        PASS, "dockerd --tls=true, tlsverify unset (verified by default since 20.10) on tcp://0.0.0.0:2375")


def test_it_passes_tls_true_in_daemon_json_on_a_current_engine():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {"hosts": ["tcp://0.0.0.0:2376"], "tls": True, "tlscacert": "/c", "tlscert": "/p",
                                   "tlskey": "/k"}
    snap["daemon"]["version"]["Version"] = "27.3.1"
    assert evaluate(d.tcp_requires_tls, snap) == (
        PASS, "daemon.json tls=true, tlsverify unset (verified by default since 20.10) on tcp://0.0.0.0:2376")


def test_it_fails_tls_without_tlsverify_on_an_engine_older_than_20_10():
    snap = snapshot(host="host-bad.json")
    snap["daemon"]["version"]["Version"] = "19.03.15"
    assert evaluate(d.tcp_requires_tls, snap) == (
        FAIL, "tls without tlsverify while listening on tcp://0.0.0.0:2375 "
              "(engine 19.03.15: client verification needs 20.10 or later)")


def test_it_fails_tls_with_verification_turned_off():
    snap = snapshot(host="host-bad.json")
    snap["host"]["dockerd_cmdline"] = [*snap["host"]["dockerd_cmdline"], "--tlsverify=false"]
    assert evaluate(d.tcp_requires_tls, snap) == (
        FAIL, "dockerd --tlsverify=false while listening on tcp://0.0.0.0:2375")


def test_it_fails_plain_tcp():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {"hosts": ["tcp://0.0.0.0:2375"]}
    assert evaluate(d.tcp_requires_tls, snap)[0] is FAIL


def test_it_says_tls_does_not_apply_without_a_tcp_listener():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"] = {}
    snap["host"]["dockerd_cmdline"] = ["/usr/bin/dockerd", "-H", "fd://"]
    assert evaluate(d.tcp_requires_tls, snap) == (NA, "no tcp:// listener (hosts=fd://)")


# --- docker info -----------------------------------------------------------------------------

def test_it_passes_only_loopback_insecure_registries():
    assert evaluate(d.no_insecure_registries, snapshot()) == (
        PASS, "RegistryConfig lists only the loopback defaults as insecure")


def test_it_fails_insecure_registries_by_cidr_and_name():
    assert evaluate(d.no_insecure_registries, snapshot(daemon="daemon-variant.json")) == (
        FAIL, "RegistryConfig insecure: 10.1.0.0/16, registry.internal:5000")


@pytest.mark.parametrize(("check_fn", "driver"), [
    (d.storage_driver_not_aufs, "aufs"), (d.storage_driver_not_devicemapper, "devicemapper")])
def test_it_fails_deprecated_storage_drivers(check_fn, driver):
    assert evaluate(check_fn, snapshot()) == (PASS, "Driver=overlay2")
    snap = snapshot()
    snap["daemon"]["info"]["Driver"] = driver
    assert evaluate(check_fn, snap) == (FAIL, f"Driver={driver}")


def test_it_checks_userns_remap_in_security_options():
    assert evaluate(d.userns_remap_enabled, snapshot()) == (FAIL, "SecurityOptions lacks name=userns")
    snap = snapshot()
    snap["daemon"]["info"]["SecurityOptions"].append("name=userns")
    assert evaluate(d.userns_remap_enabled, snap) == (PASS, "SecurityOptions has name=userns")


def test_it_skips_base_device_size_off_devicemapper():
    assert evaluate(d.base_device_size_default, snapshot())[0] is NA


def test_it_fails_a_changed_devicemapper_base_size():
    snap = snapshot(host="host-bad.json")
    snap["daemon"]["info"]["Driver"] = "devicemapper"
    assert evaluate(d.base_device_size_default, snap) == (FAIL, "daemon.json storage-opts: dm.basesize=20G")
    snap = snapshot(host="host-good.json")
    snap["daemon"]["info"]["Driver"] = "devicemapper"
    assert evaluate(d.base_device_size_default, snap) == (PASS, "storage-opts has no dm.basesize")


def test_it_checks_authorization_plugins():
    assert evaluate(d.authz_plugin_enabled, snapshot()) == (FAIL, "Plugins.Authorization is empty")
    snap = snapshot()
    snap["daemon"]["info"]["Plugins"]["Authorization"] = ["opa-docker-authz"]
    assert evaluate(d.authz_plugin_enabled, snap) == (PASS, "Plugins.Authorization=opa-docker-authz")


def test_it_checks_the_logging_driver():
    assert evaluate(d.remote_logging, snapshot()) == (FAIL, "LoggingDriver=json-file keeps logs on the host")
    assert evaluate(d.remote_logging, snapshot(daemon="daemon-variant.json")) == (PASS, "LoggingDriver=syslog")


def test_it_checks_live_restore():
    assert evaluate(d.live_restore_enabled, snapshot()) == (FAIL, "LiveRestoreEnabled=false")
    assert evaluate(d.live_restore_enabled, snapshot(daemon="daemon-variant.json")) == (
        PASS, "LiveRestoreEnabled=true")


def test_it_excuses_live_restore_on_active_swarm_nodes():
    assert evaluate(d.live_restore_enabled, snapshot(daemon="daemon-swarm.json"))[0] is NA


def test_it_passes_the_default_and_custom_seccomp_profiles():
    assert evaluate(d.seccomp_profile, snapshot()) == (
        PASS, "SecurityOptions name=seccomp,profile=default")
    status, detail = evaluate(d.seccomp_profile, snapshot(daemon="daemon-variant.json"))
    assert status is PASS and detail.endswith("profile=/tmp/posture-rec-variant/seccomp.json")


def test_it_fails_a_daemon_without_seccomp():
    snap = snapshot()
    snap["daemon"]["info"]["SecurityOptions"] = ["name=seccomp,profile=unconfined"]
    assert evaluate(d.seccomp_profile, snap)[0] is FAIL
    snap["daemon"]["info"]["SecurityOptions"] = []
    assert evaluate(d.seccomp_profile, snap) == (FAIL, "SecurityOptions lacks name=seccomp")


def test_it_checks_experimental_features():
    assert evaluate(d.experimental_disabled, snapshot()) == (PASS, "ExperimentalBuild=false")
    assert evaluate(d.experimental_disabled, snapshot(daemon="daemon-variant.json")) == (
        FAIL, "ExperimentalBuild=true")


def test_it_asks_to_attest_engine_versions_and_shows_them():
    status, detail = evaluate(d.engine_version_current, snapshot())
    assert status is MANUAL and detail.startswith("Engine 20.10.24") and "runc 1.1.5" in detail


# --- the command-line parser ----------------------------------------------------------------

def test_it_parses_dockerd_flag_forms():
    parsed = parse_dockerd_cmdline(["dockerd", "-H", "fd://", "-Hunix:///x.sock", "--host=tcp://a:1",
                                    "--icc=false", "--live-restore", "-D", "--log-level", "warn",
                                    "--insecure-registry", "r:5000", "--tlsverify", "--tlscacert", "/ca"])
    assert parsed["hosts"] == ["fd://", "unix:///x.sock", "tcp://a:1"]
    assert parsed["icc"] == ["false"] and parsed["live-restore"] == ["true"]
    assert parsed["debug"] == ["true"] and parsed["log-level"] == ["warn"]
    assert parsed["insecure-registries"] == ["r:5000"]
    assert parsed["tlsverify"] == ["true"] and parsed["tlscacert"] == ["/ca"]

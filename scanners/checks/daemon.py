"""Daemon checks: CIS section 2 (daemon configuration) and the engine version (1.2.2).

Evidence, best first: ``docker info`` decides what it exposes (storage driver, live restore,
logging driver, security options, authorization plugins, registries); settings that info does
not expose (icc, iptables, userland-proxy, no-new-privileges, default ulimits, cgroup-parent,
TCP hosts) come from the host probe's daemon.json and dockerd command line, so without the
probe they are ``not_assessed`` ("host probe not enabled"), never a guess.
"""

from __future__ import annotations

import re

from scanners.checks.base import (
    CIS,
    SOC2,
    Kind,
    Result,
    Scope,
    Severity,
    check,
    errored,
    failed,
    manual,
    not_applicable,
    passed,
)
from scanners.checks.context import PERMISSIVE_SECCOMP_ACTIONS, Context, as_bool, seccomp_default_action
from scanners.snapshot import KIND_DAEMON_INFO, KIND_DAEMON_VERSION, KIND_HOST
from scanners.text import one_line

INFO = (KIND_DAEMON_INFO,)
PROBE = (KIND_HOST, KIND_DAEMON_INFO)

#: Insecure-registry CIDRs the daemon always adds; they are loopback only.
_DEFAULT_INSECURE = frozenset({"127.0.0.0/8", "::1/128"})
#: Logging drivers that keep logs on the host (or nowhere).
_LOCAL_LOG_DRIVERS = frozenset({"json-file", "local", "none", ""})


def _no_info(ctx: Context, field: str) -> Result | None:
    if not ctx.info:
        return errored("docker info not collected")
    if field not in ctx.info:
        return errored(f"docker info has no {field}")
    return None


def _bool_setting(ctx: Context, key: str, *, default: bool, want: bool) -> Result:
    """A boolean dockerd setting (daemon.json or flag) that should be ``want``; unset means
    dockerd's ``default``. Unknown without the probe; a value that is not a boolean fails."""
    setting, unknown = ctx.setting_or_unknown(key)
    if unknown:
        return unknown
    if setting is None:
        return (passed if default is want else failed)(f"{key} not set (default {str(default).lower()})")
    return (passed if as_bool(setting.value) is want else failed)(setting.describe())


@check(
    id="daemon.rootless_mode",
    title="Daemon runs rootless",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.1",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Run dockerd rootless (dockerd-rootless-setuptool.sh install) where the "
    "workloads allow it; record an exception where they cannot.",
    requires=INFO,
)
def rootless_mode(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "SecurityOptions"):
        return miss
    if "rootless" in ctx.security_options:
        return passed("SecurityOptions has name=rootless")
    return failed("SecurityOptions lacks name=rootless (daemon runs as root)")


@check(
    id="daemon.icc_disabled",
    title="Containers on the default bridge cannot reach each other",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.2",), SOC2: ("CC6.1", "CC6.6")},
    remediation='Set "icc": false in /etc/docker/daemon.json (or dockerd --icc=false) and '
    "connect containers that must talk through user-defined networks.",
    requires=PROBE,
)
def icc_disabled(ctx: Context, _: Context) -> Result:
    bridge, unknown = ctx.setting_or_unknown("bridge")
    if unknown and ctx.host is None:
        return unknown
    if bridge is not None and str(bridge.value) == "none":
        return not_applicable(f"{bridge.describe()}: there is no default bridge")
    return _bool_setting(ctx, "icc", default=True, want=False)


@check(
    id="daemon.log_level_info",
    title="Daemon log level is info",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.3",), SOC2: ("CC7.2",)},
    remediation='Remove "debug" and set "log-level": "info" (or leave it unset) in daemon.json.',
    requires=PROBE,
)
def log_level_info(ctx: Context, _: Context) -> Result:
    if ctx.info.get("Debug") is True:
        return failed("docker info Debug=true")
    level, unknown = ctx.setting_or_unknown("log-level")
    if unknown:
        return unknown
    if level is None:
        return passed("log-level not set (default info)")
    return (passed if str(level.value).lower() == "info" else failed)(level.describe())


@check(
    id="daemon.iptables_enabled",
    title="Daemon is allowed to manage iptables",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.4",), SOC2: ("CC6.1", "CC6.6")},
    remediation='Remove "iptables": false from daemon.json (and --iptables=false from dockerd).',
    requires=PROBE,
    version=2,
)
def iptables_enabled(ctx: Context, _: Context) -> Result:
    return _bool_setting(ctx, "iptables", default=True, want=True)


@check(
    id="daemon.no_insecure_registries",
    title="No insecure registries are trusted",
    scope=Scope.DAEMON,
    severity=Severity.HIGH,
    controls={CIS: ("2.5",), SOC2: ("CC6.7", "CC6.8")},
    remediation='Remove entries from "insecure-registries" and serve those registries over TLS.',
    requires=INFO,
)
def no_insecure_registries(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "RegistryConfig"):
        return miss
    reg = ctx.info.get("RegistryConfig") or {}
    cidrs = sorted(set(reg.get("InsecureRegistryCIDRs") or []) - _DEFAULT_INSECURE)
    names = sorted(name for name, cfg in (reg.get("IndexConfigs") or {}).items()
                   if isinstance(cfg, dict) and cfg.get("Secure") is False)
    bad = cidrs + names
    if bad:
        return failed(one_line("RegistryConfig insecure: " + ", ".join(bad)))
    return passed("RegistryConfig lists only the loopback defaults as insecure")


def _driver_is_not(ctx: Context, driver: str) -> Result:
    if miss := _no_info(ctx, "Driver"):
        return miss
    actual = str(ctx.info.get("Driver"))
    return (failed if actual == driver else passed)(f"Driver={actual}")


@check(
    id="daemon.storage_driver_not_aufs",
    title="aufs storage driver is not in use",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.6",), SOC2: ("CC7.1", "CC8.1")},
    remediation="Migrate to overlay2 (export, change storage-driver, re-import).",
    requires=INFO,
)
def storage_driver_not_aufs(ctx: Context, _: Context) -> Result:
    return _driver_is_not(ctx, "aufs")


@check(
    id="daemon.storage_driver_not_devicemapper",
    title="devicemapper storage driver is not in use",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.7",), SOC2: ("CC7.1", "CC8.1")},
    remediation="Migrate to overlay2 before upgrading: Docker Engine 25 removed devicemapper.",
    requires=INFO,
)
def storage_driver_not_devicemapper(ctx: Context, _: Context) -> Result:
    return _driver_is_not(ctx, "devicemapper")


@check(
    id="daemon.tcp_requires_tls",
    title="A TCP listener requires mutual TLS",
    scope=Scope.DAEMON,
    severity=Severity.CRITICAL,
    controls={CIS: ("2.8",), SOC2: ("CC6.1", "CC6.6", "CC6.7")},
    remediation="Set tlsverify, tlscacert, tlscert and tlskey for every tcp:// host, or listen "
    "on the unix socket only.",
    requires=PROBE,
    version=2,
)
def tcp_requires_tls(ctx: Context, _: Context) -> Result:
    """Client certificates are required when TLS is on and verification is not turned off.

    dockerd (moby cmd/dockerd: ``newAPIServerTLSConfig``) requires and verifies client
    certificates when ``tls`` is on and ``tlsverify`` is unset or true; only an explicit
    ``tlsverify=false`` lets any client in. ``--tls`` alone (or ``"tls": true``) is therefore
    mutual TLS since 20.10 (tested on a real 20.10.24: a client without a certificate is
    refused). Older engines, or an unknown version, verified only with ``tlsverify``."""
    hosts, unknown = ctx.setting_or_unknown("hosts")
    if unknown:
        return unknown
    values = [] if hosts is None else (hosts.value if isinstance(hosts.value, list) else [hosts.value])
    tcp = [str(h) for h in values if str(h).startswith("tcp://")]
    if not tcp:
        shown = ",".join(str(h) for h in values) or "default unix socket"
        return not_applicable(one_line(f"no tcp:// listener (hosts={shown})"))
    assert ctx.daemon is not None
    listening = ",".join(tcp)
    verify = ctx.daemon.get("tlsverify")
    tls = ctx.daemon.get("tls")
    if verify is not None and as_bool(verify.value) is not True:
        return failed(one_line(f"{verify.describe()} while listening on {listening}"))
    if verify is None:
        if not (tls and as_bool(tls.value)):
            return failed(one_line(f"tlsverify not set while listening on {listening}"))
        if not _verifies_by_default(ctx.version.get("Version")):
            engine = ctx.version.get("Version") or "version not collected"
            return failed(one_line(f"tls without tlsverify while listening on {listening} "
                                   f"(engine {engine}: client verification needs 20.10 or later)"))
        shown = f"{tls.describe()}, tlsverify unset (verified by default since 20.10)"
    else:
        shown = verify.describe()
    unset = [k for k in ("tlscacert", "tlscert", "tlskey") if ctx.daemon.get(k) is None]
    if unset:
        return passed(one_line(f"{shown} on {listening} ({','.join(unset)} at dockerd defaults ~/.docker/)"))
    return passed(one_line(f"{shown} on {listening}"))


def _verifies_by_default(engine: str | None) -> bool:
    """Whether a dockerd of this version requires client certificates with tls on and
    tlsverify unset (20.10 and later; ``20.10.24+dfsg1``, ``24.0.7``)."""
    match = re.match(r"(\d+)\.(\d+)", str(engine or ""))
    return match is not None and (int(match[1]), int(match[2])) >= (20, 10)


@check(
    id="daemon.default_ulimits_set",
    title="Daemon sets default ulimits",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.9",), SOC2: ("A1.1", "CC7.1")},
    remediation='Set "default-ulimits" (at least nofile and nproc) in daemon.json to values '
    "that fit the host.",
    requires=PROBE,
)
def default_ulimits_set(ctx: Context, _: Context) -> Result:
    setting, unknown = ctx.setting_or_unknown("default-ulimits")
    if unknown:
        return unknown
    if setting is None or not setting.value:
        return failed("default-ulimits not set")
    names = sorted(setting.value) if isinstance(setting.value, dict) else [
        str(v).partition("=")[0] for v in setting.value]
    return passed(one_line(f"{setting.source} sets {','.join(names)}"))


@check(
    id="daemon.userns_remap_enabled",
    title="User namespace remapping is on",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.10",), SOC2: ("CC6.1", "CC6.3")},
    remediation='Set "userns-remap": "default" (or a dedicated user) in daemon.json.',
    requires=INFO,
)
def userns_remap_enabled(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "SecurityOptions"):
        return miss
    if "userns" in ctx.security_options:
        return passed("SecurityOptions has name=userns")
    return failed("SecurityOptions lacks name=userns")


@check(
    id="daemon.default_cgroup_parent",
    title="Daemon keeps the default cgroup parent",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.11",), SOC2: ("A1.1", "CC6.1")},
    remediation='Remove "cgroup-parent" from daemon.json unless an approved design needs it '
    "(then record an exception).",
    requires=PROBE,
)
def default_cgroup_parent(ctx: Context, _: Context) -> Result:
    setting, unknown = ctx.setting_or_unknown("cgroup-parent")
    if unknown:
        return unknown
    if setting is None or not setting.value:
        return passed("cgroup-parent not set (default)")
    return failed(one_line(setting.describe()))


@check(
    id="daemon.base_device_size_default",
    title="devicemapper base size is left at its default",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.12",), SOC2: ("A1.1", "CC8.1")},
    remediation="Remove dm.basesize from storage-opts unless more space per container is needed.",
    requires=PROBE,
)
def base_device_size_default(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "Driver"):
        return miss
    if ctx.info.get("Driver") != "devicemapper":
        return not_applicable(f"Driver={ctx.info.get('Driver')} (dm.basesize is devicemapper only)")
    setting, unknown = ctx.setting_or_unknown("storage-opts")
    if unknown:
        return unknown
    opts = [] if setting is None else [str(o) for o in setting.value or []]
    base = [o for o in opts if o.replace(" ", "").startswith("dm.basesize=")]
    if base:
        return failed(one_line(f"{setting.source if setting else 'storage-opts'}: {base[0]}"))
    return passed("storage-opts has no dm.basesize")


@check(
    id="daemon.authz_plugin_enabled",
    title="An authorization plugin vets API requests",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.13",), SOC2: ("CC6.1", "CC6.3")},
    remediation='Install an authorization plugin and list it in "authorization-plugins".',
    requires=INFO,
)
def authz_plugin_enabled(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "Plugins"):
        return miss
    plugins = (ctx.info.get("Plugins") or {}).get("Authorization") or []
    if plugins:
        return passed(one_line("Plugins.Authorization=" + ",".join(map(str, plugins))))
    return failed("Plugins.Authorization is empty")


@check(
    id="daemon.remote_logging",
    title="Container logs leave the host",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.14",), SOC2: ("CC7.2", "CC7.3")},
    remediation='Set "log-driver" to a shipping driver (syslog, fluentd, gelf, awslogs, splunk, '
    "...) with its log-opts; or record an exception for an external shipper.",
    requires=INFO,
)
def remote_logging(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "LoggingDriver"):
        return miss
    driver = str(ctx.info.get("LoggingDriver") or "")
    if driver in _LOCAL_LOG_DRIVERS:
        return failed(f"LoggingDriver={driver or '(empty)'} keeps logs on the host")
    return passed(f"LoggingDriver={driver}")


@check(
    id="daemon.no_new_privileges_default",
    title="no-new-privileges is the daemon default",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.15",), SOC2: ("CC6.1", "CC6.3")},
    remediation='Set "no-new-privileges": true in daemon.json.',
    requires=PROBE,
)
def no_new_privileges_default(ctx: Context, _: Context) -> Result:
    return _bool_setting(ctx, "no-new-privileges", default=False, want=True)


@check(
    id="daemon.live_restore_enabled",
    title="Live restore keeps containers up across daemon restarts",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.16",), SOC2: ("A1.2", "CC8.1")},
    remediation='Set "live-restore": true in daemon.json.',
    requires=INFO,
)
def live_restore_enabled(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "LiveRestoreEnabled"):
        return miss
    if ctx.info.get("LiveRestoreEnabled") is True:
        return passed("LiveRestoreEnabled=true")
    if ctx.swarm_active:
        return not_applicable("LiveRestoreEnabled=false with swarm active (swarm reschedules)")
    return failed("LiveRestoreEnabled=false")


@check(
    id="daemon.userland_proxy_disabled",
    title="Userland proxy is turned off",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.17",), SOC2: ("CC6.1", "CC7.1")},
    remediation='Set "userland-proxy": false in daemon.json (the kernel does the NAT).',
    requires=PROBE,
)
def userland_proxy_disabled(ctx: Context, _: Context) -> Result:
    return _bool_setting(ctx, "userland-proxy", default=True, want=False)


@check(
    id="daemon.seccomp_profile",
    title="Daemon applies a seccomp profile",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("2.18",), SOC2: ("CC6.1", "CC6.8")},
    remediation='Keep seccomp on; set "seccomp-profile" to a reviewed custom profile where the '
    "default one allows more than the workloads need.",
    requires=INFO,
    version=2,
)
def seccomp_profile(ctx: Context, _: Context) -> Result:
    if miss := _no_info(ctx, "SecurityOptions"):
        return miss
    opts = ctx.security_options.get("seccomp")
    if opts is None:
        return failed("SecurityOptions lacks name=seccomp")
    profile = opts.get("profile", "default")
    if profile == "unconfined":
        return failed("SecurityOptions name=seccomp,profile=unconfined")
    # A custom profile file is read by the host probe: one that allows every syscall by
    # default is seccomp in name only.
    custom = ctx.seccomp_profile_file()
    if custom is not None:
        path, text = custom
        action = seccomp_default_action(text)
        if action in PERMISSIVE_SECCOMP_ACTIONS:
            return failed(one_line(f"{path} defaultAction={action} (allows every syscall not listed)"))
        if action is None:
            return errored(one_line(f"{path} is not a readable seccomp profile"))
        return passed(one_line(f"SecurityOptions name=seccomp,profile={profile}; {path} defaultAction={action}"))
    return passed(f"SecurityOptions name=seccomp,profile={profile}")


@check(
    id="daemon.experimental_disabled",
    title="Experimental features are off",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("2.19",), SOC2: ("CC7.1", "CC8.1")},
    remediation='Remove "experimental": true from daemon.json on production hosts.',
    requires=(KIND_DAEMON_INFO, KIND_DAEMON_VERSION),
)
def experimental_disabled(ctx: Context, _: Context) -> Result:
    if "ExperimentalBuild" in ctx.info:
        value = ctx.info.get("ExperimentalBuild") is True
        return (failed if value else passed)(f"ExperimentalBuild={str(value).lower()}")
    if "Experimental" in ctx.version:
        value = as_bool(ctx.version.get("Experimental")) is True
        return (failed if value else passed)(f"version Experimental={str(value).lower()}")
    return errored("neither docker info ExperimentalBuild nor version Experimental collected")


def _component_versions(ctx: Context) -> str:
    parts = []
    if ctx.version.get("Version"):
        parts.append(f"Engine {ctx.version['Version']}")
    for comp in ctx.version.get("Components") or []:
        name = str(comp.get("Name", ""))
        if name and name != "Engine" and comp.get("Version"):
            parts.append(f"{name} {comp['Version']}")
    return ", ".join(parts)


@check(
    id="daemon.engine_version_current",
    title="Docker engine is a supported, patched release",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("1.2.2",), SOC2: ("CC7.1", "CC8.1")},
    remediation="Upgrade Docker Engine, containerd and runc to a supported release with current "
    "security fixes; attest the versions against your patch policy.",
    requires=(KIND_DAEMON_VERSION,),
    kind=Kind.MANUAL,
)
def engine_version_current(ctx: Context, _: Context) -> Result:
    # Versions are collected, but "current" needs a release/CVE feed we do not have: attest.
    versions = _component_versions(ctx)
    if not versions:
        return manual("docker version not collected; attest engine, containerd and runc currency")
    return manual(one_line(f"{versions}: attest these are supported, patched releases"))

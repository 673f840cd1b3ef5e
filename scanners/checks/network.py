"""Container runtime checks, part 2: what the container can reach on the host.

CIS 5.6 (sensitive host directories), 5.8 and 5.14 (published ports), 5.10 (host network),
5.18 (devices), 5.20 (mount propagation), 5.30 (default bridge), 5.32 (docker.sock).

Inspect facts relied on: ``Mounts[]`` lists bind mounts with ``Source``, ``RW`` and
``Propagation`` for created and running containers alike; ``HostConfig.PortBindings`` holds the
configured bindings (``HostIp`` "" means every interface, ``HostPort`` is a string, "" meaning
an ephemeral port) and ``NetworkSettings.Ports`` the actual ones of a running container.
"""

from __future__ import annotations

from scanners.checks.base import (
    CIS,
    SOC2,
    Result,
    Scope,
    Severity,
    check,
    errored,
    failed,
    not_applicable,
    passed,
)
from scanners.checks.context import ContainerView, Context, PortBinding
from scanners.snapshot import KIND_CONTAINER, KIND_HOST
from scanners.text import one_line

CONTAINER = (KIND_CONTAINER,)

#: CIS 5.6's list (v1.8.0 added /lib64).
SENSITIVE_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/sys", "/usr")
_ALL_INTERFACES = frozenset({"", "0.0.0.0", "::", "[::]"})


def _norm(path: str) -> str:
    path = "/" + path.strip().strip("/")
    return "/run" + path[len("/var/run"):] if path == "/var/run" or path.startswith("/var/run/") else path


def _binds(c: ContainerView) -> list[dict]:
    """Mounts of host paths: bind mounts, and local volumes that bind a host device
    (``--opt type=none --opt o=bind --opt device=/etc``), returned with ``Source`` set to the
    host path they expose."""
    out = []
    for m in c.mounts:
        if m.get("Type", "bind") == "bind" and m.get("Source"):
            out.append(m)
        elif device := _bound_device(m):
            out.append({**m, "Source": device})
    return out


def _bound_device(m: dict) -> str:
    vol = m.get("VolumeOptions") or {}
    if m.get("Type") == "volume" and vol.get("Driver") == "local" and "bind" in str(vol.get("o")).split(","):
        return str(vol.get("device") or "")
    return ""


@check(
    id="container.sensitive_host_dirs_not_mounted",
    title="Sensitive host directories are not mounted",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.6",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Do not bind-mount /, /boot, /dev, /etc, /lib, /lib64, /proc, /sys or /usr; "
    "mount only the specific files needed, read-only.",
    requires=CONTAINER,
    version=2,
)
def sensitive_host_dirs_not_mounted(c: ContainerView, _: Context) -> Result:
    # A sensitive directory itself fails in any mode; a file or folder below one fails only
    # read-write (so /etc/localtime:ro passes, /etc/ssl:rw does not).
    bad = []
    for m in _binds(c):
        src = _norm(str(m["Source"]))
        mode = "rw" if m.get("RW", True) else "ro"
        under = any(src.startswith(d + "/") for d in SENSITIVE_DIRS if d != "/")
        if src in SENSITIVE_DIRS or (under and mode == "rw"):
            bad.append(f"{src} -> {m.get('Destination')} ({mode})")
    if bad:
        return failed(one_line("Mounts " + "; ".join(bad)))
    return passed(f"no sensitive host directory among {len(_binds(c))} bind mounts")


def _host_port(p: PortBinding) -> int | None:
    try:
        return int(p.host_port.split("-", 1)[0]) if p.host_port else None
    except ValueError:
        return None


def _show(p: PortBinding) -> str:
    return f"{p.container_port} -> {p.host_ip or '*'}:{p.host_port or '(ephemeral)'}"


@check(
    id="container.privileged_ports_not_mapped",
    title="Host ports below 1024 are not published",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.8",), SOC2: ("CC6.1", "CC6.6")},
    remediation="Publish on a host port of 1024 or above (-p 8080:80) and front it with a proxy.",
    requires=CONTAINER,
)
def privileged_ports_not_mapped(c: ContainerView, _: Context) -> Result:
    if c.network_mode == "host":
        return not_applicable("NetworkMode=host publishes no ports (see 5.10)")
    low = [p for p in c.ports if (port := _host_port(p)) is not None and 0 < port < 1024]
    if low:
        return failed(one_line("PortBindings " + ", ".join(_show(p) for p in low)))
    return passed(f"no published host port below 1024 ({len(c.ports)} bindings)")


@check(
    id="container.ports_bound_to_interface",
    title="Published ports bind to a specific host address",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.14",), SOC2: ("CC6.1", "CC6.6")},
    remediation="Publish with an address: -p 10.0.0.5:8080:80 (or 127.0.0.1 behind a proxy).",
    requires=CONTAINER,
)
def ports_bound_to_interface(c: ContainerView, _: Context) -> Result:
    if c.network_mode == "host":
        return not_applicable("NetworkMode=host publishes no ports (see 5.10)")
    if not c.ports:
        return not_applicable("no published ports")
    wide = [p for p in c.ports if p.host_ip in _ALL_INTERFACES]
    if wide:
        return failed(one_line("PortBindings on every interface: " + ", ".join(_show(p) for p in wide)))
    return passed(one_line("PortBindings " + ", ".join(_show(p) for p in c.ports)))


@check(
    id="container.host_network_not_shared",
    title="Host network namespace is not shared",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.10",), SOC2: ("CC6.1", "CC6.6")},
    remediation="Recreate it without --network=host; publish the needed ports instead.",
    requires=CONTAINER,
    version=2,
)
def host_network_not_shared(c: ContainerView, ctx: Context) -> Result:
    mode, shown = ctx.namespace_mode(c, "NetworkMode")
    if mode == "unknown":
        return errored(one_line(shown))
    return (failed if mode == "host" else passed)(one_line(shown))


@check(
    id="container.host_devices_not_exposed",
    title="Host devices are not passed in",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.18",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Remove --device/--gpus/--device-cgroup-rule unless the workload needs them "
    "(then record an exception), and grant only r/w, not m.",
    requires=CONTAINER,
)
def host_devices_not_exposed(c: ContainerView, _: Context) -> Result:
    hc = c.host_config
    if hc.get("Privileged") is True:
        return failed("HostConfig.Privileged=true exposes every host device")
    devices = [d for d in hc.get("Devices") or [] if isinstance(d, dict)]
    if devices:
        d = devices[0]
        return failed(one_line(f"HostConfig.Devices {d.get('PathOnHost')} -> "
                               f"{d.get('PathInContainer')} ({d.get('CgroupPermissions')})"
                               + (f" (+{len(devices) - 1} more)" if len(devices) > 1 else "")))
    if hc.get("DeviceRequests"):
        return failed(one_line(f"HostConfig.DeviceRequests={hc.get('DeviceRequests')}"))
    if hc.get("DeviceCgroupRules"):
        return failed(one_line(f"HostConfig.DeviceCgroupRules={hc.get('DeviceCgroupRules')}"))
    return passed("HostConfig.Devices, DeviceRequests and DeviceCgroupRules are empty")


@check(
    id="container.mount_propagation_private",
    title="Mounts do not use shared propagation",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.20",), SOC2: ("CC6.1",)},
    remediation="Mount without shared/rshared propagation (the default is rprivate).",
    requires=CONTAINER,
)
def mount_propagation_private(c: ContainerView, _: Context) -> Result:
    for m in c.mounts:
        if str(m.get("Propagation") or "") in ("shared", "rshared"):
            return failed(one_line(f"Mounts {m.get('Source')} -> {m.get('Destination')} "
                                   f"Propagation={m.get('Propagation')}"))
    return passed(f"no shared propagation among {len(c.mounts)} mounts")


@check(
    id="container.default_bridge_unused",
    title="The default docker0 bridge is not used",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.30",), SOC2: ("CC6.1", "CC6.6")},
    remediation="Attach the container to a user-defined network (docker network create; "
    "--network NAME).",
    requires=CONTAINER,
    version=2,
)
def default_bridge_unused(c: ContainerView, ctx: Context) -> Result:
    mode = c.network_mode
    if mode == "host" or mode.startswith("container:"):
        return not_applicable(f"NetworkMode={mode} has no network of its own")
    networks = sorted((c.inspect.get("NetworkSettings") or {}).get("Networks") or {})
    shown = f"NetworkMode={mode}, networks={','.join(networks) or 'none'}"
    if mode in ("default", "bridge") or "bridge" in networks:
        # Judge on the networks that exist: with --bridge=none there is no docker0 to use.
        exists, why = ctx.default_bridge()
        if exists is False:
            return passed(one_line(f"{shown}; {why}"))
        return failed(one_line(shown))
    return passed(one_line(shown))


@check(
    id="container.docker_socket_not_mounted",
    title="Docker socket is not mounted into the container",
    scope=Scope.CONTAINER,
    severity=Severity.CRITICAL,
    controls={CIS: ("5.32",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Remove the docker.sock mount; if a tool needs the API, give it a filtering, "
    "read-only socket proxy.",
    requires=(KIND_CONTAINER, KIND_HOST),
    version=3,
)
def docker_socket_not_mounted(c: ContainerView, ctx: Context) -> Result:
    # The socket itself, or any directory that holds it (/run, the -H unix:// socket's folder, /).
    sockets = {_norm(p) for p in ctx.docker_sockets()}
    for m in c.mounts:
        raw = _bound_device(m) or str(m.get("Source") or "")
        src, dst = _norm(raw), str(m.get("Destination") or "")
        holds_socket = any(s == src or s.startswith(src.rstrip("/") + "/") for s in sockets) if raw else False
        if holds_socket or src.endswith("/docker.sock") or dst.endswith("/docker.sock") or src == "/run":
            return failed(one_line(f"Mounts {m.get('Source')} -> {dst}"))
    return passed(f"no docker.sock among {len(c.mounts)} mounts")

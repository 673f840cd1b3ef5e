"""Container runtime checks, part 1: who the process is and how it is confined.

CIS 4.1 (effective user) and 5.2-5.5, 5.16, 5.17, 5.21, 5.22, 5.26, 5.31, from container
inspect. Every container is checked, running or stopped (CIS audits ``docker ps --all``): a
stopped container's configuration is what it will run with when started.

Docker inspect facts these checks rely on (verified on recorded fixtures):
* ``Config.User`` of a container already holds the image's USER unless ``--user`` overrode it;
* ``SecurityOpt`` spells options ``no-new-privileges``, ``no-new-privileges:true``,
  ``seccomp=unconfined`` or ``seccomp:unconfined``; Docker adds ``label=disable`` by itself to
  privileged containers and to those sharing the host PID or IPC namespace;
* ``CapAdd``/``CapDrop`` may be null and names may carry a ``CAP_`` prefix;
* ``Privileged=true`` grants every capability and device, and turns seccomp and AppArmor off,
  while leaving ``CapAdd`` and ``SecurityOpt`` empty.
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
from scanners.checks.context import PERMISSIVE_SECCOMP_ACTIONS, ContainerView, Context, as_bool, seccomp_default_action
from scanners.checks.images import describe_user, user_is_root
from scanners.snapshot import KIND_CONTAINER, KIND_DAEMON_INFO, KIND_HOST
from scanners.text import one_line

CONTAINER = (KIND_CONTAINER,)
WITH_INFO = (KIND_CONTAINER, KIND_DAEMON_INFO)

#: Docker's default capability set: adding one of these back changes nothing.
DEFAULT_CAPS = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})


@check(
    id="container.user_not_root",
    title="Container runs as a non-root user",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("4.1",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Set USER in the image or run with --user UID:GID (a non-zero UID).",
    requires=CONTAINER,
)
def user_not_root(c: ContainerView, _: Context) -> Result:
    user = c.config.get("User")
    return (failed if user_is_root(user) else passed)(describe_user("Config.User", user))


@check(
    id="container.apparmor_profile",
    title="AppArmor confines the container",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.2",), SOC2: ("CC6.1", "CC6.8")},
    remediation="Run with the docker-default or a custom AppArmor profile; never "
    "--security-opt apparmor=unconfined.",
    requires=WITH_INFO,
)
def apparmor_profile(c: ContainerView, ctx: Context) -> Result:
    if "apparmor" not in ctx.security_options:
        return not_applicable("host has no AppArmor (SecurityOptions lacks name=apparmor)")
    if c.host_config.get("Privileged") is True:
        return failed("HostConfig.Privileged=true (AppArmor unconfined)")
    profile = str(c.inspect.get("AppArmorProfile") or "")
    if c.security_opt_value("apparmor") == "unconfined" or profile == "unconfined":
        return failed("AppArmorProfile=unconfined")
    if profile:
        return passed(one_line(f"AppArmorProfile={profile}"))
    if not c.running:
        return passed("AppArmorProfile unset before first start (docker-default applies)")
    return failed('AppArmorProfile="" on a running container')


@check(
    id="container.selinux_options",
    title="SELinux labels confine the container",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.3",), SOC2: ("CC6.1", "CC6.8")},
    remediation="Run the daemon with --selinux-enabled and do not pass --security-opt "
    "label=disable (nor share host namespaces, which disables labels).",
    requires=WITH_INFO,
)
def selinux_options(c: ContainerView, ctx: Context) -> Result:
    if "selinux" not in ctx.security_options:
        return not_applicable("host has no SELinux (SecurityOptions lacks name=selinux)")
    if c.security_opt_value("label") in ("disable", "disabled"):
        return failed("SecurityOpt has label=disable")
    label = str(c.inspect.get("ProcessLabel") or "")
    if label:
        return passed(one_line(f"ProcessLabel={label}"))
    return failed('ProcessLabel=""')


@check(
    id="container.capabilities_restricted",
    title="Container capabilities are restricted",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.4",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Remove --cap-add of capabilities outside Docker's default set (SYS_ADMIN, "
    "NET_ADMIN, ALL, ...); prefer --cap-drop ALL plus the few needed.",
    requires=CONTAINER,
)
def capabilities_restricted(c: ContainerView, _: Context) -> Result:
    if c.host_config.get("Privileged") is True:
        return failed("HostConfig.Privileged=true grants every capability")
    extra = sorted(c.cap_add - DEFAULT_CAPS)
    if extra:
        return failed(one_line("HostConfig.CapAdd=" + ",".join(extra)))
    drop = ",".join(sorted(c.cap_drop)) or "none"
    added = ",".join(sorted(c.cap_add)) or "none"
    return passed(f"HostConfig.CapAdd={added} (within defaults), CapDrop={drop}")


@check(
    id="container.privileged_disabled",
    title="Container is not privileged",
    scope=Scope.CONTAINER,
    severity=Severity.CRITICAL,
    controls={CIS: ("5.5",), SOC2: ("CC6.1", "CC6.3", "CC6.8")},
    remediation="Recreate it without --privileged; add single capabilities with --cap-add.",
    requires=CONTAINER,
)
def privileged_disabled(c: ContainerView, _: Context) -> Result:
    value = c.host_config.get("Privileged") is True
    return (failed if value else passed)(f"HostConfig.Privileged={str(value).lower()}")


def _namespace(c: ContainerView, ctx: Context, field: str) -> Result:
    mode, shown = ctx.namespace_mode(c, field)
    if mode == "unknown":
        return errored(one_line(shown))
    return (failed if mode == "host" else passed)(one_line(shown))


@check(
    id="container.host_pid_not_shared",
    title="Host PID namespace is not shared",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.16",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Recreate it without --pid=host.",
    requires=CONTAINER,
    version=2,
)
def host_pid_not_shared(c: ContainerView, ctx: Context) -> Result:
    return _namespace(c, ctx, "PidMode")


@check(
    id="container.host_ipc_not_shared",
    title="Host IPC namespace is not shared",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.17",), SOC2: ("CC6.1",)},
    remediation="Recreate it without --ipc=host.",
    requires=CONTAINER,
    version=2,
)
def host_ipc_not_shared(c: ContainerView, ctx: Context) -> Result:
    return _namespace(c, ctx, "IpcMode")


@check(
    id="container.host_uts_not_shared",
    title="Host UTS namespace is not shared",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.21",), SOC2: ("CC6.1",)},
    remediation="Recreate it without --uts=host.",
    requires=CONTAINER,
    version=2,
)
def host_uts_not_shared(c: ContainerView, ctx: Context) -> Result:
    return _namespace(c, ctx, "UTSMode")


@check(
    id="container.host_userns_not_shared",
    title="Host user namespace is not shared",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.31",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Recreate it without --userns=host.",
    requires=WITH_INFO,
    version=2,
)
def host_userns_not_shared(c: ContainerView, ctx: Context) -> Result:
    # CIS's audit flags UsernsMode=host whatever the daemon does (docker-bench fails it too).
    # Without remapping on the daemon, every container shares the host user namespace anyway:
    # 2.10 reports that once, and the detail here says so, so the fix is not mistaken for
    # dropping the flag alone.
    result = _namespace(c, ctx, "UsernsMode")
    if ctx.info and "userns" not in ctx.security_options:
        status, detail = result
        return status, one_line(f"{detail}; the daemon has no userns-remap (see 2.10)")
    return result


@check(
    id="container.seccomp_enabled",
    title="Seccomp filtering is not disabled",
    scope=Scope.CONTAINER,
    severity=Severity.HIGH,
    controls={CIS: ("5.22",), SOC2: ("CC6.1", "CC6.8")},
    remediation="Recreate it without --security-opt seccomp=unconfined (and without "
    "--privileged); keep seccomp on in the daemon.",
    requires=WITH_INFO,
    version=2,
)
def seccomp_enabled(c: ContainerView, ctx: Context) -> Result:
    if c.host_config.get("Privileged") is True:
        return failed("HostConfig.Privileged=true runs without seccomp")
    value = c.security_opt_value("seccomp")
    if value == "unconfined":
        return failed("SecurityOpt has seccomp=unconfined")
    if ctx.info and "seccomp" not in ctx.security_options:
        return failed("daemon has no seccomp (SecurityOptions lacks name=seccomp)")
    daemon_profile = ctx.security_options.get("seccomp", {}).get("profile", "default")
    if value is None and daemon_profile == "unconfined":
        return failed("daemon seccomp profile=unconfined")
    if value:
        # The CLI sends the profile itself: inspect shows seccomp=<the profile's JSON>.
        action = seccomp_default_action(value)
        if action in PERMISSIVE_SECCOMP_ACTIONS:
            return failed(f"SecurityOpt seccomp profile has defaultAction={action} (allows every syscall not listed)")
        return passed(f"SecurityOpt sets a custom seccomp profile (defaultAction={action or 'unknown'})")
    return passed(f"daemon seccomp profile={daemon_profile}")


@check(
    id="container.no_new_privileges",
    title="Container cannot gain new privileges",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.26",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Run with --security-opt no-new-privileges (or set it daemon-wide, 2.15).",
    requires=(KIND_CONTAINER, KIND_HOST),
)
def no_new_privileges(c: ContainerView, ctx: Context) -> Result:
    value = c.security_opt_value("no-new-privileges")
    if value is not None:
        on = value == "" or as_bool(value) is True
        shown = "no-new-privileges" + (f":{value}" if value else "")
        return (passed if on else failed)(f"SecurityOpt has {shown}")
    if ctx.daemon is not None:
        default = ctx.daemon.get("no-new-privileges")
        if default is not None and as_bool(default.value) is True:
            return passed(f"inherited from {default.describe()}")
        return failed("SecurityOpt lacks no-new-privileges and the daemon default is off")
    return failed("SecurityOpt lacks no-new-privileges (daemon default unknown: no host probe)")

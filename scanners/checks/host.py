"""Host checks from the read-only probe: CIS 1.1.x (audit rules, data-root mount, docker group).

Audit rules are read from the files the probe collected (``/etc/audit/audit.rules`` and
``/etc/audit/rules.d/*.rules``), both the watch form ``-w /usr/bin/dockerd -k docker`` and the
syscall form ``-a always,exit -F path=/run/containerd -F perm=war -k docker``. Semantics we
follow (auditctl(8)): a ``-w`` watch on a directory is recursive, ``-F dir=`` is recursive,
``-F path=`` is exact, and ``never`` rules add no coverage (they are the exclusions CIS suggests).

Missing evidence is never a pass: no probe gives ``not_assessed`` ("host probe not enabled"),
a probe that ran but did not report a path gives ``error`` (with the probe's own reason), and a
file that legitimately does not exist on this distribution (``/etc/sysconfig/docker`` on Debian)
gives ``not_applicable``, as CIS says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scanners.checks.base import (
    CIS,
    SOC2,
    CheckFn,
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
from scanners.checks.context import NO_PROBE, Context
from scanners.snapshot import KIND_DAEMON_INFO, KIND_HOST
from scanners.text import one_line

PROBE = (KIND_HOST,)

# Candidate locations, in the order packages use them. They match what the probe collector
# stats (scanners/collectors/probe.py FIXED_STAT_PATHS; a test keeps the two in step).
DOCKERD = ("/usr/bin/dockerd", "/usr/sbin/dockerd")
DOCKER_SERVICE = ("/usr/lib/systemd/system/docker.service", "/lib/systemd/system/docker.service",
                  "/etc/systemd/system/docker.service")
DOCKER_SOCKET_UNIT = ("/usr/lib/systemd/system/docker.socket", "/lib/systemd/system/docker.socket",
                      "/etc/systemd/system/docker.socket")
CONTAINERD = ("/usr/bin/containerd", "/usr/sbin/containerd")
CONTAINERD_SOCK = ("/run/containerd/containerd.sock",)
SHIM = ("/usr/bin/containerd-shim", "/usr/sbin/containerd-shim")
SHIM_V1 = ("/usr/bin/containerd-shim-runc-v1", "/usr/sbin/containerd-shim-runc-v1")
SHIM_V2 = ("/usr/bin/containerd-shim-runc-v2", "/usr/sbin/containerd-shim-runc-v2")
RUNC = ("/usr/bin/runc", "/usr/sbin/runc")
#: The probe lists these by glob (``containerd-shim*`` in /usr/bin and /usr/sbin), so it
#: reports only the ones that exist: unreported means absent.
GLOBBED_PREFIXES = ("/usr/bin/containerd-shim", "/usr/sbin/containerd-shim")
AUDIT_DIR = "/etc/audit/"


# --------------------------------------------------------------------------- audit rules


@dataclass(frozen=True)
class AuditRule:
    path: str
    recursive: bool  # -w (a directory watch is recursive) and -F dir=
    text: str


def _norm(path: str) -> str:
    path = path.rstrip("/") or "/"
    return "/run" + path[len("/var/run"):] if path == "/var/run" or path.startswith("/var/run/") else path


def parse_audit_rules(text: str) -> list[AuditRule]:
    """The path-bearing rules of an audit.rules text, exclusions (``never``) dropped."""
    rules: list[AuditRule] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] == "-w" and len(tokens) > 1:
            rules.append(AuditRule(_norm(tokens[1]), True, line))
            continue
        if tokens[0] not in ("-a", "-A") or len(tokens) < 2 or "never" in tokens[1].split(","):
            continue
        for i, tok in enumerate(tokens[:-1]):
            if tok != "-F":
                continue
            field, op, value = tokens[i + 1].partition("=")
            if op and field in ("path", "dir") and value:
                rules.append(AuditRule(_norm(value), field == "dir", line))
    return rules


def _covering(target: str, rules: Sequence[AuditRule]) -> AuditRule | None:
    target = _norm(target)
    for rule in rules:
        if target == rule.path or (rule.recursive and target.startswith(rule.path.rstrip("/") + "/")):
            return rule
    return None


def _audit_rules(ctx: Context) -> tuple[list[AuditRule] | None, Result | None]:
    """Rules from /etc/audit/audit.rules and rules.d/*.rules as collected by the probe.

    The probe keeps the contents of the files that exist and reports read failures in
    ``errors``; so no audit contents and no audit error means the host has no audit rules.
    """
    host = ctx.host or {}
    texts = [str(v) for k, v in sorted((host.get("contents") or {}).items())
             if k.startswith(AUDIT_DIR) and k.endswith(".rules") and v is not None]
    if texts:
        return [r for t in texts for r in parse_audit_rules(t)], None
    if ctx.probe_failed:  # nothing was collected
        return None, ctx.unreported("the audit rules")
    errors = [str(e) for e in host.get("errors") or []]
    if errors:  # the probe had trouble: absence of rules files proves nothing
        first = next((e for e in errors if AUDIT_DIR in e), errors[0])
        return None, errored(one_line(f"host probe failed: {first}"))
    return [], None


def _seen(ctx: Context, path: str) -> dict | None:
    entry = ctx.file(path)
    if entry is None and path.startswith(GLOBBED_PREFIXES) and ctx.host is not None:
        return {"exists": False}
    return entry


def _audit(ctx: Context, candidates: Sequence[str], required: bool) -> Result:
    """Shared logic of the 1.1.x checks; ``required`` targets must exist on any Docker host."""
    if miss := ctx.probe_missing():
        return miss
    seen = {p: _seen(ctx, p) for p in candidates}
    existing = [p for p, f in seen.items() if f is not None and f.get("exists")]
    unknown = [p for p, f in seen.items() if f is None]
    if not existing and not unknown:
        return not_applicable(f"{candidates[0]} absent")
    rules, problem = _audit_rules(ctx)
    if rules is None:
        assert problem is not None
        return problem
    for path in existing + unknown:
        if rule := _covering(path, rules):
            return passed(one_line(f"audit rule '{rule.text}' covers {path}"))
    suffix = "" if rules else " (no audit rules found on the host)"
    if existing:
        return failed(f"no audit rule covers {existing[0]}{suffix}")
    if required and len(unknown) < len(candidates):
        # The usual locations are known to be empty; the unreported one (dockerd's own argv[0])
        # is where the binary is, and no rule covers it.
        return failed(f"no audit rule covers {unknown[0]}{suffix}")
    return ctx.unreported(unknown[0])


def _audit_check(candidates: Sequence[str] | Callable[[Context], Sequence[str]],
                 required: bool) -> CheckFn:
    def fn(ctx: Context, _: Context) -> Result:
        paths = candidates(ctx) if callable(candidates) else candidates
        return _audit(ctx, paths, required)
    return fn


def _data_root(ctx: Context) -> list[str]:
    root = (ctx.host or {}).get("docker_root_dir") or ctx.info.get("DockerRootDir")
    return [str(root or "/var/lib/docker")]


_AUDIT_SOC2 = ("CC7.1", "CC7.2")
_AUDIT_FIX = ("Add '-w {path} -k docker' to /etc/audit/rules.d/docker.rules and reload the "
              "rules (augenrules --load).")


def _audit_spec(id: str, title: str, cis: str, path: str, severity: Severity = Severity.LOW,
                version: int = 1) -> Callable[[CheckFn], CheckFn]:
    return check(id=id, title=title, scope=Scope.HOST, severity=severity,
                 controls={CIS: (cis,), SOC2: _AUDIT_SOC2},
                 remediation=_AUDIT_FIX.format(path=path), requires=PROBE, version=version)


def _dockerd(ctx: Context) -> list[str]:
    argv = (ctx.host or {}).get("dockerd_cmdline") or []
    first = str(argv[0]) if argv else ""
    return list(dict.fromkeys(([first] if first.startswith("/") else []) + list(DOCKERD)))


audit_dockerd = _audit_spec("host.audit_dockerd", "An audit rule watches the dockerd binary",
                            "1.1.3", "/usr/bin/dockerd", Severity.MEDIUM)(
    _audit_check(_dockerd, required=True))
audit_run_containerd = _audit_spec("host.audit_run_containerd", "An audit rule watches /run/containerd",
                                   "1.1.4", "/run/containerd")(
    _audit_check(("/run/containerd",), required=True))
audit_docker_root = _audit_spec("host.audit_docker_root", "An audit rule watches the Docker data root",
                                "1.1.5", "/var/lib/docker")(_audit_check(_data_root, required=True))
audit_etc_docker = _audit_spec("host.audit_etc_docker", "An audit rule watches /etc/docker",
                               "1.1.6", "/etc/docker", Severity.MEDIUM)(
    _audit_check(("/etc/docker",), required=True))
audit_docker_service = _audit_spec("host.audit_docker_service",
                                   "An audit rule watches the docker.service unit", "1.1.7",
                                   "/usr/lib/systemd/system/docker.service")(
    _audit_check(DOCKER_SERVICE, required=False))
audit_containerd_sock = _audit_spec("host.audit_containerd_sock",
                                    "An audit rule watches the containerd socket", "1.1.8",
                                    "/run/containerd/containerd.sock")(
    _audit_check(CONTAINERD_SOCK, required=False))
audit_docker_sock = _audit_spec("host.audit_docker_sock", "An audit rule watches the Docker socket",
                                "1.1.9", "/var/run/docker.sock")(
    _audit_check(lambda ctx: ctx.docker_sockets(), required=False))
audit_etc_default_docker = _audit_spec("host.audit_etc_default_docker",
                                       "An audit rule watches /etc/default/docker", "1.1.10",
                                       "/etc/default/docker")(
    _audit_check(("/etc/default/docker",), required=False))
audit_daemon_json = _audit_spec("host.audit_daemon_json", "An audit rule watches daemon.json",
                                "1.1.11", "/etc/docker/daemon.json", version=2)(
    _audit_check(lambda ctx: (ctx.daemon_config_path(),), required=False))
audit_containerd_config = _audit_spec("host.audit_containerd_config",
                                      "An audit rule watches containerd's config.toml", "1.1.12",
                                      "/etc/containerd/config.toml")(
    _audit_check(("/etc/containerd/config.toml",), required=False))
audit_etc_sysconfig_docker = _audit_spec("host.audit_etc_sysconfig_docker",
                                         "An audit rule watches /etc/sysconfig/docker", "1.1.13",
                                         "/etc/sysconfig/docker")(
    _audit_check(("/etc/sysconfig/docker",), required=False))
audit_containerd_bin = _audit_spec("host.audit_containerd_bin",
                                   "An audit rule watches the containerd binary", "1.1.14",
                                   "/usr/bin/containerd")(_audit_check(CONTAINERD, required=True))
audit_containerd_shim = _audit_spec("host.audit_containerd_shim",
                                    "An audit rule watches containerd-shim", "1.1.15",
                                    "/usr/bin/containerd-shim")(_audit_check(SHIM, required=False))
audit_containerd_shim_runc_v1 = _audit_spec("host.audit_containerd_shim_runc_v1",
                                            "An audit rule watches containerd-shim-runc-v1",
                                            "1.1.16", "/usr/bin/containerd-shim-runc-v1")(
    _audit_check(SHIM_V1, required=False))
audit_containerd_shim_runc_v2 = _audit_spec("host.audit_containerd_shim_runc_v2",
                                            "An audit rule watches containerd-shim-runc-v2",
                                            "1.1.17", "/usr/bin/containerd-shim-runc-v2")(
    _audit_check(SHIM_V2, required=True))
audit_runc = _audit_spec("host.audit_runc", "An audit rule watches the runc binary", "1.1.18",
                         "/usr/bin/runc")(_audit_check(RUNC, required=True))


# --------------------------------------------------------------------------- data root, group


@check(
    id="host.docker_root_separate_mount",
    title="Docker data root is on its own filesystem",
    scope=Scope.HOST,
    severity=Severity.LOW,
    controls={CIS: ("1.1.1",), SOC2: ("A1.1", "CC6.1")},
    remediation="Move the Docker data root to a dedicated partition or volume (e.g. an LVM "
    "volume mounted on /var/lib/docker) so containers cannot fill the root filesystem.",
    requires=(KIND_HOST, KIND_DAEMON_INFO),
)
def docker_root_separate_mount(ctx: Context, _: Context) -> Result:
    if miss := ctx.probe_missing():
        return miss
    host = ctx.host or {}
    root = _data_root(ctx)[0]
    mounts = [m for m in host.get("mounts") or [] if isinstance(m, dict)]
    own = next((m for m in mounts if _norm(str(m.get("mount_point", ""))) == _norm(root)), None)
    is_mount = host.get("docker_root_is_mount")
    if not mounts and not is_mount:  # the probe lists at least "/" when it read mountinfo
        return ctx.unreported(f"the mounts of {root}")
    # The probe's verdict wins: dockerd bind-mounts its root onto itself, which shows up as a
    # mount point on the same device and is not a separate filesystem.
    separate = is_mount if isinstance(is_mount, bool) else own is not None
    if separate:
        how = f" ({own.get('fstype')} {own.get('source')})" if own else ""
        return passed(one_line(f"DockerRootDir {root} is a separate filesystem{how}"))
    if own is not None:
        return failed(one_line(f"DockerRootDir {root} is only a bind mount of {own.get('source')} "
                               "(same filesystem)"))
    return failed(f"DockerRootDir {root} is not a separate mount point")


@check(
    id="host.docker_group_trusted",
    title="Only trusted users can control the Docker daemon",
    scope=Scope.HOST,
    severity=Severity.HIGH,
    controls={CIS: ("1.1.2",), SOC2: ("CC6.1", "CC6.2", "CC6.3")},
    remediation="Remove users who do not need root-equivalent access from the docker group "
    "(gpasswd -d USER docker); attest the remaining members.",
    requires=PROBE,
    kind=Kind.MANUAL,
)
def docker_group_trusted(ctx: Context, _: Context) -> Result:
    # Membership is evidence, but "trusted" needs the approved-user list: an attestation.
    if ctx.host is None:
        return manual(f"docker group members not collected ({NO_PROBE}); attest who has access")
    members = ctx.host.get("docker_group_members")
    if members is None:
        return manual("docker group members not reported by the probe; attest who has access")
    if not members:
        return manual("docker group has no members; attest no other user can reach the socket")
    return manual(one_line(f"docker group members: {', '.join(map(str, members))}; "
                           "attest each is trusted"))

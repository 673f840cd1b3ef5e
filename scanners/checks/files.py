"""Ownership and permissions of the daemon's files and sockets: CIS section 3, from the probe.

"644 or stricter" means no permission bit outside 0644 is set (0600, 0640 and 0444 pass; 0664
and 0755 fail; setuid/setgid/sticky bits always fail). "Owned by root" means uid 0 and gid 0.
A file that is legitimately absent is ``not_applicable`` (CIS: "if the file exists"); a file the
probe did not report is ``error``; no probe, or a probe that could not run, is ``not_assessed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from scanners.checks.base import (
    CIS,
    SOC2,
    CheckFn,
    Result,
    Scope,
    Severity,
    Status,
    check,
    errored,
    failed,
    not_applicable,
    passed,
)
from scanners.checks.context import Context, as_bool
from scanners.checks.host import CONTAINERD_SOCK, DOCKER_SERVICE, DOCKER_SOCKET_UNIT
from scanners.snapshot import KIND_HOST
from scanners.text import one_line

PROBE = (KIND_HOST,)
CERTS_D = "/etc/docker/certs.d"
Predicate = Callable[[str, dict[str, Any]], Result]


def _mode(entry: dict[str, Any]) -> int | None:
    raw = entry.get("mode")
    try:
        return int(str(raw), 8) & 0o7777 if raw is not None else None
    except ValueError:
        return None


def mode_at_most(allowed: int) -> Predicate:
    """Pass when no permission bit outside ``allowed`` is set."""
    def pred(path: str, entry: dict[str, Any]) -> Result:
        mode = _mode(entry)
        if mode is None:
            return errored(f"host probe gave no mode for {path}")
        shown = f"{path} mode={mode:04o}"
        return (failed if mode & ~allowed else passed)(f"{shown} (at most {allowed:04o})")
    return pred


def owned_by(user: str, group: str | None) -> Predicate:
    """Pass on uid 0 (user root) and gid 0, or on the named group when ``group`` is given."""
    def pred(path: str, entry: dict[str, Any]) -> Result:
        uid, gid = entry.get("uid"), entry.get("gid")
        owner, grp = entry.get("owner"), entry.get("group")
        if uid is None and owner is None:
            return errored(f"host probe gave no owner for {path}")
        shown = f"{path} owner={owner or uid}:{grp or gid} ({uid}:{gid})"
        user_ok = uid == 0 if uid is not None else owner == user
        if group is None:
            group_ok = gid == 0 if gid is not None else grp == "root"
        else:
            group_ok = grp == group
        return (passed if user_ok and group_ok else failed)(one_line(shown))
    return pred


def _stat(ctx: Context, candidates: Sequence[str], pred: Predicate) -> Result:
    if miss := ctx.probe_missing():
        return miss
    unknown = None
    for path in candidates:
        entry = ctx.file(path)
        if entry is None:
            unknown = unknown or path
        elif entry.get("exists"):
            return pred(path, entry)
    if unknown:
        return ctx.unreported(unknown)
    return not_applicable(f"{candidates[0]} absent")


def _file_check(candidates: Sequence[str] | Callable[[Context], Sequence[str] | Result],
                pred: Predicate) -> CheckFn:
    def fn(ctx: Context, _: Context) -> Result:
        paths = candidates(ctx) if callable(candidates) else candidates
        if isinstance(paths, tuple) and paths and isinstance(paths[0], Status):
            return paths  # type: ignore[return-value] # a Result: no path to look at
        return _stat(ctx, paths, pred)  # type: ignore[arg-type]
    return fn


def _certs(pred: Predicate) -> CheckFn:
    """Every file under /etc/docker/certs.d (registry client certificates and CAs)."""
    def fn(ctx: Context, _: Context) -> Result:
        if miss := ctx.probe_missing():
            return miss
        top = ctx.file(CERTS_D)
        if top is None:
            return ctx.unreported(CERTS_D)
        if not top.get("exists"):
            return not_applicable(f"{CERTS_D} absent")
        files = sorted((p, e) for p, e in ((ctx.host or {}).get("files") or {}).items()
                       if p.startswith(CERTS_D + "/") and isinstance(e, dict) and e.get("exists")
                       and e.get("type") != "directory")
        if not files:
            return not_applicable(f"no files under {CERTS_D}")
        results = [pred(p, e) for p, e in files]
        bad = [r for r in results if r[0].value != "pass"]
        if bad:
            more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
            return bad[0][0], one_line(bad[0][1] + more)
        return passed(f"{len(files)} files under {CERTS_D} comply")
    return fn


_TLS_DEFAULTS = {"tlscacert": "/root/.docker/ca.pem", "tlscert": "/root/.docker/cert.pem",
                 "tlskey": "/root/.docker/key.pem"}


def _tls_file(key: str) -> Callable[[Context], Sequence[str] | Result]:
    """The file named by --tlscacert/--tlscert/--tlskey, or its default when TLS is on."""
    def paths(ctx: Context) -> Sequence[str] | Result:
        if ctx.host is None or ctx.daemon is None:
            return ctx.probe_missing() or ctx.unreported("the daemon settings")
        setting, unknown = ctx.setting_or_unknown(key)
        if setting is not None and setting.value:
            return [str(setting.value)]
        on = [ctx.daemon.get(k) for k in ("tls", "tlsverify")]
        if any(s is not None and as_bool(s.value) for s in on):
            return [_TLS_DEFAULTS[key]]
        if unknown:
            return unknown
        return not_applicable(f"daemon TLS not configured ({key} not set)")
    return paths


def _sockets(ctx: Context) -> Sequence[str]:
    return ctx.docker_sockets()


_ROOT = owned_by("root", None)
_OWN_FIX = "chown root:root {path}"
_MODE_FIX = "chmod {mode} {path}"


def _spec(id: str, title: str, cis: str, fix: str, severity: Severity = Severity.MEDIUM,
          soc2: tuple[str, ...] = ("CC6.1", "CC6.3"), version: int = 1) -> Callable[[CheckFn], CheckFn]:
    return check(id=id, title=title, scope=Scope.HOST, severity=severity,
                 controls={CIS: (cis,), SOC2: soc2}, remediation=fix, requires=PROBE, version=version)


_CERT_SOC2 = ("CC6.1", "CC6.7")

docker_service_owner = _spec("host.docker_service_owner", "docker.service unit is owned by root",
                             "3.1", _OWN_FIX.format(path="<docker.service unit>"))(
    _file_check(DOCKER_SERVICE, _ROOT))
docker_service_mode = _spec("host.docker_service_mode", "docker.service unit is mode 644 or tighter",
                            "3.2", _MODE_FIX.format(mode=644, path="<docker.service unit>"))(
    _file_check(DOCKER_SERVICE, mode_at_most(0o644)))
docker_socket_unit_owner = _spec("host.docker_socket_unit_owner", "docker.socket unit is owned by root",
                                 "3.3", _OWN_FIX.format(path="<docker.socket unit>"))(
    _file_check(DOCKER_SOCKET_UNIT, _ROOT))
docker_socket_unit_mode = _spec("host.docker_socket_unit_mode",
                                "docker.socket unit is mode 644 or tighter", "3.4",
                                _MODE_FIX.format(mode=644, path="<docker.socket unit>"))(
    _file_check(DOCKER_SOCKET_UNIT, mode_at_most(0o644)))
etc_docker_owner = _spec("host.etc_docker_owner", "/etc/docker is owned by root", "3.5",
                         _OWN_FIX.format(path="/etc/docker"))(_file_check(("/etc/docker",), _ROOT))
etc_docker_mode = _spec("host.etc_docker_mode", "/etc/docker is mode 755 or tighter", "3.6",
                        _MODE_FIX.format(mode=755, path="/etc/docker"))(
    _file_check(("/etc/docker",), mode_at_most(0o755)))
registry_certs_owner = _spec("host.registry_certs_owner", "Registry certificates are owned by root",
                             "3.7", "chown -R root:root /etc/docker/certs.d/", soc2=_CERT_SOC2)(
    _certs(_ROOT))
registry_certs_mode = _spec("host.registry_certs_mode",
                            "Registry certificates are mode 444 or tighter", "3.8",
                            "find /etc/docker/certs.d/ -type f -exec chmod 0444 {} \\;",
                            soc2=_CERT_SOC2)(_certs(mode_at_most(0o444)))
tls_ca_owner = _spec("host.tls_ca_owner", "TLS CA certificate is owned by root", "3.9",
                     _OWN_FIX.format(path="<tlscacert>"), soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlscacert"), _ROOT))
tls_ca_mode = _spec("host.tls_ca_mode", "TLS CA certificate is mode 444 or tighter", "3.10",
                    _MODE_FIX.format(mode=444, path="<tlscacert>"), soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlscacert"), mode_at_most(0o444)))
tls_cert_owner = _spec("host.tls_cert_owner", "Daemon TLS certificate is owned by root", "3.11",
                       _OWN_FIX.format(path="<tlscert>"), soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlscert"), _ROOT))
tls_cert_mode = _spec("host.tls_cert_mode", "Daemon TLS certificate is mode 444 or tighter", "3.12",
                      _MODE_FIX.format(mode=444, path="<tlscert>"), soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlscert"), mode_at_most(0o444)))
tls_key_owner = _spec("host.tls_key_owner", "Daemon TLS private key is owned by root", "3.13",
                      _OWN_FIX.format(path="<tlskey>"), Severity.HIGH, soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlskey"), _ROOT))
tls_key_mode = _spec("host.tls_key_mode", "Daemon TLS private key is mode 400", "3.14",
                     _MODE_FIX.format(mode=400, path="<tlskey>"), Severity.HIGH, soc2=_CERT_SOC2)(
    _file_check(_tls_file("tlskey"), mode_at_most(0o400)))
docker_sock_owner = _spec("host.docker_sock_owner", "Docker socket is owned by root with group docker",
                          "3.15", "chown root:docker /var/run/docker.sock", Severity.HIGH)(
    _file_check(_sockets, owned_by("root", "docker")))
docker_sock_mode = _spec("host.docker_sock_mode", "Docker socket is mode 660 or tighter", "3.16",
                         _MODE_FIX.format(mode=660, path="/var/run/docker.sock"), Severity.HIGH)(
    _file_check(_sockets, mode_at_most(0o660)))
def _config_file(ctx: Context) -> tuple[str, ...]:
    return (ctx.daemon_config_path(),)  # --config-file moves it away from /etc/docker/daemon.json


daemon_json_owner = _spec("host.daemon_json_owner", "daemon.json is owned by root", "3.17",
                          _OWN_FIX.format(path="/etc/docker/daemon.json"), version=2)(
    _file_check(_config_file, _ROOT))
daemon_json_mode = _spec("host.daemon_json_mode", "daemon.json is mode 644 or tighter", "3.18",
                         _MODE_FIX.format(mode=644, path="/etc/docker/daemon.json"), version=2)(
    _file_check(_config_file, mode_at_most(0o644)))
etc_default_docker_owner = _spec("host.etc_default_docker_owner", "/etc/default/docker is owned by root",
                                 "3.19", _OWN_FIX.format(path="/etc/default/docker"))(
    _file_check(("/etc/default/docker",), _ROOT))
etc_default_docker_mode = _spec("host.etc_default_docker_mode",
                                "/etc/default/docker is mode 644 or tighter", "3.20",
                                _MODE_FIX.format(mode=644, path="/etc/default/docker"))(
    _file_check(("/etc/default/docker",), mode_at_most(0o644)))
sysconfig_docker_mode = _spec("host.sysconfig_docker_mode",
                              "/etc/sysconfig/docker is mode 644 or tighter", "3.21",
                              _MODE_FIX.format(mode=644, path="/etc/sysconfig/docker"))(
    _file_check(("/etc/sysconfig/docker",), mode_at_most(0o644)))
sysconfig_docker_owner = _spec("host.sysconfig_docker_owner", "/etc/sysconfig/docker is owned by root",
                               "3.22", _OWN_FIX.format(path="/etc/sysconfig/docker"))(
    _file_check(("/etc/sysconfig/docker",), _ROOT))
containerd_sock_owner = _spec("host.containerd_sock_owner", "containerd socket is owned by root",
                              "3.23", _OWN_FIX.format(path="/run/containerd/containerd.sock"),
                              Severity.HIGH)(_file_check(CONTAINERD_SOCK, _ROOT))
containerd_sock_mode = _spec("host.containerd_sock_mode", "containerd socket is mode 660 or tighter",
                             "3.24", _MODE_FIX.format(mode=660, path="/run/containerd/containerd.sock"),
                             Severity.HIGH)(_file_check(CONTAINERD_SOCK, mode_at_most(0o660)))

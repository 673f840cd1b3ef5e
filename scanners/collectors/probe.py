"""The opt-in host probe: read host files through a short-lived read-only container.

Why a container: the scanner usually runs elsewhere and only holds a Docker API connection,
yet CIS sections 1 and 3 are about files on the Docker host (unit files, sockets, TLS keys,
daemon.json, audit rules). The probe starts a container from a LOCAL image (never pulled;
anyone able to tag images on the host already controls Docker) with:

* the host's ``/`` bind-mounted read-only at ``/host`` through the Mounts API
  (``type=bind, read_only``), never the ``-v`` Binds form, which creates missing host dirs;
* network ``none``, read-only rootfs, ``cap_drop=ALL`` + ``DAC_READ_SEARCH`` (read any
  file, nothing else), ``no-new-privileges``, a pid limit, log driver ``none``, user 0;
* ``userns_mode=host`` on userns-remapped daemons and ``label=disable`` under SELinux,
  without which the probe could not read host files;
* label ``posture.probe=1`` and ``auto_remove``, and a ``sleep`` as its only process; it is
  force-removed in ``finally`` whatever happens.

Then it ``exec``s a POSIX shell script that uses only ``sh``, ``stat``, ``cat``, ``ls`` (and
``readlink`` when present), so busybox, alpine and debian images all work. Absolute
symlinks on the host (``/var/run -> /run``) would resolve inside the *probe's* root, so the
script resolves every path component itself, inside ``/host``.

Caveat, Docker < 25: a read-only bind is read-only only at its top; submounts of the host
(``/proc``, ``/dev/shm``, tmpfs ``/run``) stay writable for the probe's uid 0 (without
DAC_OVERRIDE it can still write files owned by root; seen on 20.10). Engine 25+ makes it
recursively read-only when the client speaks API >= 1.44 (we negotiate the daemon's
newest) and the kernel is >= 5.12. The script never writes; keep it that way (its only
redirections go to /dev/null and stderr; a test checks).

Three execs at most: (1) fixed CIS paths, file contents, candidate ``dockerd`` processes;
Python then picks THIS daemon's process (``--data-root`` equals ``DockerRootDir``) and
parses its flags and config file; (2) its config file if not the default, and its
``mountinfo``; (3) stat the sockets and TLS files they name. Output records are framed by a
random per-run delimiter, so file contents cannot forge records.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import posixpath
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.types
from docker.api import APIClient

from scanners.collectors._common import Progress, call, check_deadline
from scanners.errors import ScanError, one_line
from scanners.redact import scrub_text

__all__ = [
    "DEFAULT_PROBE_IMAGE",
    "PROBE_LABEL",
    "HostEvidence",
    "parse_dockerd_flags",
    "run_probe",
]

DEFAULT_PROBE_IMAGE = "busybox:latest"
PROBE_LABEL = "posture.probe"
HostEvidence = dict[str, Any]

DEFAULT_DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DATA_ROOT = "/var/lib/docker"
_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_UNITS = ("docker.service", "docker.socket")
_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system")

#: Paths stat'ed on every host (CIS 1.1.x audit targets and 3.x file permissions).
FIXED_STAT_PATHS: tuple[str, ...] = (
    *(f"{d}/{u}" for d in _UNIT_DIRS for u in _UNITS),
    "/etc/docker",
    "/etc/docker/certs.d",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
    DEFAULT_DAEMON_JSON,
    "/etc/containerd",
    "/etc/containerd/config.toml",
    "/run/containerd",
    "/run/containerd/containerd.sock",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/usr/bin/dockerd",
    "/usr/sbin/dockerd",
    "/usr/bin/containerd",
    "/usr/sbin/containerd",
    "/usr/bin/runc",
    "/usr/sbin/runc",
)
#: (directory, name prefix): every entry starting with prefix is stat'ed.
FIXED_STAT_GLOBS: tuple[tuple[str, str], ...] = (
    ("/usr/bin", "containerd-shim"),
    ("/usr/sbin", "containerd-shim"),
)
#: Directories stat'ed with everything below them (two levels: certs.d/<registry>/<file>).
FIXED_STAT_TREES: tuple[str, ...] = ("/etc/docker/certs.d",)
#: Files whose contents are kept as evidence.
CONTENT_PATHS: tuple[str, ...] = (DEFAULT_DAEMON_JSON, "/etc/audit/audit.rules")
CONTENT_GLOBS: tuple[tuple[str, str], ...] = (("/etc/audit/rules.d", ".rules"),)
#: Files read to interpret the others, never kept.
_PASSWD, _GROUP = "/etc/passwd", "/etc/group"

# The script interprets its arguments: $1 is the delimiter, then ops:
#   S path | C path | T dir | SG dir prefix | CG dir suffix | P
# Each record: "<D> <op> <path>\n<body>\n<D> E <rc>\n".
PROBE_SCRIPT = r"""
D=$1; shift; H=${POSTURE_PROBE_ROOT:-/host}
resolve() {
  rest=${1#/}; cur=; n=0
  while [ -n "$rest" ]; do
    comp=${rest%%/*}
    case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
    case $comp in ''|.) continue ;; ..) cur=${cur%/*}; continue ;; esac
    if [ -L "$H$cur/$comp" ]; then
      n=$((n+1)); [ "$n" -gt 40 ] && return 1
      t=$(readlink "$H$cur/$comp" 2>/dev/null) || {
        t=$(ls -ld "$H$cur/$comp" 2>/dev/null) || return 1
        t=${t#*"$H$cur/$comp -> "}
      }
      case $t in /*) cur= ;; esac
      t=${t#/}
      if [ -n "$rest" ]; then rest=$t/$rest; else rest=$t; fi
    else
      cur=$cur/$comp
    fi
  done
  printf '%s\n' "${cur:-/}"
}
end() { printf '\n%s E %s\n' "$D" "$1"; }
# sh has no local variables: every function below uses its own names.
stat_one() {
  printf '%s S %s\n' "$D" "$1"
  if sr=$(resolve "$1"); then
    if [ -e "$H$sr" ]; then stat -c '%f %u %g' "$H$sr" 2>&1; end $?; else printf missing; end 0; fi
  else printf loop; end 1; fi
}
cat_one() {
  printf '%s C %s\n' "$D" "$1"
  if cr=$(resolve "$1") && [ -f "$H$cr" ]; then cat "$H$cr" 2>/dev/null; end $?; else end 404; fi
}
tree() {
  stat_one "$1"
  td=$(resolve "$1") || return 0
  [ -d "$H$td" ] || return 0
  for tf in "$H$td"/* "$H$td"/*/*; do
    { [ -e "$tf" ] || [ -L "$tf" ]; } && stat_one "$1${tf#"$H$td"}"
  done
}
stat_glob() {
  gd=$(resolve "$1") || return 0
  for gf in "$H$gd/$2"*; do
    { [ -e "$gf" ] || [ -L "$gf" ]; } && stat_one "$1${gf#"$H$gd"}"
  done
}
cat_glob() {
  kd=$(resolve "$1") || return 0
  for kf in "$H$kd"/*"$2"; do
    [ -e "$kf" ] && cat_one "$1${kf#"$H$kd"}"
  done
}
procs() {
  for p in "$H"/proc/[0-9]*; do
    c=; { read -r c < "$p/comm"; } 2>/dev/null
    [ "$c" = dockerd ] || continue
    printf '%s P %s\n' "$D" "${p##*/}"; cat "$p/cmdline" 2>/dev/null; end $?
  done
}
while [ $# -gt 0 ]; do
  op=$1; shift
  case $op in
    S) stat_one "$1"; shift ;;
    C) cat_one "$1"; shift ;;
    T) tree "$1"; shift ;;
    SG) stat_glob "$1" "$2"; shift 2 ;;
    CG) cat_glob "$1" "$2"; shift 2 ;;
    P) procs ;;
    *) echo "unknown op $op" >&2; exit 2 ;;
  esac
done
"""


# --------------------------------------------------------------------------- parsing


@dataclass
class Record:
    """One framed record of script output."""

    op: str
    path: str
    body: bytes
    rc: int


def parse_records(output: bytes, delimiter: str) -> list[Record]:
    """Split script output into records; anything outside the framing is ignored."""
    delim = delimiter.encode()
    parts = output.split(delim)
    records: list[Record] = []
    i = 1
    while i + 1 < len(parts):
        head, _, body = parts[i].partition(b"\n")
        tail = parts[i + 1]
        op, _, path = head.decode("utf-8", "replace").strip().partition(" ")
        if not tail.startswith(b" E "):
            i += 1
            continue
        try:
            rc = int(tail[3:].split(b"\n", 1)[0])
        except ValueError:
            rc = -1
        if body.endswith(b"\n"):
            body = body[:-1]
        records.append(Record(op, path, body, rc))
        i += 2
    return records


_TYPES = {
    stat.S_IFDIR: "directory",
    stat.S_IFREG: "file",
    stat.S_IFLNK: "symlink",
    stat.S_IFSOCK: "socket",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "char_device",
    stat.S_IFBLK: "block_device",
}


def parse_stat(body: bytes) -> dict[str, Any] | None:
    """``stat -c '%f %u %g'`` output (raw mode in hex, uid, gid) to a files entry."""
    fields = body.decode("ascii", "replace").split()
    if len(fields) != 3:
        return None
    try:
        raw, uid, gid = int(fields[0], 16), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    return {
        "exists": True,
        "type": _TYPES.get(stat.S_IFMT(raw), "unknown"),
        "mode": f"{stat.S_IMODE(raw):04o}",
        "uid": uid,
        "gid": gid,
    }


def parse_id_file(text: str) -> dict[int, str]:
    """``/etc/passwd`` or ``/etc/group`` to {id: name}; first entry wins, like libc."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            names.setdefault(int(fields[2]), fields[0])
    return names


def docker_group_members(group_text: str | None, passwd_text: str | None) -> list[str] | None:
    """Members of the host's ``docker`` group, including users whose primary group it is."""
    if group_text is None:
        return None
    for line in group_text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == "docker":
            members = {m for m in fields[3].split(",") if m}
            for pw in (passwd_text or "").splitlines():
                pf = pw.split(":")
                if len(pf) >= 4 and pf[3] == fields[2]:
                    members.add(pf[0])
            return sorted(members)
    return None


def _unescape_mountinfo(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _is_ancestor_or_self(mount_point: str, path: str) -> bool:
    if mount_point == "/":
        return True
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def parse_mountinfo(text: str, root_dir: str) -> tuple[list[dict[str, str]], bool]:
    """Mounts on the way to the Docker root dir, and whether it has a filesystem of its own.

    dockerd bind-mounts its root dir onto itself when ``/`` has private propagation (to make
    it shared); such a self-bind of the same device is not a separate partition (CIS 1.1.1).
    """
    root_dir = posixpath.normpath(root_dir)
    rows = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        a, b = pre.split(), post.split()
        if not sep or len(a) < 5 or len(b) < 2:
            continue
        mount_point = _unescape_mountinfo(a[4])
        if _is_ancestor_or_self(mount_point, root_dir):
            rows.append((mount_point, a[2], _unescape_mountinfo(a[3]), b[0], _unescape_mountinfo(b[1])))
    mounts, seen = [], set()
    for mp, _dev, _root, fstype, source in rows:
        key = (mp, fstype, source)
        if key not in seen:
            seen.add(key)
            mounts.append({"mount_point": mp, "fstype": fstype, "source": source})
    mounts.sort(key=lambda m: (len(m["mount_point"]), m["mount_point"]))
    # The last mount at a point is the visible one; compare its device to its parent's.
    at_root = [r for r in rows if r[0] == root_dir]
    parents = [r for r in rows if r[0] != root_dir]
    is_mount = False
    if at_root:
        top = at_root[-1]
        parent = max(parents, key=lambda r: len(r[0]), default=None)
        is_mount = parent is None or top[1] != parent[1] or top[2] == "/"
    return mounts, is_mount


# --------------------------------------------------------------------------- dockerd flags

_VALUE_FLAGS = {
    "-H": "host",
    "--host": "host",
    "--data-root": "data-root",
    "-g": "data-root",
    "--graph": "data-root",
    "--config-file": "config-file",
    "--tlscacert": "tlscacert",
    "--tlscert": "tlscert",
    "--tlskey": "tlskey",
    "--exec-root": "exec-root",
    "--pidfile": "pidfile",
    "-p": "pidfile",
}
_BOOL_FLAGS = {"--tls": "tls", "--tlsverify": "tlsverify"}


def parse_dockerd_flags(argv: list[str]) -> dict[str, list[str]]:
    """The flags of a dockerd command line we care about, as {name: [values]}.

    Handles ``--flag value``, ``--flag=value``, ``-H value``, ``-Hvalue`` and ``-H=value``
    (Go's pflag accepts all of them); boolean flags get "true"/"false".
    """
    flags: dict[str, list[str]] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, value = arg.partition("=")
        if name in _BOOL_FLAGS:
            flags.setdefault(_BOOL_FLAGS[name], []).append(value if eq else "true")
            continue
        if name in _VALUE_FLAGS:
            if not eq:
                if i >= len(argv):
                    break
                value = argv[i]
                i += 1
            flags.setdefault(_VALUE_FLAGS[name], []).append(value)
        elif len(arg) > 2 and arg[:2] in ("-H", "-g", "-p") and not arg.startswith("--"):
            flags.setdefault(_VALUE_FLAGS[arg[:2]], []).append(arg[2:])
    return flags


def _unix_paths(hosts: Iterable[str]) -> list[str]:
    paths = []
    for host in hosts:
        if host.startswith("unix://"):
            path = host[len("unix://") :]
            paths.append(path or "/var/run/docker.sock")
    return paths


def _config_list(config: dict[str, Any] | None, key: str) -> list[str]:
    value = (config or {}).get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def referenced_paths(flags: dict[str, list[str]], config: dict[str, Any] | None) -> list[str]:
    """Sockets and TLS files this daemon's flags and config name (CIS 3.x targets)."""
    paths = _unix_paths(flags.get("host", []) + _config_list(config, "hosts"))
    tls_on = any(v != "false" for v in flags.get("tls", []) + flags.get("tlsverify", []))
    tls_on = tls_on or bool((config or {}).get("tls")) or bool((config or {}).get("tlsverify"))
    for key, default in (("tlscacert", "ca.pem"), ("tlscert", "cert.pem"), ("tlskey", "key.pem")):
        given = flags.get(key, []) + _config_list(config, key)
        if given:
            paths += given
        elif tls_on:  # dockerd's defaults: $DOCKER_CERT_PATH or ~/.docker of root
            paths.append(f"/root/.docker/{default}")
    return list(dict.fromkeys(p for p in paths if p.startswith("/")))


def _data_root(flags: dict[str, list[str]], default_config: dict[str, Any] | None) -> str:
    if flags.get("data-root"):
        return flags["data-root"][-1]
    uses_default_config = not flags.get("config-file") or flags["config-file"][-1] == DEFAULT_DAEMON_JSON
    if uses_default_config and isinstance((default_config or {}).get("data-root"), str):
        return default_config["data-root"]  # type: ignore[index]
    return DEFAULT_DATA_ROOT


def choose_dockerd(
    candidates: dict[int, list[str]], root_dir: str, default_config: dict[str, Any] | None
) -> tuple[int | None, list[str] | None, str | None]:
    """Pick the dockerd process serving ``root_dir`` among all dockerd on the host.

    Returns (pid, argv, error). Several daemons may run on one host; they differ by data root.
    """
    want = posixpath.normpath(root_dir)
    matches = [
        (pid, argv)
        for pid, argv in sorted(candidates.items())
        if posixpath.normpath(_data_root(parse_dockerd_flags(argv), default_config)) == want
    ]
    if len(matches) == 1:
        return matches[0][0], matches[0][1], None
    if not matches and len(candidates) == 1:
        pid, argv = next(iter(candidates.items()))
        return pid, argv, None
    if not candidates:
        return None, None, "no dockerd process found in the host's /proc"
    if matches:
        return matches[0][0], matches[0][1], f"{len(matches)} dockerd processes use data root {want}"
    return None, None, f"{len(candidates)} dockerd processes found, none with data root {want}"


# --------------------------------------------------------------------------- the container


@dataclass
class Prober:
    """Runs the probe script in the probe container (tests subclass ``execute``)."""

    api: APIClient | None
    container_id: str
    deadline: float | None
    errors: list[str] = field(default_factory=list)

    def execute(self, cmd: list[str], doing: str) -> tuple[int | None, bytes, bytes]:
        """Run ``cmd`` in the probe container: (exit code, stdout, stderr)."""
        assert self.api is not None
        api = self.api
        exec_id = call(
            api.exec_create,
            self.container_id,
            cmd,
            user="0:0",
            environment=[_PATH_ENV],
            doing=doing,
            deadline=self.deadline,
        )["Id"]
        out = call(api.exec_start, exec_id, demux=True, doing=doing, deadline=self.deadline)
        stdout, stderr = out if isinstance(out, tuple) else (out, b"")
        exit_code = call(api.exec_inspect, exec_id, doing=doing, deadline=self.deadline).get("ExitCode")
        return exit_code, stdout or b"", stderr or b""

    def run(self, ops: list[str], doing: str) -> list[Record]:
        """Run the script with ``ops``; return its records."""
        check_deadline(self.deadline, doing)
        delimiter = "@@posture-" + secrets.token_hex(16) + "@@"
        cmd = ["sh", "-c", PROBE_SCRIPT, "posture-probe", delimiter, *ops]
        exit_code, stdout, stderr = self.execute(cmd, doing)
        records = parse_records(stdout, delimiter)
        if exit_code != 0 or (not records and any(op in ("S", "C") for op in ops)):
            detail = one_line((stderr or stdout).decode("utf-8", "replace"), 300)
            raise ScanError(
                f"the host probe script failed while {doing} (exit code {exit_code}): "
                f"{detail or 'no output'}; the probe image needs sh, stat, cat and ls"
            )
        if stderr.strip():
            self.errors.append(f"{doing}: " + one_line(stderr.decode("utf-8", "replace"), 300))
        return records


def _ensure_image(api: APIClient, image: str, deadline: float | None) -> None:
    try:
        call(api.inspect_image, image, doing="checking the probe image", deadline=deadline)
    except docker.errors.NotFound:
        raise ScanError(
            f"probe image {image!r} is not present on the Docker host and is never pulled; "
            f"provide it there (e.g. `docker pull {image}` or `docker load` on the host) "
            "or configure a local image that has sh, stat, cat and ls"
        ) from None


def _start_container(api: APIClient, image: str, info: dict[str, Any], deadline: float | None) -> str:
    lifetime = 300 if deadline is None else max(30, math.ceil(deadline - time.monotonic()) + 30)
    options = [str(o) for o in info.get("SecurityOptions") or []]
    userns = any("userns" in o for o in options)
    # Under SELinux the container type may not read host files at all; label=disable is the
    # documented way to let a read-only tool container see them.
    selinux = any("selinux" in o for o in options)
    host_config = api.create_host_config(
        mounts=[docker.types.Mount(target="/host", source="/", type="bind", read_only=True)],
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        cap_add=["DAC_READ_SEARCH"],
        security_opt=["no-new-privileges", *(["label=disable"] if selinux else [])],
        pids_limit=64,
        log_config=docker.types.LogConfig(type="none"),
        auto_remove=True,
        userns_mode="host" if userns else None,
    )
    created = call(
        api.create_container,
        image,
        entrypoint=["sleep"],
        command=[str(lifetime)],
        user="0:0",
        environment=[_PATH_ENV],
        labels={PROBE_LABEL: "1"},
        name=f"posture-probe-{secrets.token_hex(6)}",
        host_config=host_config,
        network_disabled=True,
        doing="creating the probe container",
        deadline=deadline,
    )
    return created["Id"]


def _decode(body: bytes) -> str:
    return body.decode("utf-8", "replace")


def run_probe(
    client: APIClient | docker.DockerClient,
    *,
    image: str,
    info: dict[str, Any],
    deadline: float | None = None,
    progress: Progress | None = None,
    on_started: Callable[[str], None] | None = None,
) -> HostEvidence:
    """Run the probe against the host of ``api`` and return its HostEvidence.

    ``info`` is this daemon's ``docker info`` (DockerRootDir tells its dockerd apart).
    ``on_started`` receives the probe container id (tests use it to inspect the container).
    Raises :class:`ScanError` subclasses; the probe container never outlives this call.
    """
    api: APIClient = getattr(client, "api", client)
    say = progress or (lambda _m: None)
    _ensure_image(api, image, deadline)
    say("probe: starting container")
    container_id = _start_container(api, image, info, deadline)
    try:
        call(api.start, container_id, doing="starting the probe container", deadline=deadline)
        if on_started:
            on_started(container_id)
        say("probe: reading host files")
        evidence = collect_host(Prober(api, container_id, deadline), info)
        evidence["probe_image"] = image
        return evidence
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(container_id, force=True)


def collect_host(probe: Prober, info: dict[str, Any]) -> HostEvidence:
    """Run the probe's execs and build HostEvidence (``probe_image`` left for the caller)."""
    root_dir = str(info.get("DockerRootDir") or DEFAULT_DATA_ROOT)
    ops: list[str] = []
    for p in FIXED_STAT_PATHS + (root_dir,):
        ops += ["S", p]
    for d, prefix in FIXED_STAT_GLOBS:
        ops += ["SG", d, prefix]
    for d in FIXED_STAT_TREES:
        ops += ["T", d]
    for p in CONTENT_PATHS + (_PASSWD, _GROUP, "/proc/1/mountinfo"):
        ops += ["C", p]
    for d, suffix in CONTENT_GLOBS:
        ops += ["CG", d, suffix]
    ops.append("P")
    records = probe.run(ops, "reading host files")
    check_deadline(probe.deadline, "running the host probe")

    raw_stats: dict[str, Record] = {}
    raw_files: dict[str, str | None] = {}
    candidates: dict[int, list[str]] = {}
    for rec in records:
        if rec.op == "S":
            raw_stats[rec.path] = rec
        elif rec.op == "C":
            raw_files[rec.path] = _decode(rec.body) if rec.rc == 0 else None
            if rec.rc not in (0, 404):
                probe.errors.append(f"cannot read {rec.path} (exit code {rec.rc})")
        elif rec.op == "P" and rec.rc == 0 and rec.body:
            argv = [_decode(a) for a in rec.body.rstrip(b"\0").split(b"\0")]
            with contextlib.suppress(ValueError):
                candidates[int(rec.path)] = argv

    default_text = raw_files.get(DEFAULT_DAEMON_JSON)
    default_config, _ = _parse_json(default_text)
    pid, argv, why = choose_dockerd(candidates, root_dir, default_config)
    if why:
        probe.errors.append(why)
    flags = parse_dockerd_flags(argv) if argv else {}
    config_path = (flags.get("config-file") or [DEFAULT_DAEMON_JSON])[-1]

    second: list[str] = []
    if config_path != DEFAULT_DAEMON_JSON:
        second += ["C", config_path, "S", config_path]
    if pid is not None:
        second += ["C", f"/proc/{pid}/mountinfo"]
    if second:
        for rec in probe.run(second, "reading the daemon's config and mounts"):
            if rec.op == "C":
                raw_files[rec.path] = _decode(rec.body) if rec.rc == 0 else None
            elif rec.op == "S":
                raw_stats[rec.path] = rec

    config_text = raw_files.get(config_path)
    config, config_error = _parse_json(config_text)
    third = [x for p in referenced_paths(flags, config) if p not in raw_stats for x in ("S", p)]
    if third:
        for rec in probe.run(third, "checking sockets and TLS files"):
            raw_stats[rec.path] = rec

    users = parse_id_file(raw_files.get(_PASSWD) or "")
    groups = parse_id_file(raw_files.get(_GROUP) or "")
    files: dict[str, Any] = {}
    for path, rec in sorted(raw_stats.items()):
        if rec.body == b"missing" and rec.rc == 0:
            files[path] = {"exists": False}
            continue
        entry = parse_stat(rec.body) if rec.rc == 0 else None
        if entry is None:
            probe.errors.append(f"cannot stat {path}: " + one_line(_decode(rec.body), 200))
            continue
        entry["owner"] = users.get(entry["uid"])
        entry["group"] = groups.get(entry["gid"])
        files[path] = entry

    contents = {
        p: scrub_text(t)
        for p, t in sorted(raw_files.items())
        if t is not None and (p in CONTENT_PATHS or p == config_path or _in_content_globs(p))
    }
    mountinfo = raw_files.get(f"/proc/{pid}/mountinfo") if pid is not None else None
    mountinfo = mountinfo or raw_files.get("/proc/1/mountinfo")
    if mountinfo is None:
        probe.errors.append("cannot read the host's mountinfo")
        mounts, is_mount = [], False
    else:
        mounts, is_mount = parse_mountinfo(mountinfo, root_dir)
    if raw_files.get(_GROUP) is None:
        probe.errors.append("cannot read the host's /etc/group")
    return {
        "probe_image": "",  # set by run_probe
        "files": files,
        "contents": contents,
        "daemon_json": _scrub_json(config) if config is not None else None,
        "daemon_json_error": config_error,
        "dockerd_cmdline": [scrub_text(a) for a in argv] if argv else None,
        "mounts": mounts,
        "docker_root_dir": root_dir,
        "docker_root_is_mount": is_mount,
        "docker_group_members": docker_group_members(raw_files.get(_GROUP), raw_files.get(_PASSWD)),
        "errors": probe.errors,
    }


def _in_content_globs(path: str) -> bool:
    return any(posixpath.dirname(path) == d and path.endswith(s) for d, s in CONTENT_GLOBS)


def _parse_json(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    if text is None:
        return None, None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, one_line(f"not valid JSON: {exc}", 300)
    if not isinstance(value, dict):
        return None, "not a JSON object"
    return value, None


def _scrub_json(value: Any) -> Any:
    """daemon.json may hold proxy URLs with credentials; scrub every string in it."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v) for v in value]
    return value


def host_path(path: str) -> str:
    """Where a host path appears inside the probe container (for tests and debugging)."""
    return os.path.join("/host", path.lstrip("/"))

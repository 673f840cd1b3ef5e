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
random per-run delimiter, so file contents cannot forge records. Parsing of that output,
of mountinfo and of dockerd flags lives in :mod:`scanners.collectors.probe_parse`.
"""

from __future__ import annotations

import contextlib
import json
import math
import posixpath
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors
import docker.types
from docker.api import APIClient

from scanners.collectors._common import Progress, call, check_deadline
from scanners.collectors.probe_parse import (
    DEFAULT_DAEMON_JSON,
    DEFAULT_DATA_ROOT,
    Record,
    choose_dockerd,
    docker_group_members,
    parse_dockerd_flags,
    parse_id_file,
    parse_mountinfo,
    parse_records,
    parse_stat,
    referenced_paths,
    seccomp_profile_path,
)
from scanners.collectors.shapes import guarded
from scanners.errors import FATAL, ProbeFailed, ScanError, one_line
from scanners.limits import DEFAULT_MAX_RESPONSE_BYTES, api_call, guard_of, hijacked_stream, read_multiplexed
from scanners.redact import scrub_text

__all__ = [
    "DEFAULT_PROBE_IMAGE",
    "FIXED_STAT_PATHS",
    "PROBE_LABEL",
    "PROBE_SCRIPT",
    "HostEvidence",
    "Prober",
    "choose_dockerd",
    "collect_host",
    "docker_group_members",
    "parse_dockerd_flags",
    "parse_mountinfo",
    "parse_records",
    "parse_stat",
    "referenced_paths",
    "run_probe",
]

DEFAULT_PROBE_IMAGE = "busybox:latest"
PROBE_LABEL = "posture.probe"
HostEvidence = dict[str, Any]

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
            guarded,
            api.exec_create,
            self.container_id,
            cmd,
            user="0:0",
            environment=[_PATH_ENV],
            shape="created",
            path="/containers/{id}/exec",
            doing=doing,
            deadline=self.deadline,
        )["Id"]
        stdout, stderr = call(_exec_output, api, exec_id, doing, doing=doing, deadline=self.deadline)
        exit_code = call(
            guarded, api.exec_inspect, exec_id, shape="object", path="/exec/{id}/json", doing=doing, deadline=self.deadline
        ).get("ExitCode")
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
            raise ProbeFailed(
                f"the host probe script failed while {doing} (exit code {exit_code}): "
                f"{detail or 'no output'}; the probe image needs sh, stat, cat and ls"
            )
        if stderr.strip():
            self.errors.append(f"{doing}: " + one_line(stderr.decode("utf-8", "replace"), 300))
        return records


def _exec_output(api: APIClient, exec_id: str, doing: str) -> tuple[bytes, bytes]:
    """Start an exec and read its (stdout, stderr) within the size cap and the call deadline.

    Not ``exec_start(demux=True)``: docker-py would read the output whole, with its socket
    timeout switched off, so a hostile daemon could stream forever or without end."""
    sock = api.exec_start(exec_id, socket=True)
    guard = guard_of(api)
    cap = guard.max_response_bytes if guard is not None else DEFAULT_MAX_RESPONSE_BYTES
    try:
        return read_multiplexed(hijacked_stream(sock), max_bytes=cap, doing=doing)
    finally:
        response = getattr(sock, "_response", None)  # docker-py keeps the HTTP response here
        with contextlib.suppress(Exception):
            sock.close()
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()


def _ensure_image(api: APIClient, image: str, deadline: float | None) -> None:
    try:
        call(api.inspect_image, image, doing="checking the probe image", deadline=deadline)
    except docker.errors.NotFound:
        raise ProbeFailed(
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
        guarded,
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
        shape="created",
        path="/containers/create",
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
    container_id = None
    try:
        container_id = _start_container(api, image, info, deadline)
        call(api.start, container_id, doing="starting the probe container", deadline=deadline)
        if on_started:
            on_started(container_id)
        say("probe: reading host files")
        evidence = collect_host(Prober(api, container_id, deadline), info)
        evidence["probe_image"] = image
        return evidence
    except ScanError as exc:
        if isinstance(exc, (ProbeFailed, *FATAL)):
            raise
        raise ProbeFailed(f"the host probe container failed: {exc.reason}") from exc
    except docker.errors.APIError as exc:  # the daemon answered, and refused the probe
        raise ProbeFailed(f"the daemon refused the host probe container: {one_line(exc.explanation or exc, 300)}") from exc
    finally:
        if container_id is not None:
            # Even after the scan deadline: a cleanup call gets a few seconds of its own.
            with contextlib.suppress(Exception), api_call("removing the probe container", cleanup=True):
                api.remove_container(container_id, force=True)


def failed_probe_evidence(image: str, info: dict[str, Any], reason: str) -> HostEvidence:
    """HostEvidence for a probe that could not run: no files, the reason in ``errors``, so
    host checks say ``error`` with it instead of passing or vanishing."""
    return {
        "probe_image": image, "files": {}, "contents": {}, "daemon_json": None, "daemon_json_error": None,
        "dockerd_cmdline": None, "mounts": [], "docker_root_dir": str(info.get("DockerRootDir") or DEFAULT_DATA_ROOT),
        "docker_root_is_mount": None, "docker_group_members": None, "errors": [reason],
    }


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
    seccomp_path = seccomp_profile_path(flags, config)
    if seccomp_path:  # judged by 2.18: a custom profile may allow everything
        third += ["C", seccomp_path]
    if third:
        for rec in probe.run(third, "checking sockets, TLS files and the seccomp profile"):
            if rec.op == "C":
                raw_files[rec.path] = _decode(rec.body) if rec.rc == 0 else None
            else:
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
        if t is not None and (p in CONTENT_PATHS or p in (config_path, seccomp_path) or _in_content_globs(p))
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

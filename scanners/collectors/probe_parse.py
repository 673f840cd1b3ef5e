"""Pure parsing for the host probe: script output, stat modes, mountinfo, dockerd flags.

(The dockerd command line itself is parsed by :mod:`scanners.dockerd_args`.)

Kept apart from :mod:`scanners.collectors.probe` (which runs containers) so that all of it
can be tested on plain strings, and because host data is attacker-adjacent: every parser
here tolerates garbage and never raises on malformed input.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scanners import dockerd_args

__all__ = [
    "DEFAULT_DAEMON_JSON",
    "DEFAULT_DATA_ROOT",
    "Record",
    "choose_dockerd",
    "docker_group_members",
    "parse_dockerd_flags",
    "parse_id_file",
    "parse_mountinfo",
    "parse_records",
    "parse_stat",
    "referenced_paths",
]

DEFAULT_DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DATA_ROOT = "/var/lib/docker"


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


def parse_dockerd_flags(argv: list[str]) -> dict[str, list[str]]:
    """The dockerd command line as {flag name: [values]} (``host``, ``data-root``, ``tls``...).

    The parsing is :mod:`scanners.dockerd_args` (every pflag form dockerd accepts), shared
    with the checks; flags dockerd does not define are left out."""
    return dockerd_args.parse(argv).flags


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


def seccomp_profile_path(flags: dict[str, list[str]], config: dict[str, Any] | None) -> str | None:
    """The daemon's custom seccomp profile file (--seccomp-profile or "seccomp-profile"), if any.
    "unconfined" and "builtin" are not files."""
    given = flags.get("seccomp-profile", []) + _config_list(config, "seccomp-profile")
    path = given[-1] if given else None
    return path if isinstance(path, str) and path.startswith("/") else None


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

"""The probe's shell script and parsing, run for real against a fake host tree (no Docker).

The script honours ``POSTURE_PROBE_ROOT`` instead of ``/host``, so the very same script is
run here by dash + coreutils, busybox sh + busybox applets, and busybox without ``readlink``
(the ``ls -ld`` fallback), on a tree with the traps real hosts have: absolute symlinks
(``/var/run -> /run``), a symlink loop, a unix socket, file contents that look like framing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from scanners.collectors.probe import (
    PROBE_SCRIPT,
    Prober,
    choose_dockerd,
    collect_host,
    docker_group_members,
    parse_dockerd_flags,
    parse_mountinfo,
    parse_records,
    parse_stat,
    referenced_paths,
)
from tests.support.dockerd import find_busybox

ROOT_DIR = "/var/lib/docker-b"
HOSTILE = b'{"debug": true}\n@@posture-0000@@ S /etc/shadow\n0 E 0\n\x00\xff tail without newline'
MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "30 22 254:16 / /var rw - xfs /dev/vdb rw\n"
    "31 30 254:16 /lib/docker-b /var/lib/docker-b rw - xfs /dev/vdb rw\n"
    "40 22 0:5 / /proc rw - proc proc rw\n"
    "41 22 254:32 / /srv/with\\040space rw - ext4 /dev/vdc rw\n"
)


def _write(root: Path, path: str, data: bytes | str, mode: int = 0o644) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    p.chmod(mode)


def _link(root: Path, path: str, target: str) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to(target)


@pytest.fixture(scope="module")
def fake_host(tmp_path_factory):
    root = tmp_path_factory.mktemp("h1host")
    _write(root, "/etc/docker/daemon.json", HOSTILE)
    (root / "etc/docker").chmod(0o750)
    _write(root, "/etc/docker/certs.d/reg:5000/ca.crt", "CA", 0o444)
    _write(root, "/etc/docker/certs.d/reg:5000/client.key", "KEY", 0o400)
    _write(root, "/lib/systemd/system/docker.service", "[Service]\n")
    _link(root, "/etc/systemd/system/docker.service", "/lib/systemd/system/docker.service")
    (root / "run").mkdir()
    _link(root, "/var/run", "/run")  # absolute: must resolve inside the fake root
    _link(root, "/etc/loop1", "/etc/loop2")
    _link(root, "/etc/loop2", "loop1")
    _write(root, "/usr/bin/containerd-shim-runc-v2", "", 0o755)
    _write(root, "/usr/bin/containerd-shim", "", 0o755)
    _write(root, "/etc/audit/rules.d/docker.rules", "-w /usr/bin/dockerd -k docker\n")
    _write(root, "/etc/audit/rules.d/other.conf", "not a rules file")
    _write(
        root,
        "/etc/passwd",
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nci:x:1001:999::/:/bin/sh\n",
    )
    _write(root, "/etc/group", "root:x:0:\ndocker:x:999:alice,bob\n")
    _write(root, "/proc/1/mountinfo", MOUNTINFO)
    _write(root, "/proc/1/comm", "systemd\n")
    _write(root, "/proc/1/cmdline", b"/sbin/init\x00")
    for pid, argv in {
        "200": ["/usr/bin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"],
        "300": ["dockerd", "--data-root=/var/lib/docker-b", "-Hunix:///run/b.sock", "--tlsverify",
                "--tlscacert", "/etc/docker/b/ca.pem", "--config-file", "/etc/docker/b.json"],
    }.items():  # fmt: skip
        _write(root, f"/proc/{pid}/comm", "dockerd\n")
        _write(root, f"/proc/{pid}/cmdline", b"\x00".join(a.encode() for a in argv) + b"\x00")
        _write(root, f"/proc/{pid}/mountinfo", MOUNTINFO)
    _write(
        root, "/etc/docker/b.json", json.dumps({"hosts": ["unix:///run/b2.sock"], "tlskey": "/etc/docker/b/key.pem"})
    )
    _write(root, "/etc/docker/b/key.pem", "k", 0o600)
    _write(root, "/etc/docker/b/ca.pem", "c", 0o644)
    (root / ROOT_DIR.lstrip("/")).mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "run/b.sock"))
    os.chmod(root / "run/b.sock", 0o660)
    yield root
    sock.close()


def _busybox_bin(tmp_path: Path, applets: tuple[str, ...]) -> str:
    busybox = find_busybox()
    if busybox is None:
        pytest.skip("busybox is not installed (apt-get install busybox-static)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in applets:
        (bindir / applet).symlink_to(busybox)
    return str(bindir)


@pytest.fixture(params=["dash+coreutils", "busybox", "busybox-no-readlink"])
def shell_env(request, tmp_path):
    if request.param == "dash+coreutils":
        if not shutil.which("dash"):
            pytest.skip("dash is not installed")
        bindir = tmp_path / "bin"
        bindir.mkdir()
        (bindir / "sh").symlink_to(shutil.which("dash"))
        return f"{bindir}:/usr/bin:/bin"
    applets = ("sh", "stat", "cat", "ls", "readlink")
    if request.param == "busybox-no-readlink":
        applets = applets[:-1]
    return _busybox_bin(tmp_path, applets)


class LocalProber(Prober):
    """Runs the script with a local shell against the fake host tree."""

    def __init__(self, root: Path, path: str) -> None:
        super().__init__(api=None, container_id="local", deadline=None)
        self.root, self.path = root, path
        self.calls = 0

    def execute(self, cmd, doing):
        self.calls += 1
        env = {"PATH": self.path, "POSTURE_PROBE_ROOT": str(self.root)}
        proc = subprocess.run(cmd, capture_output=True, env=env, timeout=30, check=False)
        return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def evidence(fake_host, shell_env):
    prober = LocalProber(fake_host, shell_env)
    ev = collect_host(prober, {"DockerRootDir": ROOT_DIR})
    ev["_calls"] = prober.calls
    return ev


def test_it_resolves_absolute_symlinks_inside_the_host_root(evidence):
    files = evidence["files"]
    assert files["/etc/systemd/system/docker.service"]["type"] == "file"
    assert files["/var/run/docker.sock"] == {"exists": False}
    assert files["/usr/lib/systemd/system/docker.service"] == {"exists": False}


def test_it_stats_mode_owner_and_type(evidence):
    d = evidence["files"]["/etc/docker"]
    assert d["type"] == "directory" and d["mode"] == "0750" and d["owner"] is not None
    assert evidence["files"]["/etc/docker/certs.d/reg:5000/client.key"]["mode"] == "0400"
    assert evidence["files"]["/etc/docker/certs.d/reg:5000/ca.crt"]["type"] == "file"
    assert evidence["files"]["/usr/bin/containerd-shim-runc-v2"]["mode"] == "0755"
    assert "/usr/bin/containerd-shim" in evidence["files"]


def test_it_reads_contents_byte_exact_even_when_they_look_like_framing(evidence):
    assert evidence["contents"]["/etc/docker/daemon.json"] == HOSTILE.decode("utf-8", "replace")
    assert evidence["daemon_json"] is not None or evidence["daemon_json_error"] is not None


def test_it_reads_only_rules_files_of_rules_d(evidence):
    assert evidence["contents"]["/etc/audit/rules.d/docker.rules"].startswith("-w /usr/bin/dockerd")
    assert "/etc/audit/rules.d/other.conf" not in evidence["contents"]
    assert "/etc/passwd" not in evidence["contents"] and "/etc/group" not in evidence["contents"]


def test_it_picks_the_dockerd_of_this_data_root_and_follows_its_config(evidence):
    assert evidence["dockerd_cmdline"][0] == "dockerd"
    assert "--data-root=/var/lib/docker-b" in evidence["dockerd_cmdline"]
    # --config-file is this daemon's daemon.json
    assert evidence["daemon_json"] == {"hosts": ["unix:///run/b2.sock"], "tlskey": "/etc/docker/b/key.pem"}
    assert "/etc/docker/b.json" in evidence["contents"]
    files = evidence["files"]
    assert files["/run/b.sock"]["type"] == "socket" and files["/run/b.sock"]["mode"] == "0660"
    assert files["/run/b2.sock"] == {"exists": False}
    assert files["/etc/docker/b/ca.pem"]["mode"] == "0644"
    assert files["/etc/docker/b/key.pem"]["mode"] == "0600"
    assert evidence["_calls"] == 3


def test_it_reports_mounts_towards_the_docker_root(evidence):
    assert evidence["mounts"] == [
        {"mount_point": "/", "fstype": "ext4", "source": "/dev/vda"},
        {"mount_point": "/var", "fstype": "xfs", "source": "/dev/vdb"},
        {"mount_point": "/var/lib/docker-b", "fstype": "xfs", "source": "/dev/vdb"},
    ]
    # a bind of a directory of /var's own device onto itself is not a partition of its own
    assert evidence["docker_root_is_mount"] is False
    assert evidence["docker_root_dir"] == ROOT_DIR


def test_it_lists_docker_group_members_from_the_host_files(evidence):
    assert evidence["docker_group_members"] == ["alice", "bob", "ci"]


def test_it_reports_symlink_loops_as_errors(fake_host, shell_env):
    prober = LocalProber(fake_host, shell_env)
    records = prober.run(["S", "/etc/loop1", "S", "/etc/docker"], "testing")
    assert [(r.op, r.path, r.rc) for r in records] == [("S", "/etc/loop1", 1), ("S", "/etc/docker", 0)]


# --------------------------------------------------------------------------- pure parsing


def test_it_ignores_forged_records_inside_file_contents():
    d = "@@posture-" + "ab" * 16 + "@@"
    body = b"x\n@@posture-0000@@ S /etc/shadow\n" + b"@@posture-" + b"cd" * 16 + b"@@ E 0\n"
    out = f"{d} C /etc/docker/daemon.json\n".encode() + body + f"\n{d} E 0\n".encode()
    out += f"{d} S /etc/docker\n41ed 0 0\n{d} E 0\n".encode()
    records = parse_records(out, d)
    assert [(r.op, r.path) for r in records] == [("C", "/etc/docker/daemon.json"), ("S", "/etc/docker")]
    assert records[0].body == body


def test_it_parses_raw_stat_modes():
    assert parse_stat(b"41ed 0 0") == {"exists": True, "type": "directory", "mode": "0755", "uid": 0, "gid": 0}
    assert parse_stat(b"c1b0 0 999")["type"] == "socket"
    assert parse_stat(b"c1b0 0 999")["mode"] == "0660"
    assert parse_stat(b"89ed 0 0")["mode"] == "4755"  # setuid regular file
    assert parse_stat(b"stat: cannot stat") is None


@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ["dockerd", "-H", "unix:///a.sock", "--host=tcp://0.0.0.0:2376"],
            {"host": ["unix:///a.sock", "tcp://0.0.0.0:2376"]},
        ),
        (["dockerd", "-Hunix:///b.sock", "-H=fd://"], {"host": ["unix:///b.sock", "fd://"]}),
        (["dockerd", "--data-root", "/d", "-g", "/old"], {"data-root": ["/d", "/old"]}),
        (["dockerd", "--tlsverify", "--tls=false"], {"tlsverify": ["true"], "tls": ["false"]}),
        (["dockerd", "--tlscert=/c.pem", "--unknown", "x"], {"tlscert": ["/c.pem"]}),
        (["dockerd", "--host"], {}),
    ],
)
def test_it_parses_dockerd_flags_in_every_pflag_form(argv, expected):
    assert parse_dockerd_flags(argv) == expected


def test_it_names_default_tls_files_when_tls_is_on_without_paths():
    paths = referenced_paths({"tlsverify": ["true"], "host": ["unix://"]}, None)
    assert paths == ["/var/run/docker.sock", "/root/.docker/ca.pem", "/root/.docker/cert.pem", "/root/.docker/key.pem"]


def test_it_chooses_among_several_dockerd_by_data_root():
    candidates = {10: ["dockerd"], 20: ["dockerd", "--data-root", "/srv/docker/"]}
    assert choose_dockerd(candidates, "/srv/docker", None)[0] == 20
    assert choose_dockerd(candidates, "/var/lib/docker", None)[0] == 10
    assert choose_dockerd(candidates, "/var/lib/docker", {"data-root": "/x"})[0] is None
    pid, argv, why = choose_dockerd(candidates, "/elsewhere", None)
    assert pid is None and "2 dockerd" in why
    assert choose_dockerd({7: ["dockerd"]}, "/elsewhere", None)[0] == 7  # the only one
    assert choose_dockerd({}, "/x", None)[2]


def test_it_counts_a_separate_filesystem_as_a_docker_root_mount():
    text = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:17 / /var/lib/docker rw - ext4 /dev/sdb1 rw\n"
    mounts, is_mount = parse_mountinfo(text, "/var/lib/docker")
    assert is_mount and mounts[-1] == {"mount_point": "/var/lib/docker", "fstype": "ext4", "source": "/dev/sdb1"}
    assert parse_mountinfo(text, "/var/lib/dockerish")[1] is False
    spaced = parse_mountinfo(MOUNTINFO, "/srv/with space/docker")[0]
    assert spaced[-1]["mount_point"] == "/srv/with space"


def test_it_returns_none_without_a_docker_group():
    assert docker_group_members("root:x:0:\n", "") is None
    assert docker_group_members(None, None) is None
    assert docker_group_members("docker:x:5:\n", "") == []


def test_the_script_is_plain_posix():
    # no bashisms that busybox/dash would reject; no writing redirections except /dev/null
    code = "\n".join(line for line in PROBE_SCRIPT.splitlines() if not line.lstrip().startswith("#"))
    for forbidden in ("[[", "local ", "function ", "$'", "<<<", "source "):
        assert forbidden not in code
    redirections = [seg.split()[0] for seg in code.replace(" -> ", "").split(">")[1:]]  # not ls -l arrows
    assert set(redirections) <= {"/dev/null", "&2", "/dev/null;", "&1;", "&1", "/dev/null)", "&2;"}, redirections

"""A real, private ``dockerd`` for tests, and a busybox base image made without pulling.

    daemon = PrivateDaemon(tls=bundle, extra_args=["--icc=false"], daemon_json={...})
    daemon.start()            # waits until /_ping answers; raises with the log tail if not
    client = daemon.client()  # docker.DockerClient on its unix socket
    make_base_image(client)   # "local/busybox:1"
    daemon.kill()             # SIGKILL (daemon-dies-mid-scan tests); start() again works
    daemon.stop()             # removes containers, SIGTERM, waits, removes its directory

Each daemon lives in its own short temp dir (``/tmp/h1XXXX``: unix socket paths are limited
to 108 bytes) with its own data root, exec root (and therefore its own containerd), pidfile
and socket, and ALWAYS ``--bridge=none --iptables=false --ip-masq=false``, so it never
touches the machine's networking or the machine's own daemon. Only its own process is
ever signalled, by PID.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import docker
import docker.errors

from tests.support.certs import TLSBundle

__all__ = ["BASE_IMAGE", "BUSYBOX_APPLETS", "PrivateDaemon", "find_busybox", "find_dockerd", "make_base_image"]

BASE_IMAGE = "local/busybox:1"
BUSYBOX_APPLETS = (
    "sh", "ash", "stat", "cat", "ls", "sleep", "id", "readlink", "echo", "true", "false", "test",
    "[", "env", "printf", "head", "tail", "wc", "grep", "sed", "mkdir", "touch", "rm", "ps",
    "hostname", "whoami", "chmod", "chown", "cp", "mv", "ln", "find", "kill", "date", "uname",
    "nc", "wget", "tr", "cut", "sort", "xargs", "dd", "mount", "df", "top", "su", "ping",
)  # fmt: skip
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


def find_dockerd() -> str | None:
    """Path of the dockerd binary, or None."""
    found = shutil.which("dockerd")
    if found:
        return found
    return "/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None


def find_busybox() -> str | None:
    """A static busybox binary (package busybox-static), or None."""
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(path):
            return path
    return shutil.which("busybox")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateDaemon:
    """One private dockerd subprocess; see the module docstring."""

    def __init__(
        self,
        *,
        tls: TLSBundle | None = None,
        extra_args: list[str] | None = None,
        daemon_json: dict | None = None,
        prefix: str = "h1",
        start_timeout: float = 60.0,
    ) -> None:
        self.dir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.socket_path = os.path.join(self.dir, "docker.sock")
        self.data_root = os.path.join(self.dir, "root")
        self.exec_root = os.path.join(self.dir, "exec")
        self.pidfile = os.path.join(self.dir, "pid")
        self.log_path = os.path.join(self.dir, "log")
        self.config_path: str | None = None
        self.tls = tls
        self.tcp_port: int | None = None
        self.tls_files: dict[str, str] = {}
        self.extra_args = list(extra_args or [])
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        #: Tag of the busybox image once make_base_image() ran on it (the fixtures do).
        self.base_image: str | None = None
        if daemon_json is not None:
            self.config_path = os.path.join(self.dir, "daemon.json")
            Path(self.config_path).write_text(json.dumps(daemon_json, indent=2))

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """The unix:// URL of its socket."""
        return f"unix://{self.socket_path}"

    @property
    def tcp_url(self) -> str:
        """The tcp:// URL of its TLS listener (only with ``tls=``)."""
        if self.tcp_port is None:
            raise RuntimeError("this daemon has no TLS listener (create it with tls=...)")
        return f"tcp://127.0.0.1:{self.tcp_port}"

    def argv(self) -> list[str]:
        dockerd = find_dockerd()
        if dockerd is None:
            raise RuntimeError("dockerd is not installed (apt-get install docker.io busybox-static)")
        args = [
            dockerd,
            "--host", self.url,
            "--data-root", self.data_root,
            "--exec-root", self.exec_root,
            "--pidfile", self.pidfile,
            "--bridge=none", "--iptables=false", "--ip-masq=false",
            "--shutdown-timeout=2",
        ]  # fmt: skip
        if self.tls is not None:
            if not self.tls_files:
                self.tls_files = self.tls.write_server_files(self.dir)
            self.tcp_port = self.tcp_port or _free_port()
            args += ["--host", f"tcp://127.0.0.1:{self.tcp_port}", "--tlsverify"]
            args += [f"--{flag}={path}" for flag, path in sorted(self.tls_files.items())]
        if self.config_path:
            args += ["--config-file", self.config_path]
        return args + self.extra_args

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PrivateDaemon:
        """Start dockerd and wait until it answers a ping on its socket."""
        if self.running:
            return self
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)  # left behind by kill()
        self._wait_for_old_containerd()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the subprocess
        self.proc = subprocess.Popen(
            self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with docker.APIClient(base_url=self.url, version="1.41", timeout=5) as api:
                    if api.ping():
                        return self
            except Exception as exc:  # not up yet
                last = str(exc)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"dockerd did not answer within {self.start_timeout}s ({last}):\n{self.log_tail()}")

    def _wait_for_old_containerd(self, timeout: float = 15.0) -> None:
        """After kill(), our containerd dies by its parent-death signal, but not instantly.

        A restarted dockerd that finds its pid still alive (or not yet reaped) "adopts" it
        and then waits forever for its socket, so wait until it is really gone.
        """
        pidfile = Path(self.exec_root, "containerd", "containerd.pid")
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, IndexError):
                break  # gone
            if self.dir.encode() not in cmdline and state != "Z":
                break  # the pid was reused by someone else's process
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            pidfile.unlink()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def kill(self) -> None:
        """SIGKILL dockerd (its containerd and containers survive until start()/stop())."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, *, remove: bool = True) -> None:
        """Stop cleanly (dockerd then stops its containers and containerd); remove the dir.

        A killed daemon is started once more first, so that it cleans up its containerd,
        shims and mounts itself.
        """
        if self.proc is not None and not self.running:
            with contextlib.suppress(Exception):
                self.start()
        if self.running:
            assert self.proc is not None
            with contextlib.suppress(Exception), contextlib.closing(self.client(timeout=10)) as client:
                for c in client.api.containers(all=True):
                    with contextlib.suppress(Exception):
                        client.api.remove_container(c["Id"], force=True, v=True)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait(timeout=30)
        if remove:
            self._unmount_leftovers()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _unmount_leftovers(self) -> None:
        """A daemon that was SIGKILLed leaves its root's self-bind (and overlays) mounted."""
        if self.running:
            return
        prefix = self.dir.rstrip("/") + "/"
        try:
            lines = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return
        points = [line.split()[4] for line in lines if len(line.split()) > 4]
        for point in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------------ clients

    def client(self, timeout: float = 30.0) -> docker.DockerClient:
        """A docker-py client on the unix socket (API 1.41, the daemon's own version)."""
        return docker.DockerClient(base_url=self.url, version="1.41", timeout=timeout)

    def __enter__(self) -> PrivateDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PrivateDaemon({self.url}, pid={self.pid})"


def _rootfs_tar(busybox: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        with open(busybox, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, text in (("etc/passwd", _PASSWD), ("etc/group", _GROUP)):
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(blob), 0o644
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def make_base_image(client: docker.DockerClient, tag: str = BASE_IMAGE) -> str:
    """Import a busybox image (``docker import`` of a tiny rootfs); returns its id.

    Nothing can be pulled here, so every test image starts from this one. Idempotent.
    """
    with contextlib.suppress(docker.errors.ImageNotFound):
        return client.api.inspect_image(tag)["Id"]
    busybox = find_busybox()
    if busybox is None:
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    repo, _, version = tag.rpartition(":")
    client.api.import_image_from_data(
        _rootfs_tar(busybox), repository=repo, tag=version, changes=["ENV PATH=/bin", 'CMD ["sh"]']
    )
    return client.api.inspect_image(tag)["Id"]

"""An SSH server on 127.0.0.1 that answers ``docker system dial-stdio`` by piping the channel
to a unix socket (a real dockerd's, or a tests.support.fake_docker endpoint's), exactly what
docker-py's ssh:// transport runs remotely. There is no sshd here: this is paramiko's server.

    with SSHGateway("/path/to/docker.sock") as gw:
        gw.write_client_files(home / ".ssh")          # id_rsa + known_hosts, as an operator would
        HostConfig(url=gw.url)                        # ssh://scanner@127.0.0.1:PORT

HOME must point at the directory holding ``.ssh`` (monkeypatch.setenv("HOME", ...)).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import paramiko

__all__ = ["SSHGateway"]

USER = "scanner"


def _pipe(src, dst) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError, EOFError):
                s.close()


class _Server(paramiko.ServerInterface):
    def __init__(self, user_key: paramiko.PKey, docker_socket: str) -> None:
        self.user_key, self.docker_socket = user_key, docker_socket

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        ok = username == USER and key.get_base64() == self.user_key.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        if command != b"docker system dial-stdio":
            return False
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.docker_socket)
        threading.Thread(target=_pipe, args=(channel, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, channel), daemon=True).start()
        return True


class SSHGateway:
    """ssh://scanner@127.0.0.1:PORT in front of the unix socket ``docker_socket``."""

    def __init__(self, docker_socket: str) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self.user_key = paramiko.ECDSAKey.generate()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self.url = f"ssh://{USER}@127.0.0.1:{self.port}"
        self._transports: list[paramiko.Transport] = []
        self._docker_socket = docker_socket
        threading.Thread(target=self._accept, name="ssh-gateway", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            t.start_server(server=_Server(self.user_key, self._docker_socket))
            self._transports.append(t)

    def write_client_files(self, ssh_dir: Path) -> None:
        """The client key and this server's host key, where paramiko looks for them."""
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        self.user_key.write_private_key_file(str(ssh_dir / "id_ecdsa"))
        (ssh_dir / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}\n"
        )

    def close(self) -> None:
        self._listener.close()
        for t in self._transports:
            with contextlib.suppress(Exception):
                t.close()

    def __enter__(self) -> SSHGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

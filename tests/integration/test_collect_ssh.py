"""ssh:// through docker-py's paramiko transport, against a real SSH server on 127.0.0.1.

There is no sshd here, so the server is paramiko's server side: it authenticates one public
key and answers ``docker system dial-stdio`` (what the transport runs remotely) by piping
the channel to the private daemon's unix socket, exactly as the docker CLI would. The
client side reads ``~/.ssh`` like in production; HOME points at a temp dir for the test.
"""

from __future__ import annotations

import os
import socket
import threading

import paramiko
import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.errors import HostUnreachable

pytestmark = pytest.mark.docker


def _pipe(src, dst) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        for s in (src, dst):
            try:
                s.close()
            except (OSError, EOFError):  # the client already hung up
                pass


class _Server(paramiko.ServerInterface):
    def __init__(self, user_key: paramiko.PKey, docker_socket: str) -> None:
        self.user_key, self.docker_socket = user_key, docker_socket

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        ok = username == "scanner" and key.get_base64() == self.user_key.get_base64()
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


@pytest.fixture(scope="module")
def ssh_server(dockerd):
    host_key = paramiko.RSAKey.generate(2048)
    user_key = paramiko.RSAKey.generate(2048)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    transports: list[paramiko.Transport] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(host_key)
            t.start_server(server=_Server(user_key, dockerd.socket_path))
            transports.append(t)

    threading.Thread(target=accept, daemon=True).start()
    yield {"port": port, "host_key": host_key, "user_key": user_key}
    listener.close()
    for t in transports:
        t.close()


@pytest.fixture
def home(tmp_path, monkeypatch, ssh_server):
    """A HOME with the client key and the server's host key, as an operator would set up."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    ssh_server["user_key"].write_private_key_file(str(ssh / "id_rsa"))
    (ssh / "known_hosts").write_text(
        f"[127.0.0.1]:{ssh_server['port']} ssh-rsa {ssh_server['host_key'].get_base64()}\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    return ssh


def test_it_scans_over_ssh(dockerd, ssh_server, home):
    cfg = HostConfig(url=f"ssh://scanner@127.0.0.1:{ssh_server['port']}", timeout=10)
    with open_client(cfg) as client:
        assert client.api.api_version == "1.41"
        snapshot = collect(client)
    assert snapshot["daemon"]["info"]["DockerRootDir"] == dockerd.data_root


def test_it_refuses_an_unknown_ssh_host_key(ssh_server, home):
    os.unlink(home / "known_hosts")
    with pytest.raises(HostUnreachable, match="SSH connection failed.*known_hosts"):
        with open_client(HostConfig(url=f"ssh://scanner@127.0.0.1:{ssh_server['port']}", timeout=10)):
            pass


def test_it_reports_ssh_authentication_failures(ssh_server, home):
    with pytest.raises(HostUnreachable, match="SSH authentication failed"):
        with open_client(HostConfig(url=f"ssh://intruder@127.0.0.1:{ssh_server['port']}", timeout=10)):
            pass

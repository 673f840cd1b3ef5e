"""ssh:// through docker-py's paramiko transport, against a real SSH server on 127.0.0.1.

There is no sshd here, so the server is paramiko's server side (tests/support/ssh_gateway.py): it authenticates one public
key and answers ``docker system dial-stdio`` (what the transport runs remotely) by piping
the channel to the private daemon's unix socket, exactly as the docker CLI would. The
client side reads ``~/.ssh`` like in production; HOME points at a temp dir for the test.
"""

from __future__ import annotations

import os

import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.errors import HostUnreachable
from tests.support.ssh_gateway import SSHGateway

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def ssh_server(dockerd):
    with SSHGateway(dockerd.socket_path) as gateway:
        yield gateway


@pytest.fixture
def home(tmp_path, monkeypatch, ssh_server):
    """A HOME with the client key and the server's host key, as an operator would set up."""
    ssh_server.write_client_files(tmp_path / ".ssh")
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path / ".ssh"


def test_it_scans_over_ssh(dockerd, ssh_server, home):
    cfg = HostConfig(url=ssh_server.url, timeout=10)
    with open_client(cfg) as client:
        assert client.api.api_version == "1.41"
        snapshot = collect(client)
    assert snapshot["daemon"]["info"]["DockerRootDir"] == dockerd.data_root


def test_it_refuses_an_unknown_ssh_host_key(ssh_server, home):
    os.unlink(home / "known_hosts")
    with pytest.raises(HostUnreachable, match="SSH connection failed.*known_hosts"):
        with open_client(HostConfig(url=ssh_server.url, timeout=10)):
            pass


def test_it_reports_ssh_authentication_failures(ssh_server, home):
    with pytest.raises(HostUnreachable, match="SSH authentication failed"):
        with open_client(HostConfig(url=ssh_server.url.replace("scanner@", "intruder@"), timeout=10)):
            pass

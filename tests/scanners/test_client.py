"""Connecting: classification against real local endpoints that are not Docker (no dockerd).

Every endpoint here is a unix socket in a temp dir or 127.0.0.1; nothing else is contacted.
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator

import pytest

from scanners.client import CLIENT_MAX_API, HostConfig, negotiate_api_version, open_client, validate_tls
from scanners.errors import ConfigError, HostUnreachable, NotDocker, ScanError, ScanTimeout, TLSFailure, classify
from tests.support.certs import make_bundle


@pytest.fixture(scope="module")
def bundle():
    return make_bundle()


@pytest.fixture
def sockdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="h1c", dir="/tmp") as d:
        yield d


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _handler(status: int, body: bytes, headers: dict[str, str]):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

        def address_string(self):  # unix sockets have no client address
            return "local"

    return Handler


def _serve(server) -> socketserver.BaseServer:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def http_unix(sockdir):
    servers = []

    def start(status=404, body=b"404 page not found", headers=None):
        path = os.path.join(sockdir, f"s{len(servers)}.sock")
        servers.append(_serve(_UnixHTTPServer(path, _handler(status, body, headers or {}))))
        return f"unix://{path}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _raw_unix_server(path: str, reply: bytes | None) -> socket.socket:
    """Accept connections; send ``reply`` and close, or (None) never answer."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)
    held = []

    def loop():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            if reply is None:
                held.append(conn)
                continue
            conn.recv(4096)
            conn.sendall(reply)
            conn.close()

    threading.Thread(target=loop, daemon=True).start()
    return srv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we return


def _open(cfg: HostConfig) -> None:
    with open_client(cfg):
        pass


def test_it_reports_a_missing_socket_as_unreachable(sockdir):
    with pytest.raises(HostUnreachable, match="no such socket"):
        _open(HostConfig(url=f"unix://{sockdir}/missing.sock"))


def test_it_reports_a_closed_port_as_unreachable():
    with pytest.raises(HostUnreachable, match="connection refused"):
        _open(HostConfig(url=f"tcp://127.0.0.1:{_closed_port()}", timeout=5))


def test_it_reports_a_plain_file_as_not_docker(sockdir):
    path = os.path.join(sockdir, "file")
    open(path, "w").close()
    with pytest.raises(NotDocker, match="not a socket"):
        _open(HostConfig(url=f"unix://{path}"))


def test_it_reports_garbage_answers_as_not_docker(sockdir):
    path = os.path.join(sockdir, "garbage.sock")
    srv = _raw_unix_server(path, b"220 smtp.example ESMTP ready\r\n")
    try:
        with pytest.raises(NotDocker) as err:
            _open(HostConfig(url=f"unix://{path}", timeout=5))
        assert "\n" not in str(err.value)
    finally:
        srv.close()


def test_it_reports_an_http_404_server_as_not_docker(http_unix):
    with pytest.raises(NotDocker, match="HTTP 404"):
        _open(HostConfig(url=http_unix(), timeout=5))


def test_it_reports_an_ok_without_docker_headers_as_not_docker(http_unix):
    with pytest.raises(NotDocker, match="without an Api-Version header"):
        _open(HostConfig(url=http_unix(200, b"OK"), timeout=5))


def test_it_times_out_on_a_socket_that_never_answers(sockdir):
    path = os.path.join(sockdir, "mute.sock")
    srv = _raw_unix_server(path, None)
    try:
        with pytest.raises(ScanTimeout, match="did not answer in time"):
            _open(HostConfig(url=f"unix://{path}", timeout=0.5))
    finally:
        srv.close()


def test_it_negotiates_down_to_the_daemons_api_version(http_unix):
    url = http_unix(200, b"OK", {"Api-Version": "1.41", "Server": "Docker/20.10.24 (linux)"})
    with open_client(HostConfig(url=url, timeout=5)) as client:
        assert client.api.api_version == "1.41"
        assert client.api.trust_env is False


def test_it_never_asks_for_more_than_docker_py_knows():
    assert negotiate_api_version("1.99") == CLIENT_MAX_API
    assert negotiate_api_version("1.41") == "1.41"
    with pytest.raises(NotDocker):
        negotiate_api_version("1.12")
    with pytest.raises(NotDocker):
        negotiate_api_version("banana")


@pytest.mark.parametrize("url", ["http://127.0.0.1:2375", "npipe:////./pipe/docker", "127.0.0.1:2375", ""])
def test_it_rejects_unsupported_urls(url):
    with pytest.raises(ConfigError, match="unix://, tcp:// or ssh://"):
        _open(HostConfig(url=url))


def test_it_rejects_certificates_on_unix_sockets(bundle):
    with pytest.raises(ConfigError):
        _open(HostConfig(url="unix:///tmp/h1none.sock", tls_ca=bundle.ca.cert_pem))


def test_it_never_shows_key_material_in_repr(bundle):
    cfg = HostConfig(url="tcp://127.0.0.1:1", tls_key=bundle.client.key_pem)
    assert "PRIVATE" not in repr(cfg)


# --------------------------------------------------------------------------- TLS material


def _tls(bundle, **kw) -> HostConfig:
    values = {
        "url": "tcp://127.0.0.1:1",
        "tls_ca": bundle.ca.cert_pem,
        "tls_cert": bundle.client.cert_pem,
        "tls_key": bundle.client.key_pem,
    }
    values.update(kw)
    return HostConfig(**values)


def test_it_accepts_matching_material(bundle):
    validate_tls(_tls(bundle))


def test_it_says_when_the_client_certificate_expired(bundle):
    cfg = _tls(bundle, tls_cert=bundle.expired_client.cert_pem, tls_key=bundle.expired_client.key_pem)
    expected = bundle.expired_client.cert.not_valid_after_utc.strftime("%Y-%m-%d")
    with pytest.raises(TLSFailure, match=f"client certificate expired on {expected}"):
        validate_tls(cfg)


def test_it_says_when_cert_and_key_do_not_belong_together(bundle):
    with pytest.raises(TLSFailure, match="do not belong together"):
        validate_tls(_tls(bundle, tls_key=bundle.foreign_client.key_pem))


@pytest.mark.parametrize(
    "field,value,role",
    [
        ("tls_ca", "not a pem", "CA certificate"),
        ("tls_cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "client certificate"),
        ("tls_key", "garbage", "client key"),
    ],
)
def test_it_names_the_unreadable_pem(bundle, field, value, role):
    with pytest.raises(TLSFailure, match=role):
        validate_tls(_tls(bundle, **{field: value}))


def test_it_wants_both_halves_of_a_key_pair(bundle):
    with pytest.raises(TLSFailure, match="key is required"):
        validate_tls(_tls(bundle, tls_key=None))


def test_it_validates_before_connecting(bundle):
    cfg = _tls(bundle, tls_cert=bundle.expired_client.cert_pem, tls_key=bundle.expired_client.key_pem)
    with pytest.raises(TLSFailure, match="expired"):
        _open(cfg)


def test_scan_errors_are_one_line():
    err = ScanError("first line\n  Traceback (most recent call last):\n  more")
    assert str(err) == "first line Traceback (most recent call last): more"
    assert isinstance(classify(ValueError("x\ny")), ScanError) and "\n" not in str(classify(ValueError("x\ny")))

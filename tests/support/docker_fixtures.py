"""pytest plugin: real private Docker daemons for tests (listed in tests/conftest.py).

Fixtures:

``dockerd`` (session)
    A started :class:`~tests.support.dockerd.PrivateDaemon` on a unix socket, with the
    busybox base image ``local/busybox:1`` imported (``dockerd.base_image``). Shared by the
    whole session: tests must remove what they create (use the factories below).
``dockerd_tls`` (session)
    :class:`TLSDaemon`: a second daemon that also listens on ``tcp://127.0.0.1:PORT`` with
    ``--tlsverify``; ``.bundle`` holds CA, server and client certs (valid, expired, signed by
    another CA); ``.host_config(**overrides)`` gives a ``scanners.client.HostConfig`` with the
    valid client identity.
``make_container`` (function) / ``make_module_container`` (module)
    :class:`ContainerFactory` on ``dockerd``: ``make_container(name=..., env=[...],
    user="65534", cap_add=["NET_ADMIN"], read_only=True, ...)`` creates (and by default
    starts) a ``sleep`` container and returns its id; everything it made is force-removed
    at the end of the test (or module).

When dockerd or busybox is missing or we are not root, tests using these fixtures are
skipped with what to install, or FAIL when ``CI=true`` (CI must not silently skip).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import pytest

from tests.support.certs import TLSBundle, make_bundle
from tests.support.dockerd import BASE_IMAGE, PrivateDaemon, find_busybox, find_dockerd, make_base_image

__all__ = ["ContainerFactory", "TLSDaemon", "require_docker"]

_INSTALL = "apt-get install docker.io busybox-static"


def require_docker() -> None:
    """Skip (or fail under CI=true) unless private daemons can run here."""
    problem = None
    if find_dockerd() is None:
        problem = f"dockerd is not installed ({_INSTALL})"
    elif find_busybox() is None:
        problem = f"busybox is not installed ({_INSTALL})"
    elif os.geteuid() != 0:
        problem = "starting a private dockerd needs root (run the Docker tests as root)"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the Docker tests cannot run: {problem}", pytrace=False)
    pytest.skip(problem)


class ContainerFactory:
    """Creates containers of known configuration on one daemon and removes them later."""

    def __init__(self, client: docker.DockerClient, image: str = BASE_IMAGE) -> None:
        self.client = client
        self.image = image
        self.created: list[str] = []

    def __call__(
        self,
        name: str | None = None,
        *,
        image: str | None = None,
        command: list[str] | tuple[str, ...] = ("sleep", "3600"),
        start: bool = True,
        env: list[str] | dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        user: str | None = None,
        healthcheck: dict[str, Any] | None = None,
        **host_config: Any,
    ) -> str:
        """Create (and start) one container; ``host_config`` goes to ``create_host_config``.

        E.g. ``cap_add=["NET_ADMIN"], read_only=True, pid_mode="host",
        mounts=[docker.types.Mount(...)], mem_limit="64m"``. Returns the container id.
        """
        api = self.client.api
        cid = api.create_container(
            image or self.image,
            command=list(command),
            name=name,
            environment=env,
            labels=labels,
            user=user,
            healthcheck=healthcheck,
            host_config=api.create_host_config(network_mode=host_config.pop("network_mode", "none"), **host_config),
        )["Id"]
        self.created.append(cid)
        if start:
            api.start(cid)
        return cid

    def remove_all(self) -> None:
        for cid in reversed(self.created):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.client.api.remove_container(cid, force=True, v=True)
        self.created.clear()


@dataclass
class TLSDaemon:
    """A daemon listening on tcp+TLS, and the certificate material to reach it."""

    daemon: PrivateDaemon
    bundle: TLSBundle

    @property
    def url(self) -> str:
        return self.daemon.tcp_url

    def host_config(self, **overrides: Any):  # -> scanners.client.HostConfig
        from scanners.client import HostConfig

        values: dict[str, Any] = {
            "url": self.url,
            "tls_ca": self.bundle.ca.cert_pem,
            "tls_cert": self.bundle.client.cert_pem,
            "tls_key": self.bundle.client.key_pem,
            "timeout": 10.0,
        }
        values.update(overrides)
        return HostConfig(**values)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[PrivateDaemon]:
    require_docker()
    daemon = PrivateDaemon()
    try:
        daemon.start()
        with contextlib.closing(daemon.client()) as client:
            make_base_image(client)
        daemon.base_image = BASE_IMAGE
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def dockerd_tls() -> Iterator[TLSDaemon]:
    require_docker()
    daemon = PrivateDaemon(tls=make_bundle())
    try:
        daemon.start()
        assert daemon.tls is not None
        yield TLSDaemon(daemon=daemon, bundle=daemon.tls)
    finally:
        daemon.stop()


@pytest.fixture
def make_container(dockerd: PrivateDaemon) -> Iterator[ContainerFactory]:
    client = dockerd.client()
    factory = ContainerFactory(client)
    try:
        yield factory
    finally:
        factory.remove_all()
        client.close()


@pytest.fixture(scope="module")
def make_module_container(dockerd: PrivateDaemon) -> Iterator[ContainerFactory]:
    client = dockerd.client()
    factory = ContainerFactory(client)
    try:
        yield factory
    finally:
        factory.remove_all()
        client.close()

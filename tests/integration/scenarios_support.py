"""Helpers of the scenario matrix (tests/integration/test_scenarios.py).

Images built FROM the imported busybox (nothing can be pulled), containers created from a
hardened baseline with one change each, private daemons started and stopped in parallel, and
findings turned into ``{CIS v1.8.0 id: Verdict}`` per resource through the real registry.
"""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from posture.catalog import load_catalogs
from scanners import registry
from scanners.checks.base import Finding, Kind, Scope
from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.runner import run_checks
from tests.support.docker_fixtures import ContainerFactory
from tests.support.dockerd import BASE_IMAGE, PrivateDaemon, make_base_image

CIS = "cis-docker-1.8.0"
CIS_160 = "cis-docker-1.6.0"
PASS, FAIL, NA, MANUAL = "pass", "fail", "not_applicable", "manual"

#: Marks "remove this option from the hardened baseline" in a scenario's changes.
DROP = object()

CATALOGS = load_catalogs()


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    status: str
    detail: str
    check: str

    def __repr__(self) -> str:  # short in assertion diffs
        return f"{self.status}({self.check}: {self.detail})"


def cis_ids(spec) -> tuple[str, ...]:
    return registry.controls_of(spec, CATALOGS).get(CIS, ())


def scope_ids(scope: Scope, *, automated_only: bool = True) -> frozenset[str]:
    """Every CIS v1.8.0 id spoken for by a check of this scope."""
    return frozenset(
        cid
        for spec in registry.all_checks()
        if spec.scope is scope and (spec.kind is Kind.AUTOMATED or not automated_only)
        for cid in cis_ids(spec)
    )


def verdicts(findings: Iterable[Finding], resource_type: str, resource: str) -> dict[str, Verdict]:
    """{CIS id: Verdict} of one resource; two checks deciding one id for it is an error here."""
    out: dict[str, Verdict] = {}
    for f in findings:
        if f.resource_type != resource_type or f.resource != resource:
            continue
        for cid in cis_ids(registry.get(f.check_id)):
            assert cid not in out, f"{resource}: CIS {cid} decided twice ({out[cid]} and {f.check_id})"
            out[cid] = Verdict(str(f.status), f.detail, f.check_id)
    return out


def statuses(found: Mapping[str, Verdict], ids: Iterable[str]) -> dict[str, str | None]:
    return {cid: (found[cid].status if cid in found else None) for cid in sorted(ids)}


def assert_expected(found: Mapping[str, Verdict], expect: Mapping[str, tuple[str, str]], what: str) -> None:
    """Each id has exactly the expected status and its detail names the deciding field."""
    got = {cid: found.get(cid) for cid in expect}
    wrong = {
        cid: (want, got[cid])
        for cid, want in expect.items()
        if got[cid] is None or got[cid].status != want[0] or want[1] not in got[cid].detail
    }
    assert not wrong, f"{what}: (expected status, detail substring) vs actual: {wrong}"


# --------------------------------------------------------------------------- images


def build_image(client: docker.DockerClient, tag: str, dockerfile: str, files: Mapping[str, bytes] | None = None) -> str:
    """Build ``dockerfile`` (FROM the local busybox) with the classic builder; returns the id.

    ``network_mode="none"``: the private daemons have no bridge, so RUN steps get no network.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(files or {})}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    image, _logs = client.images.build(
        fileobj=buf, custom_context=True, pull=False, tag=tag, rm=True, forcerm=True, network_mode="none"
    )
    return image.id


# --------------------------------------------------------------------------- containers


def create(
    factory: ContainerFactory,
    name: str,
    *,
    image: str,
    options: Mapping[str, Any],
    start: bool = True,
    user: str | None = None,
    healthcheck: dict[str, Any] | None = None,
    ports: Sequence[int] = (),
) -> tuple[str, str | None]:
    """Create (and start) one container; (id, start error or None). Removed with the factory.

    Like ``ContainerFactory.__call__`` but also sets ``ExposedPorts`` (``ports``), which the
    factory cannot, and keeps a refused start as data instead of raising.
    """
    api = factory.client.api
    opts = dict(options)
    cid = api.create_container(
        image,
        command=["sleep", "3600"],
        name=name,
        user=user,
        healthcheck=healthcheck,
        ports=list(ports) or None,
        host_config=api.create_host_config(network_mode=opts.pop("network_mode", "none"), **opts),
    )["Id"]
    factory.created.append(cid)
    if not start:
        return cid, None
    try:
        api.start(cid)
    except docker.errors.APIError as exc:
        return cid, str(exc.explanation or exc)
    return cid, None


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is DROP:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- collection


def collect_and_check(cfg: HostConfig, *, probe_image: str | None) -> tuple[dict, list[Finding]]:
    """The real collector and the real checks: (snapshot, findings)."""
    with open_client(cfg) as client:
        snapshot = collect(client, probe_image=probe_image, deadline=time.monotonic() + 120)
    return snapshot, run_checks(snapshot)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- daemon matrix


@dataclass
class DaemonRun:
    """One private daemon of the daemon matrix: how it was started and what was found."""

    name: str
    daemon: PrivateDaemon
    #: Containers to create on it before collecting: name -> create() keyword arguments.
    containers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    snapshot: dict | None = None
    findings: list[Finding] = field(default_factory=list)
    container_errors: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    def daemon_verdicts(self) -> dict[str, Verdict]:
        self.require()
        return verdicts(self.findings, "daemon", "daemon")

    def host_verdicts(self) -> dict[str, Verdict]:
        self.require()
        return verdicts(self.findings, "host", "host")

    def container_verdicts(self, name: str) -> dict[str, Verdict]:
        self.require()
        return verdicts(self.findings, "container", name)

    def require(self) -> None:
        assert self.error is None, f"daemon scenario {self.name} could not be built: {self.error}"


def _bring_up(run: DaemonRun) -> DaemonRun:
    t0 = time.monotonic()
    try:
        run.daemon.start()
        client = run.daemon.client()
        try:
            make_base_image(client)
            factory = ContainerFactory(client)  # removed with the daemon (stop() removes all)
            for cname, kwargs in run.containers.items():
                _cid, err = create(factory, cname, image=BASE_IMAGE, **kwargs)
                run.container_errors[cname] = err
        finally:
            client.close()
        run.snapshot, run.findings = collect_and_check(HostConfig(url=run.daemon.url, timeout=30), probe_image=BASE_IMAGE)
    except Exception as exc:  # noqa: BLE001 - reported by the scenario's own test
        run.error = f"{type(exc).__name__}: {exc}"
    run.seconds = time.monotonic() - t0
    return run


def bring_up_all(runs: Sequence[DaemonRun]) -> None:
    """Start, populate and collect every daemon in parallel (each ~1 s alone)."""
    with ThreadPoolExecutor(max_workers=min(8, len(runs) or 1)) as pool:
        list(pool.map(_bring_up, runs))


def stop_all(runs: Sequence[DaemonRun]) -> None:
    def stop(run: DaemonRun) -> None:
        with contextlib.suppress(Exception):
            run.daemon.stop()

    with ThreadPoolExecutor(max_workers=min(8, len(runs) or 1)) as pool:
        list(pool.map(stop, runs))

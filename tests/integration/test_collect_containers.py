"""collect() against a real private dockerd: containers and images of known configuration."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import time

import docker.types
import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.errors import ScanTimeout
from scanners.snapshot import MAX_STRING_BYTES, split

pytestmark = pytest.mark.docker

CANARY = "CANARY-c0ll3ct"
IMAGE = "h1test/secrets:1"
DOCKERFILE = f"""
FROM local/busybox:1
ARG BUILD_TOKEN
ENV API_TOKEN={CANARY}-env PUBLIC_SETTING=on
ENV LEGACY_PASSWORD {CANARY}-legacy
RUN echo "$BUILD_TOKEN" > /dev/null
USER 65534
"""


def _build(client) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = DOCKERFILE.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    for _ in client.api.build(
        fileobj=buf, custom_context=True, tag=IMAGE, buildargs={"BUILD_TOKEN": f"{CANARY}-arg"}, rm=True, decode=True
    ):
        pass


def _create_raw(client, name: str, body: bytes) -> str:
    """POST a hand-made JSON body: the only way to send bytes that are not UTF-8."""
    api = client.api
    resp = api.post(
        api._url("/containers/create"), params={"name": name}, data=body, headers={"Content-Type": "application/json"}
    )
    return api._result(resp, json=True)["Id"]


@pytest.fixture(scope="module")
def scene(dockerd, make_module_container):
    client = make_module_container.client
    _build(client)
    tmp = tempfile.mkdtemp(prefix="h1m", dir="/tmp")
    make = make_module_container
    make(
        "h1-web",
        image=IMAGE,
        env=[f"DB_PASSWORD={CANARY}-pw", f"HARMLESS=postgres://u:{CANARY}@db/x", "PLAIN=1"],
        cap_add=["NET_ADMIN", "SYS_TIME"],
        user="65534:65534",
        read_only=True,
        mounts=[
            docker.types.Mount("/data", tmp, type="bind", read_only=True),
            docker.types.Mount("/tmp", "", type="tmpfs"),
        ],
        pids_limit=40,
        mem_limit="32m",
    )
    make("h1-stopped", start=False, command=["true"])
    make("h1-bigl", start=False, labels={"big": "x" * (1024 * 1024)})
    body = (
        b'{"Image": "local/busybox:1", "Cmd": ["true"], "Labels": {"nul": "a\\u0000b", '
        b'"bad\\u0000key": "v", "bytes": "caf\xc3\xa9 \xff\xfe end", "surrogate": "\\udc80"}}'
    )
    make.created.append(_create_raw(client, "h1-weird", body))
    with open_client(HostConfig(url=dockerd.url)) as c:
        progress: list[str] = []
        snap = collect(c, progress=progress.append)
    yield {"snapshot": snap, "progress": progress, "client": client}
    make.remove_all()
    client.api.remove_image(IMAGE, force=True)
    shutil.rmtree(tmp, ignore_errors=True)


def _container(snap, name):
    return next(c for c in snap["containers"] if c["name"] == name)


def test_it_collects_running_and_stopped_containers_with_their_configuration(scene):
    snap = scene["snapshot"]
    web = _container(snap, "h1-web")["inspect"]
    assert web["State"]["Running"] is True
    assert sorted(web["HostConfig"]["CapAdd"]) == ["NET_ADMIN", "SYS_TIME"]
    assert web["Config"]["User"] == "65534:65534"
    assert web["HostConfig"]["ReadonlyRootfs"] is True
    assert web["HostConfig"]["PidsLimit"] == 40 and web["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert [(m["Type"], m["Destination"], m["RW"]) for m in web["Mounts"]] == [
        ("bind", "/data", False),
        ("tmpfs", "/tmp", True),
    ]
    assert _container(snap, "h1-stopped")["inspect"]["State"]["Status"] == "created"
    assert snap["scanner_version"] == "1" and snap["host"] is None and snap["warnings"] == []


def test_it_keeps_env_names_and_flags_but_no_value(scene):
    env = _container(scene["snapshot"], "h1-web")["inspect"]["Config"]["Env"]
    flags = {e["name"]: e["looks_secret"] for e in env}
    assert flags["DB_PASSWORD"] and flags["HARMLESS"] and flags["API_TOKEN"] and flags["LEGACY_PASSWORD"]
    assert not flags["PLAIN"] and not flags["PUBLIC_SETTING"] and not flags["PATH"]


def test_no_canary_appears_anywhere_in_the_snapshot(scene):
    text = json.dumps(scene["snapshot"])
    assert CANARY not in text
    image = next(i for i in scene["snapshot"]["images"] if IMAGE in i["tags"])
    history = " | ".join(h["CreatedBy"] for h in image["history"])
    assert "BUILD_TOKEN=<redacted>" in history and "ENV LEGACY_PASSWORD=<redacted>" in history


def test_it_makes_huge_and_binary_labels_storable(scene):
    snap = scene["snapshot"]
    big = _container(snap, "h1-bigl")["inspect"]["Config"]["Labels"]["big"]
    assert len(big.encode()) <= MAX_STRING_BYTES
    assert f"…[truncated: {1024 * 1024} bytes, sha256=" in big
    weird = _container(snap, "h1-weird")["inspect"]["Config"]["Labels"]
    assert weird["nul"] == "a\ufffdb" and "bad\ufffdkey" in weird
    assert weird["bytes"].startswith("café ") and weird["bytes"].endswith(" end")
    text = json.dumps(snap, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate anywhere
    assert "\\u0000" not in json.dumps(snap) and "\x00" not in text


def test_it_sorts_containers_by_name_and_images_by_id(scene):
    snap = scene["snapshot"]
    names = [c["name"] for c in snap["containers"]]
    assert names == sorted(names)
    ids = [i["id"] for i in snap["images"]]
    assert ids == sorted(ids) and all(i.startswith("sha256:") for i in ids)


def test_it_splits_into_the_contract_kinds(scene):
    kinds = {kind for kind, _key, _payload in split(scene["snapshot"])}
    assert kinds == {"daemon.info", "daemon.version", "image", "container"}


def test_it_reports_progress(scene):
    progress = scene["progress"]
    n = len(scene["snapshot"]["containers"])
    assert progress[0] == "reading daemon info"
    assert f"inspecting containers {n}/{n}" in progress
    assert all("\n" not in m and len(m) < 120 for m in progress)


def test_it_gives_identical_evidence_for_an_unchanged_host(dockerd, scene):
    with open_client(HostConfig(url=dockerd.url)) as c:
        again = collect(c)
    first = [json.dumps(p, sort_keys=True) for p in split(scene["snapshot"])]
    second = [json.dumps(p, sort_keys=True) for p in split(again)]
    assert first == second


def test_it_skips_a_container_removed_between_list_and_inspect(dockerd, scene, make_container):
    doomed = make_container("h1-doomed", start=False, command=["true"])
    with open_client(HostConfig(url=dockerd.url)) as c:
        real_list = c.api.containers

        def list_then_remove(*args, **kwargs):
            listed = real_list(*args, **kwargs)
            scene["client"].api.remove_container(doomed, force=True)  # really gone: the daemon answers 404
            return listed

        c.api.containers = list_then_remove
        snap = collect(c)
    assert snap["warnings"] == [
        {"resource_type": "container", "resource": doomed, "message": "removed between list and inspect"}
    ]
    assert "h1-doomed" not in [x["name"] for x in snap["containers"]]
    assert "h1-web" in [x["name"] for x in snap["containers"]]


def test_it_stops_at_the_deadline(dockerd, scene):
    with open_client(HostConfig(url=dockerd.url)) as c:
        with pytest.raises(ScanTimeout, match="deadline"):
            collect(c, deadline=time.monotonic() - 1)


def test_it_stops_at_the_deadline_in_the_middle_of_inspecting(dockerd, scene):
    deadline = time.monotonic() + 1.0

    def progress(msg: str) -> None:
        if msg.startswith("inspecting containers 0/"):  # time runs out right here
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)

    with open_client(HostConfig(url=dockerd.url)) as c:
        with pytest.raises(ScanTimeout, match="inspecting container"):
            collect(c, deadline=deadline, progress=progress)


def test_it_reads_images_with_tags(scene):
    image = next(i for i in scene["snapshot"]["images"] if IMAGE in i["tags"])
    assert image["inspect"]["Config"]["User"] == "65534"
    assert [e["name"] for e in image["inspect"]["Config"]["Env"]] == [
        "PATH",
        "API_TOKEN",
        "PUBLIC_SETTING",
        "LEGACY_PASSWORD",
    ]

"""The host probe on the real machine, through the private daemon.

The machine is the daemon's host, so the probe's view can be checked against ``os.stat``.
"""

from __future__ import annotations

import contextlib
import grp
import io
import json
import os
import pwd
import tarfile
import time

import docker.errors
import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.collectors.probe import FIXED_STAT_PATHS, PROBE_LABEL, run_probe
from scanners.errors import ProbeFailed, ScanTimeout
from scanners.runner import run_checks
from tests.support.dockerd import BASE_IMAGE, find_busybox

pytestmark = pytest.mark.docker

SLEEP_ONLY_IMAGE = "h1test/sleep-only:1"


def _probe_containers(client) -> list[dict]:
    return client.api.containers(all=True, filters={"label": f"{PROBE_LABEL}=1"})


def _fingerprint(paths) -> dict[str, tuple]:
    """What a write would change: metadata of each path and the entries of its directory."""
    out: dict[str, tuple] = {}
    for path in paths:
        for p in (path, os.path.dirname(path)):
            try:
                st = os.lstat(p)
            except OSError:
                out[p] = ("missing",)
                continue
            entries = tuple(sorted(os.listdir(p))) if os.path.isdir(p) and not os.path.islink(p) else ()
            out[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns, entries)
    return out


@pytest.fixture(scope="module")
def probed(dockerd):
    started: list[dict] = []
    with open_client(HostConfig(url=dockerd.url)) as client:
        info = client.api.info()
        watched = list(FIXED_STAT_PATHS) + [dockerd.socket_path, "/etc/passwd", "/etc/group", "/"]
        before = _fingerprint(watched)

        def on_started(cid: str) -> None:
            started.append(client.api.inspect_container(cid))
            # prove the mount is read-only from inside, as the probe's own user
            exec_id = client.api.exec_create(cid, ["sh", "-c", "touch /host/etc/h1-probe-write 2>&1; echo rc=$?"])
            started.append({"write_attempt": client.api.exec_start(exec_id).decode()})

        t0 = time.monotonic()
        host = run_probe(client, image=BASE_IMAGE, info=info, on_started=on_started)
        elapsed = time.monotonic() - t0
        after = _fingerprint(watched)
        leftovers = _probe_containers(client)
    if os.path.exists("/etc/h1-probe-write"):  # only if the read-only mount failed us
        os.unlink("/etc/h1-probe-write")
    return {
        "host": host,
        "before": before,
        "after": after,
        "started": started,
        "leftovers": leftovers,
        "elapsed": elapsed,
    }


def test_it_stats_every_contract_path(probed):
    files = probed["host"]["files"]
    for path in FIXED_STAT_PATHS:
        assert path in files, path
        assert files[path]["exists"] == os.path.exists(path), path


def test_it_matches_what_the_host_says_about_files(probed):
    files = probed["host"]["files"]
    for path in ("/usr/sbin/dockerd", "/usr/bin/containerd", "/etc/docker"):
        if not os.path.exists(path):
            continue
        st = os.stat(path)
        assert files[path]["mode"] == f"{st.st_mode & 0o7777:04o}"
        assert (files[path]["uid"], files[path]["gid"]) == (st.st_uid, st.st_gid)
        assert files[path]["owner"] == pwd.getpwuid(st.st_uid).pw_name


def test_it_stats_this_daemons_socket_with_mode_and_group(dockerd, probed):
    sock = probed["host"]["files"][dockerd.socket_path]
    st = os.stat(dockerd.socket_path)
    assert sock["type"] == "socket" and sock["mode"] == "0660"
    assert sock["gid"] == st.st_gid and sock["group"] == grp.getgrgid(st.st_gid).gr_name


def test_it_finds_this_daemons_process_among_several(dockerd, probed):
    host = probed["host"]
    cmdline = host["dockerd_cmdline"]
    assert cmdline and "--data-root" in cmdline
    assert cmdline[cmdline.index("--data-root") + 1] == dockerd.data_root
    assert host["docker_root_dir"] == dockerd.data_root
    assert host["mounts"][0]["mount_point"] == "/"
    assert host["errors"] == []


def test_it_resolves_names_and_the_docker_group_from_host_files(probed):
    try:
        expected = sorted(set(grp.getgrnam("docker").gr_mem))
    except KeyError:
        expected = None
    members = probed["host"]["docker_group_members"]
    assert members is None if expected is None else set(expected) <= set(members)


def test_it_runs_the_probe_container_locked_down(probed):
    inspect = probed["started"][0]
    hc = inspect["HostConfig"]
    assert hc["Binds"] is None  # never the -v form, which creates missing host dirs
    assert hc["Mounts"] == [{"Type": "bind", "Source": "/", "Target": "/host", "ReadOnly": True}]
    assert hc["NetworkMode"] == "none" and hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and hc["CapAdd"] == ["DAC_READ_SEARCH"]
    assert hc["SecurityOpt"] == ["no-new-privileges"] and hc["Privileged"] is False
    assert inspect["Config"]["Labels"] == {PROBE_LABEL: "1"}
    assert "Read-only file system" in probed["started"][1]["write_attempt"]


def test_it_writes_nothing_to_the_host(probed):
    assert probed["after"] == probed["before"]
    assert not os.path.exists("/etc/h1-probe-write")


def test_it_leaves_no_probe_container_after_success(probed):
    assert probed["leftovers"] == []


def test_it_is_quick(probed):
    assert probed["elapsed"] < 10


def test_collect_includes_host_evidence(dockerd):
    with open_client(HostConfig(url=dockerd.url)) as client:
        snap = collect(client, probe_image=BASE_IMAGE)
        assert _probe_containers(client) == []
    assert snap["host"]["probe_image"] == BASE_IMAGE
    assert all(c["name"] and not c["inspect"]["Config"]["Labels"].get(PROBE_LABEL) for c in snap["containers"])
    json.dumps(snap).encode()


def test_it_removes_the_probe_container_after_a_timeout(dockerd):
    def progress(msg: str) -> None:
        if msg == "probe: reading host files":
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.05)

    with open_client(HostConfig(url=dockerd.url)) as client:
        deadline = time.monotonic() + 1
        with pytest.raises(ScanTimeout):
            collect(client, probe_image=BASE_IMAGE, deadline=deadline, progress=progress)
        assert _probe_containers(client) == []


@pytest.fixture
def sleep_only_image(dockerd):
    """An image that can sleep but has no shell: the probe script cannot run."""
    busybox = find_busybox()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar, open(busybox, "rb") as f:
        data = f.read()
        info = tarfile.TarInfo("bin/sleep")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    client = dockerd.client()
    repo, tag = SLEEP_ONLY_IMAGE.split(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag, changes=["ENV PATH=/bin"])
    yield SLEEP_ONLY_IMAGE
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(SLEEP_ONLY_IMAGE, force=True)
    client.close()


def _probe_failure(snap) -> str:
    """A failed probe keeps the scan: host evidence carries the reason, and a warning says it."""
    assert snap["host"]["files"] == {} and len(snap["host"]["errors"]) == 1
    reason = snap["host"]["errors"][0]
    assert {"resource_type": "host", "resource": "probe", "message": reason} in snap["warnings"]
    return reason


def test_it_removes_the_probe_container_when_the_script_fails(dockerd, sleep_only_image):
    with open_client(HostConfig(url=dockerd.url)) as client:
        with pytest.raises(ProbeFailed, match="probe script failed.*needs sh, stat, cat and ls"):
            run_probe(client, image=sleep_only_image, info=client.api.info())
        snap = collect(client, probe_image=sleep_only_image)
        assert "probe script failed" in _probe_failure(snap)
        assert _probe_containers(client) == []


def test_it_never_pulls_a_missing_probe_image_and_keeps_the_rest_of_the_scan(dockerd):
    with open_client(HostConfig(url=dockerd.url)) as client:
        snap = collect(client, probe_image="h1test/absent:1")
        assert "'h1test/absent:1' is not present on the Docker host and is never pulled" in _probe_failure(snap)
        assert snap["daemon"]["info"] and snap["images"]  # the rest of the evidence is there
        with pytest.raises(docker.errors.ImageNotFound):
            client.api.inspect_image("h1test/absent:1")
        assert _probe_containers(client) == []
    # Missing evidence is never a pass: every host-scope check is a coverage gap with the probe's reason.
    host_findings = [f for f in run_checks(snap) if f.resource_type == "host" and f.check_id.startswith("host.")]
    assert host_findings and all(f.status.value in ("not_assessed", "manual") for f in host_findings)
    assert any("host probe failed: probe image 'h1test/absent:1'" in f.detail for f in host_findings)

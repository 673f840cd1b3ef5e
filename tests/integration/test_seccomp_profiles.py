"""Seccomp in name only: a custom profile whose defaultAction allows every syscall fails 2.18
(daemon, read through the host probe) and 5.22 (container, profile inlined in inspect)."""

from __future__ import annotations

import json

import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.runner import run_checks
from tests.support.dockerd import BASE_IMAGE, PrivateDaemon, make_base_image

pytestmark = pytest.mark.docker
ALLOW_ALL = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}]}
DENY_DEFAULT = {"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "write", "exit_group", "nanosleep", "futex"], "action": "SCMP_ACT_ALLOW"}]}


def finding(findings, check_id, resource):
    return next(f for f in findings if f.check_id == check_id and f.resource == resource)


@pytest.fixture(scope="module")
def permissive_daemon(tmp_path_factory, dockerd):  # dockerd: skips/fails like every Docker test
    profile = tmp_path_factory.mktemp("seccomp") / "allow-all.json"
    profile.write_text(json.dumps(ALLOW_ALL))
    daemon = PrivateDaemon(prefix="sp", daemon_json={"seccomp-profile": str(profile)})
    daemon.start()
    try:
        client = daemon.client()
        make_base_image(client)
        client.close()
        yield daemon, str(profile)
    finally:
        daemon.stop()


def test_it_fails_a_daemon_whose_seccomp_profile_allows_everything(permissive_daemon):
    daemon, profile = permissive_daemon
    with open_client(HostConfig(url=daemon.url)) as client:
        snap = collect(client, probe_image=BASE_IMAGE)
    assert json.loads(snap["host"]["contents"][profile]) == ALLOW_ALL
    result = finding(run_checks(snap), "daemon.seccomp_profile", "daemon")
    assert result.status.value == "fail" and f"{profile} defaultAction=SCMP_ACT_ALLOW" in result.detail


def test_it_judges_a_containers_own_seccomp_profile(dockerd, make_container):
    make_container("sc-allow", start=False, security_opt=[f"seccomp={json.dumps(ALLOW_ALL)}"])
    make_container("sc-deny", start=False, security_opt=[f"seccomp={json.dumps(DENY_DEFAULT)}"])
    with open_client(HostConfig(url=dockerd.url)) as client:
        findings = run_checks(collect(client))
    allow = finding(findings, "container.seccomp_enabled", "sc-allow")
    assert allow.status.value == "fail" and "defaultAction=SCMP_ACT_ALLOW" in allow.detail
    assert finding(findings, "container.seccomp_enabled", "sc-deny").status.value == "pass"

"""Host checks from the probe: audit rules (1.1.3-1.1.18), data-root mount (1.1.1), docker group
(1.1.2) and file ownership/permissions (section 3), on hand-written HostEvidence fixtures in the
probe collector's shape."""

from __future__ import annotations

import pytest

from scanners import registry
from scanners.checks import daemon as d
from scanners.checks import files as f
from scanners.checks import host as h
from scanners.checks.base import Scope, Status
from scanners.checks.host import parse_audit_rules
from scanners.runner import run_checks

from .helpers import evaluate, snapshot

PASS, FAIL, NA, MANUAL, ERROR = (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.MANUAL,
                                 Status.ERROR)
HOST_CHECKS = [s for s in registry.all_checks() if s.scope is Scope.HOST and s.kind.value == "automated"]


@pytest.mark.parametrize("spec", HOST_CHECKS, ids=lambda s: s.id)
def test_it_says_not_assessed_without_the_probe(spec):
    assert evaluate(spec.fn, snapshot()) == (Status.NOT_ASSESSED, "host probe not enabled")


@pytest.mark.parametrize("spec", HOST_CHECKS, ids=lambda s: s.id)
def test_it_never_passes_on_a_probe_that_failed(spec):
    snap = snapshot(host="host-good.json")
    snap["host"].update(files={}, contents={}, mounts=[], docker_root_is_mount=None,
                        errors=["the host probe script failed: exit code 2"])
    status, _detail = evaluate(spec.fn, snap)
    assert status is Status.NOT_ASSESSED, (spec.id, _detail)


# --- audit rules -----------------------------------------------------------------------------

AUDIT = [(h.audit_dockerd, "/usr/bin/dockerd"), (h.audit_run_containerd, "/run/containerd"),
         (h.audit_docker_root, "/var/lib/docker"), (h.audit_etc_docker, "/etc/docker"),
         (h.audit_docker_service, "/lib/systemd/system/docker.service"),
         (h.audit_containerd_sock, "/run/containerd/containerd.sock"),
         (h.audit_docker_sock, "/var/run/docker.sock"), (h.audit_etc_default_docker, "/etc/default/docker"),
         (h.audit_daemon_json, "/etc/docker/daemon.json"),
         (h.audit_containerd_config, "/etc/containerd/config.toml"),
         (h.audit_containerd_bin, "/usr/bin/containerd"),
         (h.audit_containerd_shim_runc_v2, "/usr/bin/containerd-shim-runc-v2"),
         (h.audit_runc, "/usr/sbin/runc")]


@pytest.mark.parametrize(("check_fn", "path"), AUDIT, ids=lambda v: getattr(v, "spec", v) and str(v)[-30:])
def test_it_passes_watched_targets(check_fn, path):
    status, detail = evaluate(check_fn, snapshot(host="host-good.json"))
    assert status is PASS and detail.endswith(f"covers {path}")


@pytest.mark.parametrize(("check_fn", "path"), [
    (h.audit_run_containerd, "/run/containerd"), (h.audit_docker_root, "/var/lib/docker"),
    (h.audit_etc_docker, "/etc/docker"), (h.audit_docker_sock, "/var/run/docker.sock"),
    (h.audit_etc_default_docker, "/etc/default/docker"), (h.audit_runc, "/usr/bin/runc"),
    (h.audit_containerd_shim, "/usr/bin/containerd-shim")])
def test_it_fails_unwatched_targets(check_fn, path):
    assert evaluate(check_fn, snapshot(host="host-bad.json")) == (FAIL, f"no audit rule covers {path}")


def test_it_follows_the_installed_binary_path():
    status, detail = evaluate(h.audit_dockerd, snapshot(host="host-bad.json"))
    assert status is PASS and detail.endswith("covers /usr/sbin/dockerd")


@pytest.mark.parametrize(("check_fn", "detail"), [
    (h.audit_etc_sysconfig_docker, "/etc/sysconfig/docker absent"),
    (h.audit_containerd_shim, "/usr/bin/containerd-shim absent"),
    (h.audit_containerd_shim_runc_v1, "/usr/bin/containerd-shim-runc-v1 absent")])
def test_it_says_not_applicable_for_absent_targets(check_fn, detail):
    assert evaluate(check_fn, snapshot(host="host-good.json")) == (NA, detail)


def test_it_ignores_exclusion_rules_and_exact_paths_below_the_target():
    # host-bad has "-a never,exit -F dir=/etc/containerd" and "-F path=/var/lib/docker/volumes".
    snap = snapshot(host="host-bad.json")
    snap["host"]["files"]["/etc/containerd/config.toml"] = {"exists": True, "type": "file", "mode": "0644",
                                                            "uid": 0, "gid": 0}
    assert evaluate(h.audit_containerd_config, snap)[0] is FAIL
    assert evaluate(h.audit_docker_root, snap)[0] is FAIL


def test_it_audits_the_daemons_own_data_root():
    snap = snapshot(host="host-good.json")
    snap["host"]["docker_root_dir"] = "/srv/docker"
    snap["host"]["files"]["/srv/docker"] = {"exists": True, "type": "directory", "mode": "0710"}
    assert evaluate(h.audit_docker_root, snap) == (FAIL, "no audit rule covers /srv/docker")


def test_it_fails_every_target_when_the_host_has_no_audit_rules():
    snap = snapshot(host="host-good.json")
    snap["host"]["contents"] = {}
    assert evaluate(h.audit_dockerd, snap) == (
        FAIL, "no audit rule covers /usr/bin/dockerd (no audit rules found on the host)")


def test_it_errors_when_the_audit_rules_could_not_be_read():
    snap = snapshot(host="host-good.json")
    snap["host"]["contents"] = {}
    snap["host"]["errors"] = ["cannot read /etc/audit/audit.rules (exit code 1)"]
    assert evaluate(h.audit_dockerd, snap) == (
        ERROR, "host probe failed: cannot read /etc/audit/audit.rules (exit code 1)")


def test_it_parses_watch_and_syscall_rules():
    rules = parse_audit_rules("""
        -w /usr/bin/dockerd -p rwxa -k docker   # trailing comment
        -a exit,always -F arch=b64 -F path=/run/containerd -F perm=war -k docker
        -a always,exit -F dir=/var/run/docker -k docker
        -a never,exit -F dir=/var/lib/docker/overlay2
        -W /etc/docker
        # -w /etc/default/docker
        -D
    """)
    assert [(r.path, r.recursive) for r in rules] == [
        ("/usr/bin/dockerd", True), ("/run/containerd", False), ("/run/docker", True)]


# --- data root, docker group ------------------------------------------------------------------

def test_it_checks_the_data_root_is_a_mount_point():
    assert evaluate(h.docker_root_separate_mount, snapshot(host="host-good.json")) == (
        PASS, "DockerRootDir /var/lib/docker is a separate filesystem (xfs /dev/sdb1)")
    assert evaluate(h.docker_root_separate_mount, snapshot(host="host-bad.json")) == (
        FAIL, "DockerRootDir /var/lib/docker is not a separate mount point")


def test_it_does_not_count_dockerds_self_bind_as_a_separate_filesystem():
    # As recorded by the probe collector on the private test daemon: the data root appears in
    # mountinfo (dockerd bind-mounts it onto itself) on the root filesystem's device.
    snap = snapshot(host="host-bad.json")
    snap["host"].update(docker_root_dir="/tmp/h2d/root", docker_root_is_mount=False, mounts=[
        {"mount_point": "/", "fstype": "ext4", "source": "/dev/vda"},
        {"mount_point": "/tmp/h2d/root", "fstype": "ext4", "source": "/dev/vda"}])
    assert evaluate(h.docker_root_separate_mount, snap) == (
        FAIL, "DockerRootDir /tmp/h2d/root is only a bind mount of /dev/vda (same filesystem)")


def test_it_errors_when_the_probe_could_not_read_the_mounts():
    snap = snapshot(host="host-bad.json")
    snap["host"].update(mounts=[], docker_root_is_mount=False, errors=["cannot read the host's mountinfo"])
    assert evaluate(h.docker_root_separate_mount, snap) == (
        ERROR, "host probe failed: cannot read the host's mountinfo")


def test_it_lists_docker_group_members_for_attestation():
    assert evaluate(h.docker_group_trusted, snapshot(host="host-bad.json")) == (
        MANUAL, "docker group members: alice, bob; attest each is trusted")
    assert evaluate(h.docker_group_trusted, snapshot())[0] is MANUAL


# --- section 3: ownership and permissions -----------------------------------------------------

FILE_CASES = [
    (f.docker_service_owner, "/usr/lib/systemd/system/docker.service owner=alice:root (1000:0)"),
    (f.docker_service_mode, "/usr/lib/systemd/system/docker.service mode=0664 (at most 0644)"),
    (f.etc_docker_owner, "/etc/docker owner=root:docker (0:998)"),
    (f.etc_docker_mode, "/etc/docker mode=0775 (at most 0755)"),
    (f.registry_certs_owner, "/etc/docker/certs.d/registry.internal:5000/client.key owner=alice:root (1000:0)"),
    (f.registry_certs_mode, "/etc/docker/certs.d/registry.internal:5000/client.key mode=0644 (at most 0444)"),
    (f.tls_ca_mode, "/etc/docker/tls/ca.pem mode=0644 (at most 0444)"),
    (f.tls_cert_owner, "/etc/docker/tls/cert.pem owner=root:docker (0:998)"),
    (f.tls_key_mode, "/etc/docker/tls/key.pem mode=0600 (at most 0400)"),
    (f.docker_sock_owner, "/var/run/docker.sock owner=root:root (0:0)"),
    (f.docker_sock_mode, "/var/run/docker.sock mode=0666 (at most 0660)"),
    (f.daemon_json_owner, "/etc/docker/daemon.json owner=alice:root (1000:0)"),
    (f.daemon_json_mode, "/etc/docker/daemon.json mode=0666 (at most 0644)"),
    (f.etc_default_docker_mode, "/etc/default/docker mode=0666 (at most 0644)"),
    (f.sysconfig_docker_owner, "/etc/sysconfig/docker owner=root:adm (0:4)"),
    (f.containerd_sock_mode, "/run/containerd/containerd.sock mode=0666 (at most 0660)"),
]


@pytest.mark.parametrize(("check_fn", "detail"), FILE_CASES, ids=lambda v: getattr(v, "spec", None) and v.spec.id)
def test_it_fails_loose_owners_and_modes(check_fn, detail):
    assert evaluate(check_fn, snapshot(host="host-bad.json")) == (FAIL, detail)


@pytest.mark.parametrize("spec", [s for s in HOST_CHECKS if s.fn.__module__.endswith(".files")],
                         ids=lambda s: s.id)
def test_it_passes_or_skips_every_file_on_a_compliant_host(spec):
    status, detail = evaluate(spec.fn, snapshot(host="host-good.json"))
    assert status is PASS or (status is NA and detail == "/etc/sysconfig/docker absent"), detail


@pytest.mark.parametrize(("check_fn", "detail"), [
    (f.docker_socket_unit_owner, "/usr/lib/systemd/system/docker.socket absent"),
    (f.sysconfig_docker_mode, "/etc/sysconfig/docker absent")])
def test_it_says_not_applicable_for_absent_files(check_fn, detail):
    snap = snapshot(host="host-bad.json" if check_fn is f.docker_socket_unit_owner else "host-good.json")
    assert evaluate(check_fn, snap) == (NA, detail)


def test_it_accepts_stricter_modes():
    snap = snapshot(host="host-good.json")
    snap["host"]["files"]["/etc/docker/daemon.json"]["mode"] = "0600"
    snap["host"]["files"]["/etc/docker/tls/server-key.pem"]["mode"] = "0000"
    assert evaluate(f.daemon_json_mode, snap)[0] is PASS
    assert evaluate(f.tls_key_mode, snap)[0] is PASS


def test_it_fails_setuid_bits_whatever_the_permissions():
    snap = snapshot(host="host-good.json")
    snap["host"]["files"]["/etc/docker"]["mode"] = "2755"
    assert evaluate(f.etc_docker_mode, snap) == (FAIL, "/etc/docker mode=2755 (at most 0755)")


def test_it_says_tls_files_do_not_apply_without_tls():
    snap = snapshot(host="host-good.json")
    for key in ("tlsverify", "tlscacert", "tlscert", "tlskey", "hosts"):
        snap["host"]["daemon_json"].pop(key)
    assert evaluate(f.tls_key_mode, snap) == (NA, "daemon TLS not configured (tlskey not set)")


def test_it_uses_dockerds_default_tls_paths_when_tls_is_on_without_paths():
    snap = snapshot(host="host-good.json")
    for key in ("tlscacert", "tlscert", "tlskey"):
        snap["host"]["daemon_json"].pop(key)
    assert evaluate(f.tls_ca_owner, snap) == (ERROR, "host probe did not report /root/.docker/ca.pem")


def test_it_errors_on_files_the_probe_did_not_report():
    snap = snapshot(host="host-good.json")
    del snap["host"]["files"]["/etc/docker"]
    assert evaluate(f.etc_docker_owner, snap) == (ERROR, "host probe did not report /etc/docker")


def test_it_checks_the_socket_the_daemon_listens_on():
    snap = snapshot(host="host-good.json")
    snap["host"]["daemon_json"]["hosts"] = ["unix:///srv/docker.sock"]
    snap["host"]["files"]["/srv/docker.sock"] = {"exists": True, "type": "socket", "mode": "0666",
                                                 "uid": 0, "gid": 998, "owner": "root", "group": "docker"}
    assert evaluate(f.docker_sock_mode, snap) == (FAIL, "/srv/docker.sock mode=0666 (at most 0660)")


def test_it_says_not_applicable_without_registry_certificates():
    snap = snapshot(host="host-good.json")
    snap["host"]["files"]["/etc/docker/certs.d"] = {"exists": False}
    assert evaluate(f.registry_certs_mode, snap) == (NA, "/etc/docker/certs.d absent")


@pytest.mark.parametrize(("check_fn", "path", "field", "value"), [
    (f.docker_socket_unit_mode, "/lib/systemd/system/docker.socket", "mode", "0666"),
    (f.tls_cert_mode, "/etc/docker/tls/server-cert.pem", "mode", "0644"),
    (f.tls_key_owner, "/etc/docker/tls/server-key.pem", "uid", 1000),
    (f.etc_default_docker_owner, "/etc/default/docker", "gid", 1000),
    (f.containerd_sock_owner, "/run/containerd/containerd.sock", "uid", 1000),
], ids=lambda v: getattr(getattr(v, "spec", None), "id", None))
def test_it_fails_one_loosened_file_on_an_otherwise_compliant_host(check_fn, path, field, value):
    snap = snapshot(host="host-good.json")
    assert evaluate(check_fn, snap)[0] is PASS
    snap["host"]["files"][path][field] = value
    status, detail = evaluate(check_fn, snap)
    assert status is FAIL and detail.startswith(path)


# --- evidence from the real probe collector on the recording machine -------------------------

def test_it_decides_every_host_check_on_real_probe_evidence_without_errors():
    snap = snapshot(host="host-recorded.json")
    host_findings = [x for x in run_checks(snap) if x.resource_type in ("host", "daemon")]
    assert host_findings and not [x for x in host_findings if x.status is ERROR]


def test_it_reads_the_real_probes_view_of_the_test_daemon():
    snap = snapshot(host="host-recorded.json")
    assert evaluate(d.icc_disabled, snap) == (NA, "dockerd --bridge=none: there is no default bridge")
    assert evaluate(d.iptables_enabled, snap) == (FAIL, "dockerd --iptables=false")
    assert evaluate(h.docker_root_separate_mount, snap)[0] is FAIL  # dockerd's self-bind only
    assert evaluate(f.docker_sock_mode, snap)[1].startswith("/tmp/h2d/docker.sock mode=")


def test_it_checks_the_config_file_dockerd_was_started_with():
    snap = snapshot(host="host-good.json")
    snap["host"]["dockerd_cmdline"] = [*snap["host"]["dockerd_cmdline"], "--config-file", "/srv/docker/conf.json"]
    snap["host"]["files"]["/srv/docker/conf.json"] = {
        "exists": True, "type": "regular file", "mode": "0666", "uid": 0, "gid": 0, "owner": "root", "group": "root"}
    assert evaluate(f.daemon_json_mode, snap) == (FAIL, "/srv/docker/conf.json mode=0666 (at most 0644)")
    assert evaluate(f.daemon_json_owner, snap)[0] is PASS
    assert "/srv/docker/conf.json" in evaluate(h.audit_daemon_json, snap)[1]

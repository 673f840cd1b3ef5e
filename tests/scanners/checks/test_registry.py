"""The check registry against the catalogs: ids, coverage of every CIS recommendation, indexes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from posture.catalog import load_catalogs
from scanners import registry
from scanners.checks import daemon, host, images
from scanners.checks.base import CIS, SOC2, Kind, Scope
from scanners.collectors import probe
from scanners.snapshot import KINDS

CIS16 = "cis-docker-1.6.0"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def catalogs():
    return load_catalogs()


def test_it_has_unique_check_ids():
    ids = [s.id for s in registry.all_checks()]
    assert len(ids) == len(set(ids)) == 119


def test_it_names_checks_with_stable_slugs_prefixed_by_domain():
    for spec in registry.all_checks():
        assert re.fullmatch(r"(daemon|host|image|container|swarm|manual)\.[a-z0-9_]+", spec.id), spec.id


def test_it_reports_no_consistency_problems(catalogs):
    assert registry.problems(catalogs) == []


def test_it_references_only_controls_that_exist(catalogs):
    for spec in registry.all_checks():
        for slug, ids in spec.controls.items():
            assert slug in (CIS, SOC2), spec.id  # older CIS versions are derived, never written
            assert all(i in catalogs[slug] for i in ids), spec.id


def test_it_gives_every_automated_recommendation_an_automated_check(catalogs):
    automated = {i for s in registry.automated_checks() for i in s.cis_ids}
    wanted = {c.id for c in catalogs[CIS] if c.assessment == "automated"}
    assert automated == wanted and len(wanted) == 94


def test_it_gives_every_other_recommendation_exactly_one_manual_check(catalogs):
    for control in catalogs[CIS]:
        if control.assessment == "manual":
            speaking = [s for s in registry.all_checks() if control.id in s.cis_ids]
            assert [s.kind for s in speaking] == [Kind.MANUAL], control.id


def test_it_covers_all_118_recommendations(catalogs):
    covered = {i for s in registry.all_checks() for i in s.cis_ids}
    assert covered == {c.id for c in catalogs[CIS]}


def test_it_counts_95_automated_and_24_manual_checks():
    assert (len(registry.automated_checks()), len(registry.manual_checks())) == (95, 24)


def test_it_maps_every_check_to_supportable_soc2_criteria(catalogs):
    for spec in registry.all_checks():
        criteria = spec.controls.get(SOC2, ())
        assert criteria, spec.id
        assert all(catalogs[SOC2].get(c).supportable for c in criteria), spec.id


@pytest.mark.parametrize(("new", "old"), [(f"2.{n}", f"2.{n - 1}") for n in range(8, 20)])
def test_it_derives_v1_6_0_ids_for_2_8_to_2_19(catalogs, new, old):
    (spec,) = [s for s in registry.all_checks() if new in s.cis_ids]
    assert registry.controls_of(spec, catalogs)[CIS16] == (old,)


def test_it_derives_no_v1_6_0_id_for_the_devicemapper_check(catalogs):
    spec = daemon.storage_driver_not_devicemapper.spec
    assert CIS16 not in registry.controls_of(spec, catalogs)
    assert registry.controls_of(spec, catalogs)[CIS] == ("2.7",)


def test_it_finds_the_tls_check_under_v1_6_0_2_7(catalogs):
    assert registry.checks_for(CIS16, "2.7", catalogs) == (daemon.tcp_requires_tls.spec,)
    assert registry.checks_for(CIS, "2.7", catalogs) == (daemon.storage_driver_not_devicemapper.spec,)


def test_it_indexes_checks_by_soc2_criterion():
    ids = {s.id for s in registry.checks_for(SOC2, "CC6.1")}
    assert {"container.privileged_disabled", "host.docker_sock_mode", "image.no_secrets"} <= ids
    assert [s.id for s in registry.checks_for(SOC2, "CC6.2")] == ["host.docker_group_trusted"]


def test_it_indexes_both_4_1_checks_under_one_recommendation():
    ids = {s.id for s in registry.checks_for(CIS, "4.1")}
    assert ids == {"image.user_not_root", "container.user_not_root"}


def test_it_looks_checks_up_by_id():
    assert registry.get("container.privileged_disabled").cis_ids == ("5.5",)
    assert registry.find("no.such_check") is None
    with pytest.raises(KeyError):
        registry.get("no.such_check")


def test_it_declares_complete_metadata_on_every_check():
    for spec in registry.all_checks():
        assert spec.title and spec.remediation and spec.version >= 1, spec.id
        assert set(spec.requires) <= set(KINDS), spec.id
        assert isinstance(spec.scope, Scope), spec.id


def test_it_uses_only_paths_the_probe_collects():
    # The host checks' fixed candidate paths must be what scanners/collectors/probe.py stats.
    stat = set(probe.FIXED_STAT_PATHS)
    globbed = tuple(f"{d}/{p}" for d, p in probe.FIXED_STAT_GLOBS)
    fixed = [*host.DOCKERD, *host.DOCKER_SERVICE, *host.DOCKER_SOCKET_UNIT, *host.CONTAINERD,
             *host.CONTAINERD_SOCK, *host.RUNC, "/run/containerd", "/etc/docker",
             "/etc/docker/daemon.json", "/etc/default/docker", "/etc/sysconfig/docker",
             "/etc/containerd/config.toml", "/var/run/docker.sock", "/etc/docker/certs.d"]
    assert [p for p in fixed if p not in stat] == []
    shims = [*host.SHIM, *host.SHIM_V1, *host.SHIM_V2]
    assert all(p.startswith(globbed) and p.startswith(host.GLOBBED_PREFIXES) for p in shims)


def test_it_keeps_scanners_free_of_django():
    code = ("import sys, scanners.registry, scanners.runner;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'posture', 'celery')];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_it_registers_decorated_functions_as_they_are():
    assert images.no_secrets.spec.fn is images.no_secrets
    assert registry.get("image.no_secrets") is images.no_secrets.spec

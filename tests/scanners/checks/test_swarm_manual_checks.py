"""Swarm checks (5.1, section 7) on docker info recorded with and without an active one-node swarm,
and the manual checks (status manual, or fail when evidence shows a violation)."""

from __future__ import annotations

import pytest

from scanners import registry
from scanners.checks import manual as m
from scanners.checks import swarm as s
from scanners.checks.base import Kind, Status

from .helpers import evaluate, snapshot

PASS, FAIL, NA, MANUAL = Status.PASS, Status.FAIL, Status.NOT_APPLICABLE, Status.MANUAL
SECTION_7 = [spec for spec in registry.all_checks() if any(i.startswith("7.") for i in spec.cis_ids)]


def test_it_passes_swarm_mode_when_inactive():
    assert evaluate(s.mode_inactive, snapshot()) == (PASS, "Swarm.LocalNodeState=inactive")


def test_it_fails_swarm_mode_when_active():
    assert evaluate(s.mode_inactive, snapshot(daemon="daemon-swarm.json")) == (
        FAIL, "Swarm.LocalNodeState=active")


@pytest.mark.parametrize("spec", SECTION_7, ids=lambda spec: spec.id)
def test_it_skips_section_7_when_swarm_is_inactive(spec):
    assert evaluate(spec.fn, snapshot()) == (NA, "Swarm.LocalNodeState=inactive")


def test_it_covers_all_nine_section_7_recommendations():
    assert sorted(i for spec in SECTION_7 for i in spec.cis_ids) == [f"7.{n}" for n in range(1, 10)]


def test_it_checks_the_manager_count():
    assert evaluate(s.manager_count, snapshot(daemon="daemon-swarm.json")) == (PASS, "Swarm.Managers=1")
    snap = snapshot(daemon="daemon-swarm.json")
    snap["daemon"]["info"]["Swarm"]["Managers"] = 2
    assert evaluate(s.manager_count, snap)[0] is FAIL
    snap["daemon"]["info"]["Swarm"]["Managers"] = 9
    assert evaluate(s.manager_count, snap)[0] is FAIL


def test_it_leaves_manager_settings_to_managers():
    snap = snapshot(daemon="daemon-swarm.json")
    snap["daemon"]["info"]["Swarm"].update(ControlAvailable=False, Cluster=None)
    assert evaluate(s.manager_count, snap)[0] is NA
    assert evaluate(s.autolock_enabled, snap)[0] is NA


def test_it_checks_autolock():
    assert evaluate(s.autolock_enabled, snapshot(daemon="daemon-swarm.json")) == (
        PASS, "Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers=true")
    snap = snapshot(daemon="daemon-swarm.json")
    snap["daemon"]["info"]["Swarm"]["Cluster"]["Spec"]["EncryptionConfig"]["AutoLockManagers"] = False
    assert evaluate(s.autolock_enabled, snap)[0] is FAIL


def test_it_shows_the_node_certificate_expiry_for_attestation():
    assert evaluate(s.node_cert_rotation, snapshot(daemon="daemon-swarm.json")) == (
        MANUAL, "Swarm.Cluster.Spec.CAConfig.NodeCertExpiry=2160h; attest it meets policy")


def test_it_asks_for_attestations_on_active_swarms():
    for fn in (s.listen_on_specific_interface, s.overlay_encrypted, s.secrets_used,
               s.unlock_key_rotated, s.ca_rotated, s.planes_separated):
        status, detail = evaluate(fn, snapshot(daemon="daemon-swarm.json"))
        assert status is MANUAL and detail.startswith("attest: ")


# --- manual checks -----------------------------------------------------------------------------

PURE_MANUAL = [spec for spec in registry.manual_checks() if spec.fn.__module__.endswith(".manual")
               and spec.id not in ("manual.no_sshd_in_containers", "manual.image_sprawl",
                                   "manual.container_sprawl")]


@pytest.mark.parametrize("spec", PURE_MANUAL, ids=lambda spec: spec.id)
def test_it_asks_for_an_attestation(spec):
    status, detail = evaluate(spec.fn, snapshot())
    assert status is MANUAL and detail.startswith("attest: ")


def test_it_is_honest_that_setuid_files_are_not_visible():
    assert "not visible through the Docker API" in evaluate(m.setuid_removed, snapshot())[1]


def test_it_fails_sshd_when_a_main_process_is_sshd():
    assert evaluate(m.no_sshd_in_containers, snapshot()) == (
        FAIL, "container rec-sshd runs sshd as its main process")


def test_it_asks_to_attest_sshd_otherwise():
    snap = snapshot()
    snap["containers"] = [c for c in snap["containers"] if c["name"] != "rec-sshd"]
    status, detail = evaluate(m.no_sshd_in_containers, snap)
    assert status is MANUAL and "process lists are not collected" in detail


def test_it_counts_images_and_containers_for_sprawl_attestations():
    assert evaluate(m.image_sprawl, snapshot()) == (
        MANUAL, "4 images, 0 unused by any container; attest they are reviewed and pruned per policy")
    assert evaluate(m.container_sprawl, snapshot()) == (
        MANUAL, "8 containers, 5 not running; attest they are reviewed and pruned per policy")


def test_it_marks_every_manual_check_as_such():
    assert all(spec.kind is Kind.MANUAL for spec in PURE_MANUAL)

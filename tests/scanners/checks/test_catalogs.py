"""The framework catalogs (posture/catalog): counts, renumbering between CIS versions, SOC 2."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from posture.catalog import CATALOG_DIR, Catalog, Control, load_catalogs

CIS18, CIS16, SOC2 = "cis-docker-1.8.0", "cis-docker-1.6.0", "soc2-2017"


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return load_catalogs()


def test_it_loads_three_frameworks_as_plain_dataclasses(catalogs):
    assert set(catalogs) == {CIS18, CIS16, SOC2}
    assert all(isinstance(c, Control) for cat in catalogs.values() for c in cat)


def test_it_has_all_118_recommendations_of_v1_8_0(catalogs):
    ids = [c.id for c in catalogs[CIS18]]
    assert len(ids) == 118
    assert ids[:3] == ["1.1.1", "1.1.2", "1.1.3"] and ids[-1] == "7.9"
    per_section = {s: sum(1 for c in catalogs[CIS18] if c.section == s) for s in "1234567"}
    assert per_section == {"1": 20, "2": 19, "3": 24, "4": 12, "5": 32, "6": 2, "7": 9}


def test_it_derives_117_v1_6_0_recommendations_from_the_column(catalogs):
    v16 = catalogs[CIS16]
    assert len(v16) == 117 and v16.derived_from == CIS18


def test_it_maps_v1_8_0_2_7_to_nothing_in_v1_6_0(catalogs):
    assert "2.7" not in catalogs[CIS16].by_base_id()
    assert catalogs[CIS18].get("2.7").title == "devicemapper storage driver is not in use"


@pytest.mark.parametrize("new", [f"2.{n}" for n in range(8, 20)])
def test_it_shifts_v1_8_0_2_8_to_2_19_down_by_one(catalogs, new):
    old = catalogs[CIS16].by_base_id()[new]
    assert old.id == f"2.{int(new.split('.')[1]) - 1}"
    assert old.title == catalogs[CIS18].get(new).title


def test_it_numbers_sections_1_and_3_to_7_alike(catalogs):
    for control in catalogs[CIS18]:
        if control.section != "2":
            assert catalogs[CIS16].by_base_id()[control.id].id == control.id


def test_it_keeps_v1_6_0_2_7_as_tls(catalogs):
    assert catalogs[CIS16].get("2.7").base_id == "2.8"
    assert "TLS" in catalogs[CIS16].get("2.7").title


def test_it_keeps_v1_5_0_numbers_where_the_table_gives_them(catalogs):
    cis = catalogs[CIS18]
    assert cis.get("5.1").other_ids["v1_5_0"] == "7.1"  # swarm mode moved in v1.6.0
    assert cis.get("5.32").other_ids["v1_5_0"] == "5.31"
    assert cis.get("7.9").other_ids["v1_5_0"] == "7.10"
    assert cis.get("2.7").other_ids["v1_5_0"] is None


def test_it_has_31_level_2_recommendations(catalogs):
    level2 = {c.id for c in catalogs[CIS18] if c.level == 2}
    assert len(level2) == 31
    assert {"1.1.7", "1.1.18", "2.18", "3.22", "4.11", "5.30"} <= level2


def test_it_notes_the_swarm_profile_on_section_7(catalogs):
    profiles = {c.profile for c in catalogs[CIS18] if c.section == "7"}
    assert profiles == {"Level 1 - Docker Swarm"}
    assert catalogs[CIS18].get("5.3").profile == "Level 2 - Docker - Linux"


def test_it_separates_cis_labels_from_how_posture_assesses(catalogs):
    cis = catalogs[CIS18]
    assert cis.get("5.5").source_assessment == "Manual" and cis.get("5.5").assessment == "automated"
    assert cis.get("4.8").assessment == "manual"
    counts = {a: sum(1 for c in cis if c.assessment == a) for a in ("automated", "manual")}
    assert counts == {"automated": 94, "manual": 24}


def test_it_lists_every_soc2_criterion_including_unsupportable_ones(catalogs):
    expected = (
        [f"CC1.{i}" for i in range(1, 6)] + [f"CC2.{i}" for i in range(1, 4)]
        + [f"CC3.{i}" for i in range(1, 5)] + ["CC4.1", "CC4.2"] + [f"CC5.{i}" for i in range(1, 4)]
        + [f"CC6.{i}" for i in range(1, 9)] + [f"CC7.{i}" for i in range(1, 6)] + ["CC8.1"]
        + ["CC9.1", "CC9.2", "A1.1", "A1.2", "A1.3", "C1.1", "C1.2"]
        + [f"PI1.{i}" for i in range(1, 6)]
        + ["P1.1", "P2.1", "P3.1", "P3.2", "P4.1", "P4.2", "P4.3", "P5.1", "P5.2"]
        + [f"P6.{i}" for i in range(1, 8)] + ["P7.1", "P8.1"]
    )
    assert [c.id for c in catalogs[SOC2]] == expected


def test_it_explains_every_criterion_containers_cannot_support(catalogs):
    unsupportable = [c for c in catalogs[SOC2] if not c.supportable]
    assert unsupportable and all(c.note and c.assessment == "manual" for c in unsupportable)
    assert {c.id for c in catalogs[SOC2] if c.supportable} == {
        "CC6.1", "CC6.2", "CC6.3", "CC6.6", "CC6.7", "CC6.8", "CC7.1", "CC7.2", "CC7.3", "CC8.1",
        "A1.1", "A1.2", "C1.1",
    }


def test_it_names_the_soc2_category_of_each_criterion(catalogs):
    soc2 = catalogs[SOC2]
    assert soc2.get("CC6.1").category == "security"
    assert soc2.get("A1.2").category == "availability"
    assert soc2.get("P8.1").category == "privacy"


def test_it_writes_titles_in_our_own_short_words(catalogs):
    for cat in (catalogs[CIS18], catalogs[SOC2]):
        for c in cat:
            assert c.title and len(c.title) <= 70, c.id
            assert not c.title.startswith("Ensure"), c.id  # CIS's phrasing, not ours


def test_it_imports_no_django_in_the_loader():
    tree = ast.parse((Path(CATALOG_DIR) / "__init__.py").read_text())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.split(".")[0] in ("django", "posture")}

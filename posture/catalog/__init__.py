"""Framework catalogs: plain dataclasses read from the YAML files in this folder.

Why a tiny pure loader and no Django here: the catalogs are data (house style 6), and three
very different callers need them: the check registry (to derive v1.6.0 numbers and the reverse
index), the ``load_catalog`` command (to sync them into the database idempotently) and tests
without a database. So this module reads YAML and nothing else; it must not import Django.

``load_catalogs()`` returns one ``Catalog`` per framework version, keyed by slug:

* ``cis-docker-1.8.0`` straight from ``cis-docker-1.8.0.yaml``;
* ``cis-docker-1.6.0`` *derived* from the same file through its ``v1_6_0`` column, so the two
  versions cannot drift apart; each derived control keeps ``base_id`` (its v1.8.0 number);
* ``soc2-2017`` from ``soc2-2017.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

CATALOG_DIR = Path(__file__).resolve().parent

#: How posture assesses a control: a check decides it, or a person attests to it.
AUTOMATED = "automated"
MANUAL = "manual"


@dataclass(frozen=True)
class Control:
    """One requirement of a framework version (a CIS recommendation, a SOC 2 criterion)."""

    id: str
    title: str
    section: str
    section_name: str
    assessment: str  # AUTOMATED | MANUAL: how posture assesses it
    level: int | None = None  # CIS profile level; None for SOC 2
    profile: str | None = None  # e.g. "Level 2 - Docker - Linux", "Level 1 - Docker Swarm"
    source_assessment: str | None = None  # CIS's own label: "Automated" | "Manual"
    base_id: str | None = None  # derived catalogs: the id in the catalog derived from
    other_ids: Mapping[str, str | None] = field(default_factory=dict)  # e.g. {"v1_5_0": "5.1"}
    supportable: bool | None = None  # SOC 2: can container evidence support it at all
    category: str | None = None  # SOC 2: security / availability / confidentiality / ...
    note: str | None = None


@dataclass(frozen=True)
class Catalog:
    """One framework version: its identity and its controls, in document order."""

    slug: str  # "cis-docker-1.8.0", "cis-docker-1.6.0", "soc2-2017"
    framework: str  # "cis-docker", "soc2"
    version: str
    name: str
    controls: tuple[Control, ...]
    derived_from: str | None = None  # slug of the catalog this one was renumbered from
    _by_id: Mapping[str, Control] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {c.id: c for c in self.controls}
        if len(by_id) != len(self.controls):
            raise ValueError(f"{self.slug}: duplicate control ids")
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))

    def __iter__(self) -> Iterator[Control]:
        return iter(self.controls)

    def __len__(self) -> int:
        return len(self.controls)

    def __contains__(self, control_id: object) -> bool:
        return control_id in self._by_id

    def get(self, control_id: str) -> Control | None:
        return self._by_id.get(control_id)

    def by_base_id(self) -> dict[str, Control]:
        """For a derived catalog: base control id -> this catalog's control."""
        return {c.base_id: c for c in self.controls if c.base_id is not None}


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or not isinstance(data.get("controls"), list):
        raise ValueError(f"{path.name}: expected a mapping with a 'controls' list")
    return data


def _cis(path: Path) -> list[Catalog]:
    data = _read(path)
    sections = {str(s["number"]): s for s in data.get("sections", [])}
    controls = []
    for raw in data["controls"]:
        sec = sections[str(raw["section"])]
        level = int(raw["level"])
        controls.append(Control(
            id=str(raw["id"]),
            title=raw["title"],
            section=str(raw["section"]),
            section_name=sec["name"],
            assessment=raw["assess"],
            level=level,
            profile=raw.get("profile") or sec.get("profile") or f"Level {level} - Docker - Linux",
            source_assessment=raw["cis_assessment"],
            other_ids=MappingProxyType({k: (None if v is None else str(v))
                                        for k, v in raw.items() if k.startswith("v1_")}),
        ))
    base = Catalog(slug=data["slug"], framework=data["framework"], version=str(data["version"]),
                   name=data["name"], controls=tuple(controls))
    out = [base]
    for spec in data.get("derived", []):
        field_name = spec["id_field"]
        derived = [
            Control(id=c.other_ids[field_name], title=c.title, section=c.section,
                    section_name=c.section_name, assessment=c.assessment, level=c.level,
                    profile=c.profile, source_assessment=None, base_id=c.id)
            for c in controls if c.other_ids.get(field_name)
        ]
        out.append(Catalog(slug=spec["slug"], framework=data["framework"],
                           version=str(spec["version"]), name=data["name"],
                           controls=tuple(derived), derived_from=base.slug))
    return out


def _soc2(path: Path) -> Catalog:
    data = _read(path)
    sections = {str(s["number"]): s for s in data.get("sections", [])}
    controls = []
    for raw in data["controls"]:
        sec = sections[str(raw["section"])]
        controls.append(Control(
            id=str(raw["id"]), title=raw["title"], section=str(raw["section"]),
            section_name=sec["name"], assessment=raw["assess"],
            supportable=bool(raw["supportable_by_container_evidence"]),
            category=sec["category"], note=raw.get("note"),
        ))
    return Catalog(slug=data["slug"], framework=data["framework"], version=str(data["version"]),
                   name=data["name"], controls=tuple(controls))


@lru_cache(maxsize=4)
def _load(directory: str) -> Mapping[str, Catalog]:
    root = Path(directory)
    catalogs: dict[str, Catalog] = {}
    for cat in _cis(root / "cis-docker-1.8.0.yaml") + [_soc2(root / "soc2-2017.yaml")]:
        catalogs[cat.slug] = cat
    return MappingProxyType(catalogs)


def load_catalogs(directory: Path | str = CATALOG_DIR) -> dict[str, Catalog]:
    """All framework catalogs keyed by slug. Parsed once per process; returns a fresh dict."""
    return dict(_load(str(directory)))


__all__ = ["AUTOMATED", "MANUAL", "CATALOG_DIR", "Catalog", "Control", "load_catalogs"]

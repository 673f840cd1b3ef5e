"""The check registry: every check, lookup by id, and the control <-> check indexes.

Why collected from modules and not registered by the decorator: ``scanners`` keeps no mutable
globals (house style 1). The decorator only attaches a frozen spec; this module walks the check
modules once and returns an immutable tuple, in module and definition order (which is also the
order of findings).

Older CIS versions are never written on a check: a check names its CIS v1.8.0 ids, and the
v1.6.0 ids are *derived* through the catalog's renumbering column (``Catalog.derived_from`` and
``Control.base_id``). Catalogs are passed in by the caller (``posture.catalog.load_catalogs()``),
because importing ``posture`` here would pull in Celery and Django.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import ModuleType
from typing import Any

from scanners.checks import daemon, files, host, images, manual, network, resources, runtime, swarm
from scanners.checks.base import CheckSpec, Kind, spec_of

#: Modules that hold checks, in report order (CIS section order, roughly).
CHECK_MODULES: tuple[ModuleType, ...] = (host, daemon, files, images, runtime, network, resources,
                                         swarm, manual)


@lru_cache(maxsize=1)
def all_checks() -> tuple[CheckSpec, ...]:
    """Every check spec, once each (a spec re-exported by another module is not repeated)."""
    seen: set[int] = set()
    specs: list[CheckSpec] = []
    for module in CHECK_MODULES:
        for obj in vars(module).values():
            spec = spec_of(obj)
            if spec is not None and id(spec) not in seen:
                seen.add(id(spec))
                specs.append(spec)
    return tuple(specs)


@lru_cache(maxsize=1)
def _by_id() -> Mapping[str, CheckSpec]:
    return {spec.id: spec for spec in all_checks()}


def get(check_id: str) -> CheckSpec:
    """The spec of one check; KeyError for an unknown id."""
    return _by_id()[check_id]


def find(check_id: str) -> CheckSpec | None:
    return _by_id().get(check_id)


def automated_checks() -> tuple[CheckSpec, ...]:
    return tuple(s for s in all_checks() if s.kind is Kind.AUTOMATED)


def manual_checks() -> tuple[CheckSpec, ...]:
    return tuple(s for s in all_checks() if s.kind is Kind.MANUAL)


def controls_of(spec: CheckSpec, catalogs: Mapping[str, Any] | None = None
                ) -> dict[str, tuple[str, ...]]:
    """The controls a check speaks for, per framework slug, derived versions included.

    With ``catalogs`` (slug -> Catalog), every catalog ``derived_from`` a framework the check
    names gets the renumbered ids, e.g. ``{"cis-docker-1.8.0": ("2.8",)}`` also yields
    ``{"cis-docker-1.6.0": ("2.7",)}``. A control with no counterpart (1.8.0's 2.7) yields none.
    """
    out = {slug: tuple(ids) for slug, ids in spec.controls.items()}
    for slug, catalog in (catalogs or {}).items():
        base = getattr(catalog, "derived_from", None)
        if base is None or base not in spec.controls or slug in out:
            continue
        renumber = catalog.by_base_id()
        ids = tuple(renumber[i].id for i in spec.controls[base] if i in renumber)
        if ids:
            out[slug] = ids
    return out


def control_index(catalogs: Mapping[str, Any] | None = None
                  ) -> dict[tuple[str, str], tuple[str, ...]]:
    """Reverse index: (framework slug, control id) -> check ids, derived versions included."""
    index: dict[tuple[str, str], list[str]] = {}
    for spec in all_checks():
        for slug, ids in controls_of(spec, catalogs).items():
            for control_id in ids:
                index.setdefault((slug, control_id), []).append(spec.id)
    return {key: tuple(ids) for key, ids in index.items()}


def checks_for(framework: str, control_id: str, catalogs: Mapping[str, Any] | None = None
               ) -> tuple[CheckSpec, ...]:
    """The checks that speak for one control (e.g. ("soc2-2017", "CC6.1"))."""
    ids = control_index(catalogs).get((framework, control_id), ())
    return tuple(get(i) for i in ids)


def problems(catalogs: Mapping[str, Any], specs: Iterable[CheckSpec] | None = None) -> list[str]:
    """Consistency problems between checks and catalogs (empty list when all is well).

    Used by tests and by ``load_catalog``: ids unique; every referenced framework and control
    exists; every automated catalog control has an automated check and every manual one a
    check (manual or automated) that speaks for it.
    """
    specs = tuple(all_checks() if specs is None else specs)
    found: list[str] = []
    ids = [s.id for s in specs]
    found += [f"duplicate check id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for spec in specs:
        for slug, controls in spec.controls.items():
            catalog = catalogs.get(slug)
            if catalog is None:
                found.append(f"{spec.id}: unknown framework {slug}")
                continue
            found += [f"{spec.id}: {slug} has no control {c}" for c in controls if c not in catalog]
    for slug, catalog in catalogs.items():
        if getattr(catalog, "framework", "") != "cis-docker" or catalog.derived_from:
            continue
        for control in catalog:
            speaking = [s for s in specs if control.id in s.controls.get(slug, ())]
            automated = [s for s in speaking if s.kind is Kind.AUTOMATED]
            if control.assessment == "automated" and not automated:
                found.append(f"{slug} {control.id} is automated but has no automated check")
            elif control.assessment == "manual" and (automated or not speaking):
                found.append(f"{slug} {control.id} is manual but has "
                             f"{'an automated check' if automated else 'no manual check'}")
    return found

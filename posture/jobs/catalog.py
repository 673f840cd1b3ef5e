"""Sync the YAML catalogs and the check registry into the database (idempotent).

Runs from ``manage.py load_catalog`` and after every ``migrate`` (post_migrate), so a fresh
checkout and an upgraded one both end with the catalogs of the code they run."""

from __future__ import annotations

import re

from django.db import transaction

from posture.catalog import load_catalogs
from posture.models import Check, Control, Framework
from scanners import registry


def natural_key(ref: str) -> str:
    """'1.1.10' sorts after '1.1.9'; 'CC6.10' after 'CC6.9'."""
    return ".".join(f"{p:0>4}" if p.isdigit() else p for p in re.split(r"[.]", ref))


@transaction.atomic
def sync_catalogs() -> dict[str, int]:
    catalogs = load_catalogs()
    problems = registry.problems(catalogs)
    if problems:
        raise ValueError("checks and catalogs disagree: " + "; ".join(problems[:5]))
    severities = dict(Check.objects.values_list("id", "severity"))
    controls: dict[tuple[str, str], Control] = {}
    for slug, cat in catalogs.items():
        fw, _ = Framework.objects.update_or_create(
            slug=slug, defaults={"name": cat.name, "version": cat.version, "derived_from": cat.derived_from or ""}
        )
        existing = {c.ref: c for c in fw.controls.all()}
        seen = set()
        for c in cat.controls:
            values = {
                "title": c.title, "section": c.section, "section_name": c.section_name, "level": c.level,
                "assess": c.assessment, "supportable": c.supportable is not False, "note": c.note or "",
                "sort_key": natural_key(c.id),
            }
            row = existing.get(c.id)
            if row is None:
                row = Control.objects.create(framework=fw, ref=c.id, **values)
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                row.save()
            controls[(slug, c.id)] = row
            seen.add(c.id)
        fw.controls.exclude(ref__in=seen).delete()
    specs = registry.all_checks()
    for spec in specs:
        check, _ = Check.objects.update_or_create(
            id=spec.id,
            defaults={"title": spec.title, "scope": spec.scope.value, "severity": spec.severity.value,
                      "version": spec.version, "automated": spec.kind.value == "automated",
                      "remediation": spec.remediation},
        )
        wanted = {controls[(slug, ref)].pk for slug, refs in registry.controls_of(spec, catalogs).items()
                  for ref in refs if (slug, ref) in controls}
        if set(check.controls.values_list("pk", flat=True)) != wanted:
            check.controls.set(wanted)
    Check.objects.exclude(id__in=[s.id for s in specs]).delete()
    if dict(Check.objects.values_list("id", "severity")) != severities:
        from posture.jobs.current import invalidate

        invalidate()  # the read model of posture now ranks rows by severity: rebuilt on the next read
    return {"frameworks": len(catalogs), "controls": len(controls), "checks": len(specs)}

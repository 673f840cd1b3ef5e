"""A scan's evidence as stored: the items of its manifest (kind, key, the payload's sha256
and size, a readable name) and one payload by its digest.

Names come from the payload itself (a container's ``name``, an image's first tag), else the
item's key; they are attacker-controlled strings and may hold slashes and colons, which is
why an item is addressed by its sha256 (hex, safe in a URL path) and never by its name."""

from __future__ import annotations

from django.db.models import CharField, F, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce

from posture.models import EvidenceSetItem, ScanRun


def scan_evidence(scan: ScanRun, *, kind: str | None = None, key: str | None = None,
                  name: str | None = None) -> QuerySet[EvidenceSetItem]:
    """The items of the scan's manifest, ordered by kind then key, annotated with ``digest``,
    ``size`` and ``name``; narrowed to ``kind`` / ``key`` / ``name`` (exact) when given. Empty
    for a scan that stored no evidence (queued, running, failed). One lazy query; payloads
    are not loaded (``name`` reads two keys of them)."""
    if not scan.evidence_set_id:
        return EvidenceSetItem.objects.none()
    qs = EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id).annotate(
        digest=F("evidence__digest"), size=F("evidence__size"), name=_name())
    if kind:
        qs = qs.filter(kind=kind)
    if key:
        qs = qs.filter(key=key)
    if name:
        qs = qs.filter(name=name)
    return qs.order_by("kind", "key").values("kind", "key", "digest", "size", "name")


def evidence_item(scan: ScanRun, digest: str) -> dict | None:
    """The item of the scan's manifest whose payload has sha256 ``digest``, with the payload
    (one query), or None when the scan holds no such payload."""
    if not scan.evidence_set_id:
        return None
    return (EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id, evidence__digest=digest)
            .annotate(digest=F("evidence__digest"), size=F("evidence__size"), name=_name(),
                      payload=F("evidence__payload"))
            .order_by("kind", "key").values("kind", "key", "digest", "size", "name", "payload").first())


def _name() -> Coalesce:
    """A container's name, an image's first tag, else the item's key."""
    return Coalesce(KeyTextTransform("name", "evidence__payload"),
                    KeyTextTransform("0", KeyTransform("tags", "evidence__payload")), F("key"), output_field=CharField())

"""What changed between two scans of one host: containers and images added and removed,
configuration fields changed (old -> new, from the stored evidence payloads), and checks
that flipped.

Bounded work whatever the size of the host. Both sides are content-addressed, so what did
not change is never read:

- evidence: only the items one set holds and the other does not (same kind and key with
  another payload digest, or a kind/key on one side only) come back from the database, with
  their payloads, in one query per side;
- verdicts: a resource whose ``ResultChunk`` both result sets share has identical verdicts,
  so only the rows of chunks held by one side are read (one query per side). The number of
  shared chunks is counted in SQL, never listed.

That is at most seven queries (scans, evaluations, two for evidence, two for verdicts with
the exceptions and attestations in force matched in them, one count), none of whose
results grows with unchanged resources.

Reading the flips:

- both sides are read as of the *later* scan's finish time: a failure covered by an
  exception in force then reads ``excepted`` on both sides, so approving an exception does
  not show up as a fix, and a new failure already excepted then is listed as ``excepted``,
  not as a new failure;
- only ``pass``, ``not_applicable`` or the resource being gone fix a failure (or an excepted
  failure): a failure that turned into ``error`` or ``not_assessed`` (a failed host probe,
  a broken check) is listed under those, never counted as fixed;
- a resource that appears is listed for its failures (and errors, gaps), not for every check
  it passes; one that disappears for the failures it takes away.

Containers are matched by name across the two scans: Docker cannot change most of a
container's configuration in place, so "web-1 now runs privileged" is a container
*recreated* under the same name with another id, shown as one resource with its field
changes rather than one removed and one added. Images are matched the same way by a tag
they share (an image rebuilt under the same tag)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db.models import BigIntegerField, Case, CharField, Exists, F, OuterRef, Q, Value, When

from posture.choices import ResultStatus, ScanState
from posture.models import (
    CheckResult,
    Evaluation,
    EvidenceSetItem,
    ResultSetChunk,
    ScanRun,
)
from posture.queries.jsondiff import FieldChange, capped_changes
from posture.queries.scans import previous_scan
from posture.queries.verdicts import attestations_in_force, exceptions_in_force
from scanners import snapshot as snap

#: At most this many changed paths are listed per resource (the total is always given).
MAX_CHANGES_PER_RESOURCE = 50
#: Flip kinds, in the order pages list them.
FLIP_KINDS = ("new_failure", "fixed", "error", "not_assessed", "excepted", "passing", "other")
FLIP_LABELS = {
    "new_failure": "new failures", "fixed": "fixed", "error": "now error (not a fix)",
    "not_assessed": "now not assessed (not a fix)", "excepted": "now excepted", "passing": "now passing",
    "other": "other changes",
}
_FAILING = ("fail", "excepted")
_FIXED_BY = ("pass", "not_applicable", None)
#: Kinds of evidence items that are resources listed as added/removed (the others, daemon
#: documents and the host probe, exist once per scan and can only change).
_RESOURCE_KINDS = (snap.KIND_CONTAINER, snap.KIND_IMAGE)
_KIND_ORDER = {snap.KIND_DAEMON_VERSION: 0, snap.KIND_DAEMON_INFO: 1, snap.KIND_HOST: 2, snap.KIND_CONTAINER: 3,
               snap.KIND_IMAGE: 4}


class DiffError(ValueError):
    """The two scans cannot be compared (other hosts, no evidence, not found); the message
    says why in words a person can act on."""


@dataclass(frozen=True)
class ScanRef:
    id: int
    finished_at: datetime | None
    trigger: str
    evidence_set: str | None
    evaluated: bool


@dataclass(frozen=True)
class ResourceRef:
    """A container or image on one side only. ``key`` is its id; ``name`` the container's
    name or the image's first tag (its short id when untagged)."""

    kind: str
    key: str
    name: str


@dataclass(frozen=True)
class ResourceChange:
    """A resource present in both scans whose stored payload differs. ``previous_key`` is set
    when the resource was recreated under another id (a container of the same name, an image
    of the same tag). ``changes`` holds at most ``MAX_CHANGES_PER_RESOURCE`` paths;
    ``total_changes`` counts them all."""

    kind: str
    key: str
    name: str
    changes: list[FieldChange]
    total_changes: int
    previous_key: str | None = None

    @property
    def truncated(self) -> bool:
        return self.total_changes > len(self.changes)

    @property
    def recreated(self) -> bool:
        return self.previous_key is not None


@dataclass(frozen=True)
class CheckFlip:
    """One (check, resource) whose status differs. ``before``/``after`` are None when the
    resource is absent on that side; ``detail`` is the later side's (else the earlier's)."""

    check: str
    resource_type: str
    resource: str
    before: str | None
    after: str | None
    kind: str
    detail: str


@dataclass
class ScanDiff:
    """Everything that differs from ``before`` to ``after`` (two scans of ``host``, in time
    order). ``counts`` has every flip kind (zeros included); ``at`` is the moment whose
    exceptions and attestations both sides are read with."""

    host_id: int
    host: str
    before: ScanRef
    after: ScanRef
    at: datetime | None
    containers_added: list[ResourceRef] = field(default_factory=list)
    containers_removed: list[ResourceRef] = field(default_factory=list)
    images_added: list[ResourceRef] = field(default_factory=list)
    images_removed: list[ResourceRef] = field(default_factory=list)
    changed: list[ResourceChange] = field(default_factory=list)
    flips: list[CheckFlip] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    unchanged_resources: int = 0
    verdicts_compared: bool = False

    @property
    def identical(self) -> bool:
        return not (self.containers_added or self.containers_removed or self.images_added or self.images_removed
                    or self.changed or self.flips)

    def flips_of(self, kind: str) -> list[CheckFlip]:
        return [f for f in self.flips if f.kind == kind]

    @property
    def summary(self) -> list[tuple[str, str, int]]:
        """(kind, label, count) of every flip kind that occurs, in ``FLIP_KINDS`` order."""
        return [(kind, FLIP_LABELS[kind], self.counts[kind]) for kind in FLIP_KINDS if self.counts.get(kind)]


def flip_kind(before: str | None, after: str | None) -> str | None:
    """How a status change reads, or None when it is not worth listing (no change, a new
    resource passing, a gone resource that was not failing)."""
    if before == after:
        return None
    if before in _FAILING and after in _FIXED_BY:
        return "fixed"
    if after == "fail":
        return "new_failure"
    if after in ("error", "not_assessed", "excepted"):
        return after
    if before is None or after is None:
        return None
    if after == "pass":
        return "passing"
    return "other"


# --- loading ------------------------------------------------------------------------------

def _scans(a: ScanRun | int, b: ScanRun | int) -> tuple[ScanRun, ScanRun]:
    wanted = [s if isinstance(s, int) else s.pk for s in (a, b)]
    found = {s.pk: s for s in ScanRun.objects.select_related("host", "evidence_set").defer("log").filter(pk__in=wanted)}
    for pk in wanted:
        if pk not in found:
            raise DiffError(f"there is no scan #{pk}")
    first, second = found[wanted[0]], found[wanted[1]]
    if first.host_id != second.host_id:
        raise DiffError(f"scan #{first.pk} is of host {first.host.name!r} and scan #{second.pk} of host "
                        f"{second.host.name!r}: only two scans of the same host can be compared")
    for s in (first, second):
        if s.state != ScanState.SUCCEEDED or not s.evidence_set_id:
            raise DiffError(f"scan #{s.pk} {s.state} and has no evidence to compare: pick a succeeded scan")
    return tuple(sorted((first, second), key=lambda s: (s.finished_at, s.pk)))  # type: ignore[return-value]


def _differing_items(evidence_set: int, other: int) -> dict[tuple[str, str], tuple[str, Any]]:
    """(kind, key) -> (payload digest, payload) of the items ``evidence_set`` holds and
    ``other`` does not hold with the same payload: one query, payloads of these items only."""
    same = EvidenceSetItem.objects.filter(evidence_set_id=other, kind=OuterRef("kind"), key=OuterRef("key"),
                                          evidence_id=OuterRef("evidence_id"))
    rows = (EvidenceSetItem.objects.filter(evidence_set_id=evidence_set).exclude(Exists(same))
            .values_list("kind", "key", "evidence__digest", "evidence__payload"))
    return {(kind, key): (digest, payload) for kind, key, digest, payload in rows}


def _rows_only_in(result_set_id: int, other_id: int, host_id: int, at: datetime
                  ) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(check, resource type, resource) -> (verdict, detail) over the chunks of one result set
    that the other does not hold (one query). The verdict is read as of ``at`` with the read
    side's own SQL matchers (``verdicts.exceptions_in_force`` / ``attestations_in_force``):
    ``excepted`` for a matched failure, ``pass`` for an attested manual check."""
    other_chunks = ResultSetChunk.objects.filter(result_set_id=other_id).values("chunk_id")
    chunks = ResultSetChunk.objects.filter(result_set_id=result_set_id).exclude(chunk_id__in=other_chunks)
    rows = (CheckResult.objects.filter(chunk_id__in=chunks.values("chunk_id"))
            .annotate(host_id=Value(host_id, output_field=BigIntegerField()))
            .annotate(verdict=Case(
                When(Q(Exists(exceptions_in_force(at)), status="fail"), then=Value(ResultStatus.EXCEPTED.value)),
                When(Q(Exists(attestations_in_force(at)), status="manual"), then=Value(ResultStatus.PASS.value)),
                default=F("status"), output_field=CharField()))
            .values_list("check_id", "resource_type", "resource", "verdict", "detail"))
    return {(c, rt, r): (st, det) for c, rt, r, st, det in rows}


def _name(kind: str, key: str, payload: Any) -> str:
    if kind == snap.KIND_CONTAINER and isinstance(payload, dict) and isinstance(payload.get("name"), str):
        return payload["name"]
    if kind == snap.KIND_IMAGE and isinstance(payload, dict):
        tags = payload.get("tags")
        if isinstance(tags, list) and tags and isinstance(tags[0], str):
            return tags[0]
        return key[:19]
    return key


def _names_for_pairing(kind: str, payload: Any) -> set[str]:
    """What identifies a resource across ids: a container's name, an image's tags."""
    if not isinstance(payload, dict):
        return set()
    if kind == snap.KIND_CONTAINER:
        return {payload["name"]} if isinstance(payload.get("name"), str) else set()
    tags = payload.get("tags")
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _view(kind: str, payload: Any) -> Any:
    """The document fields are compared on: a container's or image's ``inspect`` with the
    few collector-level fields beside it (``tags``, ``history``), so paths read as Docker's
    (``HostConfig.Privileged``, not ``inspect.HostConfig.Privileged``)."""
    if kind not in _RESOURCE_KINDS or not isinstance(payload, dict) or not isinstance(payload.get("inspect"), dict):
        return payload
    view = dict(payload["inspect"])
    for key, value in payload.items():
        if key not in ("inspect", "id", "name"):
            view[key if key not in view else f"@{key}"] = value
    return view


def _change(kind: str, key: str, name: str, old: Any, new: Any, previous_key: str | None = None) -> ResourceChange:
    kept, total = capped_changes(_view(kind, old), _view(kind, new), MAX_CHANGES_PER_RESOURCE)
    return ResourceChange(kind, key, name, kept, total, previous_key)


# --- the diff -----------------------------------------------------------------------------

def _evidence_diff(diff: ScanDiff, before_set: str, after_set: str) -> None:
    if before_set == after_set:
        return
    old = _differing_items(before_set, after_set)
    new = _differing_items(after_set, before_set)
    removed = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    changed: list[ResourceChange] = []
    for ident in sorted(set(old) & set(new)):
        kind, key = ident
        changed.append(_change(kind, key, _name(kind, key, new[ident][1]), old[ident][1], new[ident][1]))
    # A container recreated under its name (an image rebuilt under a tag) is one resource.
    for kind in _RESOURCE_KINDS:
        by_name: dict[str, tuple[str, str]] = {}
        for (k, key), (_d, payload) in sorted(removed.items()):
            if k == kind:
                for n in sorted(_names_for_pairing(kind, payload)):
                    by_name.setdefault(n, (k, key))
        for (k, key), (_d, payload) in sorted(added.items()):
            if k != kind:
                continue
            match = next((by_name[n] for n in sorted(_names_for_pairing(kind, payload)) if n in by_name), None)
            if match is None or match not in removed:
                continue
            changed.append(_change(kind, key, _name(kind, key, payload), removed.pop(match)[1], payload,
                                   previous_key=match[1]))
            del added[(k, key)]
    for (kind, key), (_d, payload) in added.items():
        if kind not in _RESOURCE_KINDS:  # a host probe that ran this time only
            changed.append(_change(kind, key, key, {}, payload))
    for (kind, key), (_d, payload) in removed.items():
        if kind not in _RESOURCE_KINDS:
            changed.append(_change(kind, key, key, payload, {}))

    def refs(items: dict, kind: str) -> list[ResourceRef]:
        return sorted((ResourceRef(k, key, _name(k, key, p)) for (k, key), (_d, p) in items.items() if k == kind),
                      key=lambda r: (r.name, r.key))

    diff.containers_added, diff.containers_removed = refs(added, snap.KIND_CONTAINER), refs(removed, snap.KIND_CONTAINER)
    diff.images_added, diff.images_removed = refs(added, snap.KIND_IMAGE), refs(removed, snap.KIND_IMAGE)
    diff.changed = sorted(changed, key=lambda c: (_KIND_ORDER.get(c.kind, 9), c.name, c.key))


def _verdict_diff(diff: ScanDiff, before_id: int, after_id: int, at: datetime) -> None:
    diff.verdicts_compared = True
    if before_id == after_id:
        diff.unchanged_resources = ResultSetChunk.objects.filter(result_set_id=after_id).count()
        return
    old = _rows_only_in(before_id, after_id, diff.host_id, at)
    new = _rows_only_in(after_id, before_id, diff.host_id, at)
    diff.unchanged_resources = ResultSetChunk.objects.filter(
        result_set_id=after_id,
        chunk_id__in=ResultSetChunk.objects.filter(result_set_id=before_id).values("chunk_id")).count()
    flips = []
    for key in set(old) | set(new):
        before, after = old.get(key, (None, "")), new.get(key, (None, ""))
        kind = flip_kind(before[0], after[0])
        if kind is not None:
            flips.append(CheckFlip(key[0], key[1], key[2], before[0], after[0], kind, after[1] or before[1]))
    order = {k: i for i, k in enumerate(FLIP_KINDS)}
    diff.flips = sorted(flips, key=lambda f: (order[f.kind], f.check, f.resource_type, f.resource))


def diff_scans(a: ScanRun | int, b: ScanRun | int) -> ScanDiff:
    """The differences between two succeeded scans of one host, given in either order (the
    answer's ``before`` is the earlier by finish time). Raises ``DiffError`` for scans of
    two hosts, scans without evidence (queued, failed...) or unknown ids.

    Verdict flips need both scans evaluated; otherwise ``verdicts_compared`` is False and
    only the evidence is compared."""
    before, after = _scans(a, b)
    diff = ScanDiff(host_id=before.host_id, host=before.host.name, at=after.finished_at,
                    before=ScanRef(before.pk, before.finished_at, before.trigger, before.evidence_set.digest, False),
                    after=ScanRef(after.pk, after.finished_at, after.trigger, after.evidence_set.digest, False))
    _evidence_diff(diff, before.evidence_set_id, after.evidence_set_id)
    sets = dict(Evaluation.objects.filter(scan_id__in=[before.pk, after.pk], current=True)
                .values_list("scan_id", "result_set_id"))
    diff.before = replace(diff.before, evaluated=before.pk in sets)
    diff.after = replace(diff.after, evaluated=after.pk in sets)
    if before.pk in sets and after.pk in sets:
        _verdict_diff(diff, sets[before.pk], sets[after.pk], after.finished_at)
    counts = defaultdict(int, {k: 0 for k in FLIP_KINDS})
    for flip in diff.flips:
        counts[flip.kind] += 1
    diff.counts = dict(counts)
    return diff


def diff_since_previous(scan: ScanRun) -> ScanDiff | None:
    """What changed since the host's previous succeeded scan (the one ``scan`` replaced as
    current); None for a scan that did not succeed or is the host's first."""
    if scan.state != ScanState.SUCCEEDED or not scan.evidence_set_id or scan.finished_at is None:
        return None
    previous = previous_scan(scan)
    return diff_scans(previous, scan) if previous is not None else None

"""What a check is: one decorated pure function plus its metadata, in one place.

Why this shape: a check must be readable by an auditor in one screen (what it looks at, what
decides it, which controls it speaks for), stable over years (the slug id is the key stored with
every result, never renumbered), and re-runnable on stored evidence (pure: it receives data, it
never talks to Docker). So the decorator only *attaches* a frozen ``CheckSpec`` to the function;
there is no global registry to mutate (``scanners.registry`` collects specs from the modules).

A check function has the signature ``fn(resource, ctx) -> (Status, detail)``:

* ``resource`` is a ``ContainerView`` (container scope), an ``ImageView`` (image scope) or the
  ``Context`` itself (daemon and host scope, which look at the whole snapshot);
* ``ctx`` is the per-snapshot ``Context`` (daemon info, parsed daemon settings, host probe);
* ``detail`` is ONE line naming the field and the value that decided it, e.g.
  ``HostConfig.Privileged=true``, so a reviewer can verify a result without re-running it.

Missing evidence is never a pass, and never "not applicable" either: a check that cannot see
what it needs returns ``not_assessed`` (the evidence to decide was not collected: "host probe not
enabled", or the probe could not run) or ``error`` (the evidence is there but could not be
read or decided). ``not_applicable`` means the evidence was seen and the recommendation does
not apply to this resource (no TLS configured, a stopped container, no swarm). Scores count
pass / (pass + fail); ``not_assessed`` stays visible as a coverage gap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypeVar


class Scope(StrEnum):
    """What one finding is about; the runner makes one finding per check x resource."""

    DAEMON = "daemon"  # one finding per snapshot, resource "daemon"
    HOST = "host"  # one finding per snapshot, resource "host" (host files, probe, attestations)
    IMAGE = "image"  # one finding per image
    CONTAINER = "container"  # one finding per container (running and stopped)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Status(StrEnum):
    """The outcome of a check on one resource. ``excepted`` is applied later, by rollup."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"
    NOT_ASSESSED = "not_assessed"
    MANUAL = "manual"
    ERROR = "error"


class Kind(StrEnum):
    """Whether evidence decides the check, or a person must attest to it."""

    AUTOMATED = "automated"
    MANUAL = "manual"  # returns MANUAL (or FAIL when evidence positively shows a violation)


#: What a check function returns.
Result = tuple[Status, str]
CheckFn = Callable[[Any, Any], Result]

#: Framework slug of the catalog checks are keyed on; other CIS versions are derived from it.
CIS = "cis-docker-1.8.0"
SOC2 = "soc2-2017"


@dataclass(frozen=True)
class CheckSpec:
    """Everything about a check except its logic. Frozen: specs are shared, never mutated."""

    id: str
    title: str
    scope: Scope
    severity: Severity
    controls: Mapping[str, tuple[str, ...]]
    remediation: str
    fn: CheckFn = field(compare=False, repr=False)
    version: int = 1
    requires: tuple[str, ...] = ()
    kind: Kind = Kind.AUTOMATED

    @property
    def cis_ids(self) -> tuple[str, ...]:
        return self.controls.get(CIS, ())


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict on one resource, linked to the stored evidence it read.

    ``evidence_kind``/``evidence_key`` are the (kind, key) of ``scanners.snapshot.split`` so
    storage can link the result to the evidence item; both are "" when the check reads no
    evidence (pure attestations).
    """

    check_id: str
    resource_type: str
    resource: str
    status: Status
    detail: str
    evidence_kind: str
    evidence_key: str


F = TypeVar("F", bound=Callable[..., Any])


def check(
    *,
    id: str,  # noqa: A002 - the natural name for a check's stable slug
    title: str,
    scope: Scope,
    severity: Severity,
    controls: Mapping[str, tuple[str, ...]],
    remediation: str,
    version: int = 1,
    requires: tuple[str, ...] = (),
    kind: Kind = Kind.AUTOMATED,
) -> Callable[[F], F]:
    """Attach a ``CheckSpec`` to a check function (as ``fn.spec``) and return the function.

    ``controls`` maps a framework slug to control ids, e.g.
    ``{"cis-docker-1.8.0": ("5.5",), "soc2-2017": ("CC6.1", "CC6.8")}``. Older CIS versions are
    never listed here: the registry derives them from the catalog's renumbering columns.
    """
    if not id or id != id.strip() or " " in id or "." not in id:
        raise ValueError(f"check id must be a dotted slug, got {id!r}")
    frozen = MappingProxyType({k: tuple(v) for k, v in controls.items()})

    def wrap(fn: F) -> F:
        fn.spec = CheckSpec(  # type: ignore[attr-defined]
            id=id, title=title, scope=scope, severity=severity, controls=frozen,
            remediation=remediation, fn=fn, version=version, requires=tuple(requires), kind=kind,
        )
        return fn

    return wrap


def spec_of(obj: object) -> CheckSpec | None:
    """The spec attached by ``@check``, or None for anything else."""
    spec = getattr(obj, "spec", None)
    return spec if isinstance(spec, CheckSpec) else None


# Small constructors keep check bodies to the decision itself.
def passed(detail: str) -> Result:
    return Status.PASS, detail


def failed(detail: str) -> Result:
    return Status.FAIL, detail


def not_applicable(detail: str) -> Result:
    return Status.NOT_APPLICABLE, detail


def not_assessed(detail: str) -> Result:
    """The evidence that would decide was not collected (probe off or failed): a coverage gap."""
    return Status.NOT_ASSESSED, detail


def manual(detail: str) -> Result:
    return Status.MANUAL, detail


def errored(detail: str) -> Result:
    return Status.ERROR, detail



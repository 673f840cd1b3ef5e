"""Swarm checks: CIS 5.1 (swarm mode off unless needed) and section 7 (Docker Swarm profile).

Section 7 applies only when ``info.Swarm.LocalNodeState == "active"``; on any other node every
section-7 check is ``not_applicable``. Several swarm settings (``Swarm.Cluster``) are visible
only on managers, so on a worker they are ``not_applicable`` too: the managers' scans decide.
What the Engine API cannot show (listen addresses, overlay options, key and CA rotation
records) is a manual check that asks for an attestation, and only on active swarm nodes.
"""

from __future__ import annotations

from collections.abc import Callable

from scanners.checks.base import (
    CIS,
    SOC2,
    CheckFn,
    Kind,
    Result,
    Scope,
    Severity,
    check,
    errored,
    failed,
    manual,
    not_applicable,
    passed,
)
from scanners.checks.context import Context
from scanners.snapshot import KIND_DAEMON_INFO

INFO = (KIND_DAEMON_INFO,)
MAX_MANAGERS = 7  # Docker's guidance: more than seven managers slows consensus


def _inactive(ctx: Context) -> Result | None:
    if not ctx.swarm_active:
        state = ctx.swarm.get("LocalNodeState") or "unknown"
        return not_applicable(f"Swarm.LocalNodeState={state}")
    return None


@check(
    id="swarm.mode_inactive",
    title="Swarm mode is off unless needed",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("5.1",), SOC2: ("CC6.6", "CC7.1")},
    remediation="docker swarm leave on hosts that do not need swarm; record an exception where "
    "swarm is an approved requirement.",
    requires=INFO,
)
def mode_inactive(ctx: Context, _: Context) -> Result:
    state = ctx.swarm.get("LocalNodeState")
    if state is None:
        return errored("docker info not collected" if not ctx.info
                       else "docker info has no Swarm.LocalNodeState")
    return (passed if state == "inactive" else failed)(f"Swarm.LocalNodeState={state}")


@check(
    id="swarm.manager_count",
    title="Swarm has no more managers than it needs",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("7.1",), SOC2: ("CC6.1", "A1.2")},
    remediation="Keep an odd number of managers, at most seven (1, 3 or 5 for most swarms); "
    "demote the rest with docker node demote.",
    requires=INFO,
)
def manager_count(ctx: Context, _: Context) -> Result:
    if miss := _inactive(ctx):
        return miss
    if not ctx.swarm.get("ControlAvailable"):
        return not_applicable("worker node: manager count is reported by managers")
    managers = int(ctx.swarm.get("Managers") or 0)
    if managers % 2 == 0:
        return failed(f"Swarm.Managers={managers} (even: no extra fault tolerance)")
    if managers > MAX_MANAGERS:
        return failed(f"Swarm.Managers={managers} (more than {MAX_MANAGERS})")
    return passed(f"Swarm.Managers={managers}")


@check(
    id="swarm.autolock_enabled",
    title="Swarm managers auto-lock",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("7.5",), SOC2: ("CC6.1", "CC6.7")},
    remediation="docker swarm update --autolock=true, and keep the unlock key in a vault.",
    requires=INFO,
)
def autolock_enabled(ctx: Context, _: Context) -> Result:
    if miss := _inactive(ctx):
        return miss
    cluster = ctx.swarm.get("Cluster")
    if not isinstance(cluster, dict):
        return not_applicable("worker node: Swarm.Cluster is reported by managers")
    value = ((cluster.get("Spec") or {}).get("EncryptionConfig") or {}).get("AutoLockManagers")
    field = "Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers"
    return (passed if value is True else failed)(f"{field}={str(bool(value)).lower()}")


@check(
    id="swarm.node_cert_rotation",
    title="Swarm node certificates are rotated",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("7.7",), SOC2: ("CC6.1",)},
    remediation="docker swarm update --cert-expiry to your policy's period; attest it.",
    requires=INFO,
    kind=Kind.MANUAL,
)
def node_cert_rotation(ctx: Context, _: Context) -> Result:
    # The expiry is visible, but whether it matches policy is the organisation's call.
    if miss := _inactive(ctx):
        return miss
    spec = ((ctx.swarm.get("Cluster") or {}).get("Spec") or {})
    expiry = (spec.get("CAConfig") or {}).get("NodeCertExpiry")
    if expiry is None:
        return manual("node certificate expiry not visible on this node; attest rotation policy")
    hours = int(expiry) // 3_600_000_000_000
    return manual(f"Swarm.Cluster.Spec.CAConfig.NodeCertExpiry={hours}h; attest it meets policy")


def _swarm_attestation(statement: str) -> CheckFn:
    def fn(ctx: Context, _: Context) -> Result:
        return _inactive(ctx) or manual(f"attest: {statement}")
    return fn


def _manual_spec(id: str, title: str, cis: str, soc2: tuple[str, ...], fix: str
                 ) -> Callable[[CheckFn], CheckFn]:
    return check(id=id, title=title, scope=Scope.DAEMON, severity=Severity.MEDIUM,
                 controls={CIS: (cis,), SOC2: soc2}, remediation=fix, requires=INFO,
                 kind=Kind.MANUAL)


listen_on_specific_interface = _manual_spec(
    "swarm.listen_on_specific_interface", "Swarm ports listen on a chosen interface", "7.2",
    ("CC6.1", "CC6.6"), "docker swarm init/join --listen-addr <management IP>:2377.")(
    _swarm_attestation("swarm ports 2377/7946 listen only on the management interface"))
overlay_encrypted = _manual_spec(
    "swarm.overlay_encrypted", "Overlay networks are encrypted", "7.3", ("CC6.1", "CC6.7"),
    "Create overlay networks with --opt encrypted.")(
    _swarm_attestation("every overlay network carrying workload data has the encrypted option"))
secrets_used = _manual_spec(
    "swarm.secrets_used", "Swarm secrets carry sensitive values", "7.4", ("CC6.1", "CC6.7", "C1.1"),
    "Move sensitive values from service env and images into docker secret.")(
    _swarm_attestation("services receive sensitive values through docker secrets"))
unlock_key_rotated = _manual_spec(
    "swarm.unlock_key_rotated", "Swarm unlock key is rotated", "7.6", ("CC6.1",),
    "docker swarm unlock-key --rotate on the policy's schedule.")(
    _swarm_attestation("the swarm unlock key was rotated within the policy period"))
ca_rotated = _manual_spec(
    "swarm.ca_rotated", "Swarm CA certificate is rotated", "7.8", ("CC6.1",),
    "docker swarm ca --rotate on the policy's schedule.")(
    _swarm_attestation("the swarm root CA was rotated within the policy period"))
planes_separated = _manual_spec(
    "swarm.planes_separated", "Management and data traffic are separated", "7.9",
    ("CC6.1", "CC6.6"), "Initialise with --advertise-addr (management) and --data-path-addr "
    "(data) on different interfaces.")(
    _swarm_attestation("management and data-path traffic use separate interfaces"))

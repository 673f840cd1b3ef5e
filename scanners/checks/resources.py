"""Container runtime checks, part 3: limits, lifecycle and health.

CIS 5.11 (memory), 5.12 (CPU), 5.13 (read-only root), 5.15 (restart policy), 5.19 (ulimits),
5.25 (cgroup parent), 5.27 (health at runtime), 5.29 (PIDs).

Inspect semantics relied on: ``Memory`` 0 is unlimited; ``PidsLimit`` null, 0 and -1 are all
unlimited; ``CpuShares`` 0 and 1024 both mean the default weight; ``NanoCpus`` (--cpus) and
``CpuQuota`` are hard caps; ``RestartPolicy.Name`` "" equals "no", and ``on-failure`` with
``MaximumRetryCount`` 0 retries forever.
"""

from __future__ import annotations

from scanners.checks.base import (
    CIS,
    SOC2,
    Result,
    Scope,
    Severity,
    check,
    failed,
    not_applicable,
    passed,
)
from scanners.checks.context import ContainerView, Context
from scanners.checks.images import healthcheck_state
from scanners.snapshot import KIND_CONTAINER
from scanners.text import one_line

CONTAINER = (KIND_CONTAINER,)
MAX_RESTARTS = 5


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


@check(
    id="container.memory_limited",
    title="Container memory is limited",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.11",), SOC2: ("A1.1", "CC6.1")},
    remediation="Run with --memory (e.g. --memory 512m) sized for the workload.",
    requires=CONTAINER,
)
def memory_limited(c: ContainerView, _: Context) -> Result:
    memory = _int(c.host_config.get("Memory"))
    if memory > 0:
        return passed(f"HostConfig.Memory={memory}")
    return failed("HostConfig.Memory=0 (unlimited)")


@check(
    id="container.cpu_priority_set",
    title="Container CPU share is set",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.12",), SOC2: ("A1.1", "CC6.1")},
    remediation="Run with --cpu-shares (a weight other than 1024) or cap it with --cpus.",
    requires=CONTAINER,
)
def cpu_priority_set(c: ContainerView, _: Context) -> Result:
    hc = c.host_config
    shares, nano, quota = _int(hc.get("CpuShares")), _int(hc.get("NanoCpus")), _int(hc.get("CpuQuota"))
    if shares not in (0, 1024):
        return passed(f"HostConfig.CpuShares={shares}")
    if nano > 0:
        return passed(f"HostConfig.NanoCpus={nano}")
    if quota > 0:
        return passed(f"HostConfig.CpuQuota={quota}")
    return failed(f"HostConfig.CpuShares={shares} (default), no NanoCpus or CpuQuota")


@check(
    id="container.read_only_rootfs",
    title="Container root filesystem is read-only",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.13",), SOC2: ("CC6.1", "CC6.8")},
    remediation="Run with --read-only and mount writable volumes or --tmpfs only where needed.",
    requires=CONTAINER,
)
def read_only_rootfs(c: ContainerView, _: Context) -> Result:
    value = c.host_config.get("ReadonlyRootfs") is True
    return (passed if value else failed)(f"HostConfig.ReadonlyRootfs={str(value).lower()}")


@check(
    id="container.restart_policy_bounded",
    title="Restart policy is on-failure with at most 5 retries",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.15",), SOC2: ("A1.1", "CC7.1")},
    remediation="Use --restart on-failure:5 (or no automatic restart) instead of always or "
    "unless-stopped.",
    requires=CONTAINER,
)
def restart_policy_bounded(c: ContainerView, _: Context) -> Result:
    policy = c.host_config.get("RestartPolicy") or {}
    name = str(policy.get("Name") or "no")
    retries = _int(policy.get("MaximumRetryCount"))
    if name == "no":
        return passed("RestartPolicy.Name=no (never restarted)")
    if name == "on-failure":
        shown = f"RestartPolicy=on-failure:{retries}"
        if retries == 0:
            return failed(f"{shown} (0 retries forever)")
        return (passed if retries <= MAX_RESTARTS else failed)(shown)
    return failed(one_line(f"RestartPolicy.Name={name}"))


def daemon_default_ulimits(ctx: Context) -> dict[str, tuple[int, int]] | None:
    """The daemon's default-ulimits as {name: (soft, hard)}; None when unknown (no probe).

    daemon.json gives {"nofile": {"Name": "nofile", "Soft": 1024, "Hard": 2048}}; the flag
    gives "nofile=1024:2048" or "nofile=1024" (hard = soft)."""
    if ctx.host is None or ctx.daemon is None:
        return None
    setting = ctx.daemon.get("default-ulimits")
    if setting is None or not setting.value:
        return {}
    out: dict[str, tuple[int, int]] = {}
    try:
        if isinstance(setting.value, dict):
            for name, spec in setting.value.items():
                if isinstance(spec, dict):
                    out[str(spec.get("Name") or name)] = (int(spec.get("Soft")), int(spec.get("Hard")))
        else:
            for item in setting.value:
                name, _, limits = str(item).partition("=")
                soft, _, hard = limits.partition(":")
                out[name] = (int(soft), int(hard or soft))
    except (TypeError, ValueError):
        return None
    return out


@check(
    id="container.ulimits_default",
    title="Default ulimits are overridden only when needed",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.19",), SOC2: ("A1.1", "CC6.1")},
    remediation="Drop --ulimit unless the workload needs it (then record an exception); set "
    "defaults daemon-wide (2.9).",
    requires=CONTAINER,
    version=2,
)
def ulimits_default(c: ContainerView, ctx: Context) -> Result:
    # dockerd copies its default-ulimits into HostConfig.Ulimits when a container starts, so
    # only limits that differ from the daemon's defaults are overrides.
    ulimits = [u for u in c.host_config.get("Ulimits") or [] if isinstance(u, dict)]
    if not ulimits:
        return passed("HostConfig.Ulimits empty (daemon defaults)")
    defaults = daemon_default_ulimits(ctx)
    overrides = [u for u in ulimits
                 if defaults is None or defaults.get(str(u.get("Name"))) != (u.get("Soft"), u.get("Hard"))]
    shown = ",".join(f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}" for u in overrides or ulimits)
    if not overrides:
        return passed(one_line(f"HostConfig.Ulimits={shown} equal the daemon's default-ulimits"))
    unknown = " (daemon default-ulimits unknown without the host probe)" if defaults is None else ""
    return failed(one_line(f"HostConfig.Ulimits={shown}{unknown}"))


@check(
    id="container.cgroup_parent_default",
    title="Container stays under the default cgroup",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.25",), SOC2: ("A1.1", "CC6.1")},
    remediation="Drop --cgroup-parent unless an approved design needs it (then record an "
    "exception).",
    requires=CONTAINER,
)
def cgroup_parent_default(c: ContainerView, _: Context) -> Result:
    parent = str(c.host_config.get("CgroupParent") or "")
    if parent:
        return failed(one_line(f"HostConfig.CgroupParent={parent}"))
    return passed('HostConfig.CgroupParent="" (default)')


@check(
    id="container.health_reported",
    title="Container health is checked at runtime",
    scope=Scope.CONTAINER,
    severity=Severity.LOW,
    controls={CIS: ("5.27",), SOC2: ("CC7.2", "A1.2")},
    remediation="Give the image a HEALTHCHECK or run with --health-cmd; never --no-healthcheck.",
    requires=CONTAINER,
)
def health_reported(c: ContainerView, _: Context) -> Result:
    defined, detail = healthcheck_state(c.config.get("Healthcheck"))
    if not c.running:
        return not_applicable(f"container not running (State.Status={c.state.get('Status')})")
    health = c.state.get("Health")
    if isinstance(health, dict) and health.get("Status"):
        return passed(f"State.Health.Status={health.get('Status')}")
    if not defined:
        return failed(f"State.Health absent: {detail}")
    return failed("State.Health absent although a healthcheck is configured")


@check(
    id="container.pids_limited",
    title="Container PIDs are limited",
    scope=Scope.CONTAINER,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.29",), SOC2: ("A1.1", "CC6.1")},
    remediation="Run with --pids-limit (e.g. --pids-limit 200).",
    requires=CONTAINER,
)
def pids_limited(c: ContainerView, _: Context) -> Result:
    raw = c.host_config.get("PidsLimit")
    limit = _int(raw)
    if limit > 0:
        return passed(f"HostConfig.PidsLimit={limit}")
    shown = "null" if raw is None else str(raw)
    return failed(f"HostConfig.PidsLimit={shown} (unlimited)")

"""Manual checks: recommendations the Docker API and the host probe cannot decide.

Each gives ``manual`` (satisfied later by an attestation: who, when, statement, valid until),
with a detail that says what to attest and, where we have it, the evidence that helps the
person attesting (image counts, main processes). A manual check may still say ``fail`` when the
evidence positively shows a violation (a container whose main process is sshd): an attestation
must not be able to paper over what the data shows.

Host- and daemon-level manual checks emit one finding per snapshot (resource "host"/"daemon").
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
    failed,
    manual,
)
from scanners.checks.context import Context
from scanners.snapshot import KIND_CONTAINER, KIND_IMAGE
from scanners.text import one_line


def _attest(statement: str) -> CheckFn:
    def fn(_resource: object, _ctx: Context) -> Result:
        return manual(f"attest: {statement}")
    return fn


def _spec(id: str, title: str, cis: str, soc2: tuple[str, ...], fix: str,
          severity: Severity = Severity.MEDIUM, scope: Scope = Scope.DAEMON
          ) -> Callable[[CheckFn], CheckFn]:
    return check(id=id, title=title, scope=scope, severity=severity,
                 controls={CIS: (cis,), SOC2: soc2}, remediation=fix, kind=Kind.MANUAL)


host_os_hardened = _spec(
    "manual.host_os_hardened", "Host operating system is hardened", "1.2.1", ("CC7.1", "CC8.1"),
    "Harden the host to a baseline (e.g. the CIS benchmark for its distribution) and keep the "
    "result.", scope=Scope.HOST)(
    _attest("the host OS meets a hardening baseline (attach the benchmark result)"))
trusted_base_images = _spec(
    "manual.trusted_base_images", "Images come from trusted bases", "4.2", ("CC6.8", "CC8.1"),
    "Build only FROM approved base images pulled from approved registries.", Severity.HIGH)(
    _attest("every image in use is built from an approved base image and registry"))
minimal_packages = _spec(
    "manual.minimal_packages", "Images hold only the packages they need", "4.3",
    ("CC7.1", "CC8.1"), "Use minimal bases (distroless, slim, alpine) and multi-stage builds.",
    Severity.LOW)(_attest("images contain only packages their workload needs (SBOM reviewed)"))
images_scanned_rebuilt = _spec(
    "manual.images_scanned_rebuilt", "Images are scanned and rebuilt for fixes", "4.4",
    ("CC7.1", "CC8.1"), "Scan images for vulnerabilities in CI and on a schedule; rebuild and "
    "redeploy when fixes are released.", Severity.HIGH)(
    _attest("images are vulnerability-scanned and rebuilt within the patch policy window"))
content_trust = _spec(
    "manual.content_trust", "Docker Content Trust is enforced", "4.5", ("CC6.8", "CC8.1"),
    "Set DOCKER_CONTENT_TRUST=1 where images are pulled and pushed (a client-side setting the "
    "daemon cannot report).", Severity.LOW)(
    _attest("DOCKER_CONTENT_TRUST=1 (or an equivalent signature policy) where images are pulled"))
setuid_removed = _spec(
    "manual.setuid_removed", "Needless setuid and setgid bits are removed", "4.8",
    ("CC6.1", "CC6.3"), "In the Dockerfile: RUN find / -xdev -perm /6000 -type f -exec chmod "
    "a-s {} \\; || true", Severity.LOW)(
    # The Engine API exposes no file modes of an image's filesystem; deciding needs an export
    # of the image layers, which posture does not do.
    _attest("images keep only allow-listed setuid/setgid files (file modes are not visible "
            "through the Docker API)"))
verified_packages = _spec(
    "manual.verified_packages", "Only verified packages are installed", "4.11", ("CC6.8", "CC8.1"),
    "Install packages only from signed repositories; verify checksums of downloads.",
    Severity.LOW)(_attest("package signatures or checksums are verified during image builds"))
signed_images = _spec(
    "manual.signed_images", "Image signatures are verified", "4.12", ("CC6.8", "CC8.1"),
    "Sign images (cosign, Notation) and verify signatures at deploy time.")(
    _attest("every deployed image digest has a verified signature"))
only_needed_ports = _spec(
    "manual.only_needed_ports", "Only needed ports are published", "5.9", ("CC6.1", "CC6.6"),
    "Publish only the ports the service needs; remove -P/--publish-all.")(
    _attest("each published port is on the approved list for its workload"))
no_privileged_exec = _spec(
    "manual.no_privileged_exec", "docker exec is not run with --privileged", "5.23",
    ("CC6.1", "CC6.3"), "Do not use docker exec --privileged; audit exec events.")(
    _attest("audit logs show no docker exec --privileged in the period"))
no_root_exec = _spec(
    "manual.no_root_exec", "docker exec is not run as root", "5.24", ("CC6.1", "CC6.3"),
    "Do not use docker exec --user=root; audit exec events.")(
    _attest("audit logs show no docker exec --user=root in the period"))
latest_image_version = _spec(
    "manual.latest_image_version", "Containers run the current image version", "5.28",
    ("CC7.1", "CC8.1"), "Redeploy containers when their image tag moves to a patched digest.")(
    _attest("running containers use the current approved digest of their image tag"))


def _main_process(c: object) -> str:
    config = getattr(c, "config", {}) or {}
    parts = [str(getattr(c, "inspect", {}).get("Path") or "")]
    parts += [str(a) for a in getattr(c, "inspect", {}).get("Args") or []]
    parts += [str(a) for a in (config.get("Entrypoint") or []) + (config.get("Cmd") or [])]
    return " ".join(p for p in parts if p)


@check(
    id="manual.no_sshd_in_containers",
    title="Containers do not run sshd",
    scope=Scope.DAEMON,
    severity=Severity.MEDIUM,
    controls={CIS: ("5.7",), SOC2: ("CC6.1", "CC6.6")},
    remediation="Remove sshd from images; use docker exec (audited) for maintenance.",
    requires=(KIND_CONTAINER,),
    kind=Kind.MANUAL,
)
def no_sshd_in_containers(ctx: Context, _: Context) -> Result:
    # Process lists are not collected, but a main process named sshd is proof enough to fail.
    for c in ctx.containers:
        if any(tok.rsplit("/", 1)[-1] == "sshd" for tok in _main_process(c).split()):
            return failed(one_line(f"container {c.name} runs sshd as its main process"))
    return manual(f"attest: no container runs sshd (main processes of {len(ctx.containers)} "
                  "containers checked; process lists are not collected)")


@check(
    id="manual.image_sprawl",
    title="Unused images are pruned",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("6.1",), SOC2: ("CC6.1", "CC7.1")},
    remediation="Remove images no container uses (docker image prune -a) on a schedule.",
    requires=(KIND_IMAGE,),
    kind=Kind.MANUAL,
)
def image_sprawl(ctx: Context, _: Context) -> Result:
    # How many unused images are too many is a policy choice, so the counts go to a person.
    used = {str(c.inspect.get("Image") or "") for c in ctx.containers}
    unused = [i for i in ctx.images if i.id not in used]
    return manual(f"{len(ctx.images)} images, {len(unused)} unused by any container; attest "
                  "they are reviewed and pruned per policy")


@check(
    id="manual.container_sprawl",
    title="Stopped containers are pruned",
    scope=Scope.DAEMON,
    severity=Severity.LOW,
    controls={CIS: ("6.2",), SOC2: ("CC6.1", "CC7.1")},
    remediation="Remove stopped containers that are not needed (docker container prune).",
    requires=(KIND_CONTAINER,),
    kind=Kind.MANUAL,
)
def container_sprawl(ctx: Context, _: Context) -> Result:
    stopped = [c for c in ctx.containers if not c.running]
    return manual(f"{len(ctx.containers)} containers, {len(stopped)} not running; attest they "
                  "are reviewed and pruned per policy")

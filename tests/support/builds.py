"""Build images on a private dockerd with the classic builder and with BuildKit.

Why both: Docker repeats ``ENV``/``ARG`` values in different places depending on the
builder (the classic builder in ``ContainerConfig.Cmd`` and ``#(nop)`` history lines,
BuildKit in ``ENV K=V``/``RUN |N K=V`` history lines), and secret-redaction must be proven
on what each really writes.

    legacy_build(client, dockerfile, "t:1", buildargs={...}, rm=False)   # docker-py, /build v1
    cli = buildkit_cli(daemon)            # a docker CLI that can drive BuildKit, or None
    buildkit_build(cli, daemon, dockerfile, "t:2", buildargs={...})

``canary_dockerfiles(canary)`` gives Dockerfiles that put a canary value in every form:
single and multi-pair ``ENV``, quoted values, a value holding ``word=`` text, legacy
``ENV K v``, ``ARG`` defaults and ``--build-arg`` values reaching a ``RUN`` line,
``ONBUILD ENV``, and images whose LAST step is an ``ENV``, an ``ARG`` or a ``RUN`` after
``ARG`` (the classic builder leaves the last step's command in ``ContainerConfig.Cmd``).
Every build uses ``--network=none``: the private daemons have no bridge.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field

import docker

from tests.support.dockerd import BASE_IMAGE, PrivateDaemon

__all__ = ["BuildSpec", "buildkit_build", "buildkit_cli", "canary_dockerfiles", "legacy_build"]


@dataclass
class BuildSpec:
    """One Dockerfile and the ``--build-arg`` values to build it with."""

    dockerfile: str
    buildargs: dict[str, str] = field(default_factory=dict)


def canary_dockerfiles(canary: str) -> dict[str, BuildSpec]:
    """Dockerfiles keyed by a short name; every value that must never be stored holds ``canary``."""
    c = canary
    return {
        # Ends with ENV: the classic builder leaves ["/bin/sh", "-c", "#(nop) ", "ENV ..."]
        # in ContainerConfig.Cmd.
        "ends-env": BuildSpec(
            f"""FROM {BASE_IMAGE}
ARG BUILD_SECRET={c}-argdefault
ARG PLAIN
ENV A={c}-a B="{c}-b two words" C='{c}-c'
ENV ODD="{c}-odd {c}x=y"
ENV LEGACY {c}-legacy value words
RUN echo "$BUILD_SECRET $PLAIN" > /dev/null
ONBUILD ENV ONB={c}-onbuild
ENV UPSTREAM_SETTING={c}-upstream
""",
            {"PLAIN": f"{c}-plain-buildarg"},
        ),
        # Ends with ARG: ContainerConfig.Cmd is ["/bin/sh", "-c", "#(nop) ", "ARG ..."].
        "ends-arg": BuildSpec(f"FROM {BASE_IMAGE}\nENV KEEP=1\nARG LAST_ARG={c}-lastarg\n"),
        # Ends with RUN after ARG: ContainerConfig.Cmd is ["|2", "K=V", "K2=V2", "/bin/sh", ...].
        "ends-run": BuildSpec(
            f"""FROM {BASE_IMAGE}
ARG RUN_ARG={c}-runarg-default
ARG GIVEN
RUN echo "$RUN_ARG $GIVEN" > /dev/null
""",
            {"GIVEN": f"{c}-given two words"},
        ),
    }


def _context_tar(dockerfile: str) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def legacy_build(
    client: docker.DockerClient, spec: BuildSpec, tag: str, *, rm: bool = True
) -> str:
    """Build with the classic builder (docker-py speaks only /build v1); returns the image id.

    ``rm=False`` keeps every intermediate build container, as ``docker build --rm=false``.
    """
    log = []
    for chunk in client.api.build(
        fileobj=_context_tar(spec.dockerfile),
        custom_context=True,
        tag=tag,
        buildargs=spec.buildargs,
        rm=rm,
        forcerm=rm,
        network_mode="none",
        decode=True,
    ):
        log.append(chunk)
        if "error" in chunk:
            raise RuntimeError(f"classic build of {tag} failed: {chunk['error']}")
    return client.api.inspect_image(tag)["Id"]


def _cli_env(daemon: PrivateDaemon, config_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=daemon.url, DOCKER_BUILDKIT="1", DOCKER_CONFIG=config_dir)
    return env


def buildkit_cli(daemon: PrivateDaemon) -> str | None:
    """A docker CLI that builds with BuildKit against ``daemon``, or None.

    Docker CLI 20.10 (Debian's docker.io, /usr/bin/docker) carries a BuildKit client of its
    own; newer CLIs need the buildx plugin. Each candidate is tried on a one-line build.
    """
    candidates = [p for p in ("/usr/bin/docker", shutil.which("docker")) if p and os.path.exists(p)]
    for cli in dict.fromkeys(candidates):
        try:
            buildkit_build(cli, daemon, BuildSpec(f"FROM {BASE_IMAGE}\n"), "posture-buildkit-probe:1")
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            continue
        return cli
    return None


def buildkit_build(cli: str, daemon: PrivateDaemon, spec: BuildSpec, tag: str) -> None:
    """``DOCKER_BUILDKIT=1 docker build --network=none`` of ``spec``, tagged ``tag``."""
    with tempfile.TemporaryDirectory(prefix="h6bk") as ctx, tempfile.TemporaryDirectory(prefix="h6cfg") as cfg:
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(spec.dockerfile)
        args = [cli, "build", "--network=none", "-t", tag]
        for key, value in spec.buildargs.items():
            args += ["--build-arg", f"{key}={value}"]
        done = subprocess.run(
            [*args, ctx], env=_cli_env(daemon, cfg), capture_output=True, text=True, timeout=180, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"BuildKit build of {tag} with {cli} failed: {done.stderr[-1000:]}")

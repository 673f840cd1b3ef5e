"""ENV/ARG values are removed everywhere a real dockerd repeats them, for both builders.

Runs on ``tests/fixtures/recorded/builds.json``: raw answers of a real dockerd 20.10 for
images built by the classic builder and by BuildKit, the classic builder's intermediate
containers (``--rm=false``) and a container run with a ``-e`` value; every value is a
``CANARY-`` string (see record_builds.py for how it was made).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scanners.collectors.containers import container_evidence
from scanners.collectors.images import image_evidence
from scanners.redact import REDACTED

BUILDS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "recorded" / "builds.json").read_text())
CANARY = "CANARY-"
NAMES = ("ends-env", "ends-arg", "ends-run")


def canary_paths(value: Any, path: str = "") -> set[str]:
    """JSON paths (list indexes dropped) of the strings that hold the canary."""
    if isinstance(value, dict):
        return set().union(*(canary_paths(v, f"{path}.{k}") for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(canary_paths(v, f"{path}[]") for v in value))
    return {path} if isinstance(value, str) and CANARY in value else set()


def history_lines(evidence: dict) -> list[str]:
    return [h["CreatedBy"] for h in evidence["history"]]


def test_the_recording_really_repeats_values_in_every_place():
    legacy = set().union(*(canary_paths(BUILDS["legacy"][n]) for n in NAMES))
    buildkit = set().union(*(canary_paths(BUILDS["buildkit"][n]) for n in NAMES))
    containers = canary_paths(BUILDS["containers"])
    assert {
        ".inspect.Config.Env[]",
        ".inspect.ContainerConfig.Env[]",
        ".inspect.ContainerConfig.Cmd[]",
        ".inspect.Config.OnBuild[]",
        ".inspect.ContainerConfig.OnBuild[]",
        ".history[].CreatedBy",
    } <= legacy
    assert {".inspect.Config.Env[]", ".inspect.Config.OnBuild[]", ".history[].CreatedBy"} <= buildkit
    assert {"[].Config.Env[]", "[].Config.Cmd[]", "[].Args[]", "[].Config.OnBuild[]"} <= containers


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
@pytest.mark.parametrize("name", NAMES)
def test_it_removes_every_value_from_images(builder, name):
    raw = BUILDS[builder][name]
    assert canary_paths(image_evidence(raw["inspect"], raw["history"])) == set()


def test_it_removes_every_value_from_containers_and_leftover_build_containers():
    evidence = [container_evidence(c) for c in BUILDS["containers"]]
    assert len(evidence) >= 5
    assert canary_paths(evidence) == set()


@pytest.mark.parametrize("builder,prefix", [("legacy", "/bin/sh -c #(nop)  "), ("buildkit", "")])
def test_it_keeps_names_in_env_and_arg_history_lines(builder, prefix):
    raw = BUILDS[builder]["ends-env"]
    lines = history_lines(image_evidence(raw["inspect"], raw["history"]))
    for expected in (
        f"ENV UPSTREAM_SETTING={REDACTED}",
        f"ENV LEGACY={REDACTED}",
        f"ENV ODD={REDACTED}",  # "ODD=<v> <v>x=y": the "x=" inside the value is not a name
        f"ENV A={REDACTED} B={REDACTED} C={REDACTED}",
        f"ARG BUILD_SECRET={REDACTED}",
        "ARG PLAIN",
    ):
        assert prefix + expected in lines


def test_it_keeps_the_name_of_an_onbuild_env_line():
    # Only the classic builder records a history line for ONBUILD; both keep Config.OnBuild.
    raw = BUILDS["legacy"]["ends-env"]
    evidence = image_evidence(raw["inspect"], raw["history"])
    assert f"/bin/sh -c #(nop)  ONBUILD ENV ONB={REDACTED}" in history_lines(evidence)
    assert evidence["inspect"]["Config"]["OnBuild"] == [f"ENV ONB={REDACTED}"]


@pytest.mark.parametrize(
    "builder,line",
    [
        # the classic builder sorts the pairs, BuildKit keeps declaration order
        ("legacy", f'|2 GIVEN={REDACTED} RUN_ARG={REDACTED} /bin/sh -c echo "$RUN_ARG $GIVEN" > /dev/null'),
        ("buildkit", f'RUN |2 RUN_ARG={REDACTED} GIVEN={REDACTED} /bin/sh -c echo "$RUN_ARG $GIVEN" > /dev/null # buildkit'),
    ],
)
def test_it_keeps_build_arg_names_on_run_lines(builder, line):
    raw = BUILDS[builder]["ends-run"]
    assert line in history_lines(image_evidence(raw["inspect"], raw["history"]))


@pytest.mark.parametrize(
    "name,cmd",
    [
        ("ends-env", ["/bin/sh", "-c", "#(nop) ", f"ENV UPSTREAM_SETTING={REDACTED}"]),
        ("ends-arg", ["/bin/sh", "-c", "#(nop) ", f"ARG LAST_ARG={REDACTED}"]),
        ("ends-run", ["|2", f"GIVEN={REDACTED}", f"RUN_ARG={REDACTED}", "/bin/sh", "-c", 'echo "$RUN_ARG $GIVEN" > /dev/null']),
    ],
)
def test_it_keeps_the_shape_of_the_classic_builders_container_config_cmd(name, cmd):
    raw = BUILDS["legacy"][name]
    assert image_evidence(raw["inspect"], raw["history"])["inspect"]["ContainerConfig"]["Cmd"] == cmd


def test_it_keeps_env_names_and_only_names():
    raw = BUILDS["legacy"]["ends-env"]
    env = image_evidence(raw["inspect"], raw["history"])["inspect"]["Config"]["Env"]
    assert [e["name"] for e in env] == ["PATH", "A", "B", "C", "ODD", "LEGACY", "UPSTREAM_SETTING"]
    assert all(set(e) == {"name", "looks_secret"} for e in env)
    runtime = next(c for c in BUILDS["containers"] if c["Name"] == "/runtime")
    names = {e["name"] for e in container_evidence(runtime)["inspect"]["Config"]["Env"]}
    assert {"RUNTIME_SETTING", "UPSTREAM_SETTING"} <= names


def test_it_redacts_the_command_of_a_leftover_build_container_as_one_list():
    step = next(c for c in BUILDS["containers"] if "ENV UPSTREAM_SETTING=" in " ".join(c["Args"]))
    out = container_evidence(step)["inspect"]
    assert out["Path"] == "/bin/sh"
    assert out["Args"] == ["-c", "#(nop) ", f"ENV UPSTREAM_SETTING={REDACTED}"]
    assert out["Config"]["Cmd"] == ["/bin/sh", "-c", "#(nop) ", f"ENV UPSTREAM_SETTING={REDACTED}"]

"""No ENV, ARG, build-arg or ``-e`` value ever reaches the database or ``scan --json``.

A real private dockerd builds images whose every such value holds a unique canary, with
the classic builder (``--rm=false`` for one build, so its intermediate containers stay)
and with BuildKit, and runs containers from them with a canary ``-e`` value. A real
``manage.py scan --json`` (collect -> store -> evaluate, real PostgreSQL) must then leave
the canary nowhere: not in any column of any table (every row of every table is read back
as text), not in the command's output. The test first proves the daemon really repeats the
canary in each place (``ContainerConfig.Cmd``, history, ``OnBuild``, container ``Args``...).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import pytest

from posture.models import DockerHost
from tests.integration.test_scan_pipeline import all_database_text, run
from tests.support.builds import buildkit_build, buildkit_cli, canary_dockerfiles, legacy_build
from tests.support.docker_fixtures import ContainerFactory, require_docker
from tests.support.dockerd import PrivateDaemon, make_base_image

pytestmark = [pytest.mark.docker, pytest.mark.django_db(transaction=True)]

#: One canary for the module: unique, so a hit can only come from these builds.
CANARY = f"canary-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="module")
def daemon() -> Iterator[PrivateDaemon]:
    """A daemon of its own: the builds leave images and stopped containers behind."""
    require_docker()
    with PrivateDaemon(prefix="h6c") as d, contextlib.closing(d.client()) as client:
        make_base_image(client)
        yield d


@pytest.fixture(scope="module")
def legacy_images(daemon) -> dict[str, str]:
    """Tag by spec name, built with the classic builder; ``ends-env`` keeps its build containers."""
    tags = {}
    with contextlib.closing(daemon.client()) as client:
        for name, spec in canary_dockerfiles(CANARY).items():
            tags[name] = f"legacy-{name}:1"
            legacy_build(client, spec, tags[name], rm=name != "ends-env")
    return tags


@pytest.fixture(scope="module")
def buildkit_images(daemon) -> dict[str, str]:
    cli = buildkit_cli(daemon)
    if cli is None:
        pytest.skip("no docker CLI here can build with BuildKit (Debian's docker.io /usr/bin/docker can)")
    tags = {}
    for name, spec in canary_dockerfiles(CANARY).items():
        tags[name] = f"buildkit-{name}:1"
        buildkit_build(cli, daemon, spec, tags[name])
    return tags


@pytest.fixture
def containers(daemon) -> Iterator[ContainerFactory]:
    with contextlib.closing(daemon.client()) as client:
        factory = ContainerFactory(client)
        yield factory
        factory.remove_all()


def raw_text(daemon: PrivateDaemon) -> str:
    """Everything the daemon answers about its images and containers, unredacted."""
    with contextlib.closing(daemon.client()) as client:
        api = client.api
        docs = [api.inspect_image(i["Id"]) for i in api.images()] + [api.history(i["Id"]) for i in api.images()]
        docs += [api.inspect_container(c["Id"]) for c in api.containers(all=True)]
    return json.dumps(docs)


def scan_and_assert_no_canary(daemon: PrivateDaemon) -> dict:
    assert run("addhost", "canary-host", daemon.url, "--no-probe")[0] == 0
    code, out, err = run("scan", "canary-host", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["state"] == "succeeded", (doc, err)
    assert CANARY not in out and CANARY not in err
    text = all_database_text()
    assert CANARY not in text
    # ...and not because nothing was kept: the names and the redaction markers are there.
    assert "UPSTREAM_SETTING" in text and "<redacted>" in text
    assert DockerHost.objects.get().scans.get().evidence_set_id is not None
    return doc


def test_it_stores_no_value_from_classic_builds_their_containers_or_e_flags(daemon, legacy_images, containers):
    containers(image=legacy_images["ends-env"], env=[f"RUNTIME_SETTING={CANARY}-runtime"])
    containers(image=legacy_images["ends-run"], env={"API_TOKEN": f"{CANARY}-token"}, start=False)
    raw = raw_text(daemon)
    for place in (
        f'"#(nop) ", "ENV UPSTREAM_SETTING={CANARY}-upstream"',  # ContainerConfig.Cmd / build container
        f'"#(nop) ", "ARG LAST_ARG={CANARY}-lastarg"',
        f'"|2", "GIVEN={CANARY}-given two words", "RUN_ARG={CANARY}-runarg-default"',
        f"#(nop)  ENV A={CANARY}-a B={CANARY}-b two words",  # history
        f"#(nop)  ONBUILD ENV ONB={CANARY}-onbuild",
        f'"ENV ONB={CANARY}-onbuild"',  # Config.OnBuild
        f'"RUNTIME_SETTING={CANARY}-runtime"',  # -e
    ):
        assert place in raw, place  # the daemon really repeats it there
    doc = scan_and_assert_no_canary(daemon)
    assert doc["evidence"]["images"] >= 4 and doc["evidence"]["containers"] >= 8


def test_it_stores_no_value_from_buildkit_builds(daemon, buildkit_images, containers):
    containers(image=buildkit_images["ends-env"], env=[f"RUNTIME_SETTING={CANARY}-bk-runtime"])
    raw = raw_text(daemon)
    for place in (
        f"ENV UPSTREAM_SETTING={CANARY}-upstream",
        f"RUN |2 RUN_ARG={CANARY}-runarg-default GIVEN={CANARY}-given two words",
        f"ARG BUILD_SECRET={CANARY}-argdefault",
    ):
        assert place in raw, place
    doc = scan_and_assert_no_canary(daemon)
    assert doc["evidence"]["images"] >= 4

"""A daemon that answers with the wrong shape is the host's failure, named by the call.

Each case runs a real collection (real docker-py, real HTTP over a unix socket) against
:class:`~tests.support.fake_docker.FakeDocker` answering garbage on one path, and expects
:class:`~scanners.errors.MalformedAnswer` (a ScanError: the scan ends ``failed``) with a
one-line reason, never a TypeError/AttributeError from inside posture.
"""

from __future__ import annotations

import pytest

from scanners.client import HostConfig, open_client
from scanners.collect import collect
from scanners.errors import MalformedAnswer, ScanError
from tests.support.fake_docker import Answer, FakeDocker

CID = "c" * 64
IID = "sha256:" + "e" * 64
#: The smallest container inspect that is valid.
CONTAINER = {"Id": CID, "Name": "/web", "Config": {"Env": ["A=1"]}, "HostConfig": {}, "State": {"Running": True},
             "Mounts": []}  # fmt: skip
IMAGE = {"Id": IID, "RepoTags": ["x:1"], "Config": {"Env": None}}
ONE_CONTAINER = {"/containers/json": Answer.json([{"Id": CID}]), "/containers/*/json": Answer.json(CONTAINER)}
ONE_IMAGE = {"/images/json": Answer.json([{"Id": IID}]), "/images/*/json": Answer.json(IMAGE),
             "/images/*/history": Answer.json([{"Id": IID, "CreatedBy": "", "Created": 1, "Size": 0}])}  # fmt: skip


def scan(routes: dict[str, Answer]):
    with FakeDocker(routes) as fake, open_client(HostConfig(url=fake.url, timeout=5)) as client:
        return collect(client, deadline=None)


def test_it_collects_the_fake_host_when_nothing_is_broken():
    snap = scan({**ONE_CONTAINER, **ONE_IMAGE})
    assert [c["name"] for c in snap["containers"]] == ["web"] and [i["id"] for i in snap["images"]] == [IID]


@pytest.mark.parametrize(
    "routes,reason",
    [
        ({"/info": Answer.json([1, 2])}, "the daemon answered /info with malformed data: expected an object, got a list"),
        ({"/info": Answer.json("hello")}, "the daemon answered /info with malformed data: expected an object, got a string"),
        ({"/info": Answer.json({"Containers": "x"})},
         "the daemon answered /info with malformed data: Containers: expected an integer, got a string"),
        ({"/info": Answer.json({"SecurityOptions": "name=seccomp"})},
         "the daemon answered /info with malformed data: SecurityOptions: expected a list or null, got a string"),
        ({"/info": Answer.json({"Plugins": {"Volume": [1]}})},
         "the daemon answered /info with malformed data: Plugins.Volume[0]: expected a string, got an integer"),
        ({"/info": Answer.raw(b'{"ID": "abc", ')}, "the daemon answered /info with malformed data: not valid JSON"),
        ({"/info": Answer.raw(b"[" * 100_000 + b"]" * 100_000)},
         "the daemon answered /info with malformed data: JSON nested too deeply"),
        ({"/version": Answer.json(20)}, "the daemon answered /version with malformed data: expected an object, got an integer"),
        ({"/containers/json": Answer.json({"Id": CID})},
         "the daemon answered /containers/json with malformed data: expected a list, got an object"),
        ({"/containers/json": Answer.json([{"Names": ["/x"]}])},
         "the daemon answered /containers/json with malformed data: [0]: missing Id"),
        ({"/images/json": Answer.json([{"Id": 5}])},
         "the daemon answered /images/json with malformed data: [0].Id: expected a string, got an integer"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.json({"Id": CID})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: missing Config, HostConfig, State"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.json({**CONTAINER, "State": "running"})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: State: expected an object, got a string"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.json({**CONTAINER, "Config": {"Env": [{"K": "secret"}]}})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: "
         "Config.Env[0]: expected a string, got an object"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.json({**CONTAINER, "Mounts": ["/etc"]})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: Mounts[0]: expected an object, got a string"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.json({**CONTAINER, "Id": "d" * 64})},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: "
         "its Id is not the container that was asked for"),
        ({**ONE_CONTAINER, "/containers/*/json": Answer.raw(b"<html>")},
         f"the daemon answered /containers/{CID[:12]}/json with malformed data: not valid JSON"),
        ({**ONE_IMAGE, "/images/*/json": Answer.json({"RepoTags": ["x:1"]})},
         f"the daemon answered /images/{IID[:19]}/json with malformed data: missing Id"),
        ({**ONE_IMAGE, "/images/*/json": Answer.json({**IMAGE, "RepoTags": "x:1"})},
         f"the daemon answered /images/{IID[:19]}/json with malformed data: RepoTags: expected a list or null, got a string"),
        ({**ONE_IMAGE, "/images/*/history": Answer.json({"CreatedBy": "x"})},
         f"the daemon answered /images/{IID[:19]}/history with malformed data: expected a list, got an object"),
        ({**ONE_CONTAINER,
          "/containers/*/json": Answer.json({**CONTAINER, "Mounts": [{"Type": "volume", "Name": "data"}]}),
          "/volumes/data": Answer.json(["data"])},
         "the daemon answered /volumes/data with malformed data: expected an object, got a list"),
    ],
)
def test_it_fails_with_a_reason_naming_the_call(routes, reason):
    with pytest.raises(MalformedAnswer) as raised:
        scan(routes)
    assert isinstance(raised.value, ScanError)
    assert str(raised.value) == reason


def test_it_never_repeats_the_peers_value_in_the_reason():
    with pytest.raises(MalformedAnswer) as raised:
        scan({"/info": Answer.json({"Name": {"<script>": "x" * 10_000}})})
    assert str(raised.value) == "the daemon answered /info with malformed data: Name: expected a string, got an object"

"""Collector transformations on JSON recorded from a real dockerd 20.10 (tests/fixtures/recorded).

The recordings are raw daemon answers containing deliberate ``CANARY-`` secrets (env values,
ENV/ARG values, a build-arg, a URL password) and an AWS-key-shaped value; the collectors
must remove every one of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanners.collectors.containers import container_evidence
from scanners.collectors.daemon import VOLATILE_INFO_KEYS, normalize_info
from scanners.collectors.images import image_evidence
from scanners.sanitize import sanitize

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"
SECRETS = ("CANARY-", "AKIAIOSFODNN7F3A9CEX")


def load(name: str):
    return json.loads((RECORDED / name).read_text())


def assert_no_secret(value) -> None:
    text = json.dumps(value)
    for secret in SECRETS:
        assert secret not in text, secret


def test_the_recordings_really_contain_the_canaries():
    raw = "".join((RECORDED / n).read_text() for n in ("images.json", "containers.json"))
    assert raw.count("CANARY-") >= 10 and "AKIAIOSFODNN7F3A9CEX" in raw


@pytest.fixture(scope="module")
def images():
    return [image_evidence(i["inspect"], i["history"]) for i in load("images.json")]


@pytest.fixture(scope="module")
def containers():
    return {c["name"]: c for c in (container_evidence(i) for i in load("containers.json"))}


def test_it_removes_every_secret_from_images(images):
    assert_no_secret(images)


def test_it_keeps_image_env_names_in_order_with_flags(images):
    img = next(i for i in images if "rec/secrets:1" in i["tags"])
    env = img["inspect"]["Config"]["Env"]
    assert [e["name"] for e in env] == ["PATH", "API_TOKEN", "DATABASE_URL", "LEGACY_SECRET", "LANG", "APP_HOME"]
    flags = {e["name"]: e["looks_secret"] for e in env}
    assert flags == {
        "PATH": False,
        "API_TOKEN": True,
        "DATABASE_URL": True,  # postgres://app:<pw>@db
        "LEGACY_SECRET": True,
        "LANG": False,
        "APP_HOME": False,
    }
    # ContainerConfig (build-time env) is redacted the same way
    assert img["inspect"]["ContainerConfig"]["Env"] == env


def test_it_lists_tags_sorted_and_keeps_history_shape(images):
    img = next(i for i in images if "rec/secrets:1" in i["tags"])
    assert img["tags"] == ["rec/secrets:1", "rec/secrets:alias"]
    assert img["id"] == img["inspect"]["Id"]
    created = [h["CreatedBy"] for h in img["history"]]
    assert any("ENV API_TOKEN=<redacted> DATABASE_URL=<redacted>" in c for c in created)
    assert any(c.startswith("|2 BUILD_TOKEN=<redacted> WITH_DEFAULT=<redacted> /bin/sh -c echo") for c in created)
    assert any(c.endswith("ARG BUILD_TOKEN") for c in created)
    assert any("USER 65534" in c for c in created)


def test_it_removes_every_secret_from_containers(containers):
    assert_no_secret(containers)


def test_it_names_containers_without_slash_and_flags_env(containers):
    assert set(containers) == {"rec-web", "rec-health", "rec-stopped"}
    env = {e["name"]: e["looks_secret"] for e in containers["rec-web"]["inspect"]["Config"]["Env"]}
    assert env["DB_PASSWORD"] and env["HARMLESS_LOOKING"] and not env["TZ"] and not env["PATH"]


def test_it_keeps_runtime_configuration(containers):
    hc = containers["rec-web"]["inspect"]["HostConfig"]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["ReadonlyRootfs"] is True and hc["PidsLimit"] == 50
    assert containers["rec-web"]["inspect"]["Config"]["User"] == "65534:65534"
    assert containers["rec-stopped"]["inspect"]["State"]["Running"] is False


def test_it_sorts_mounts_by_destination(containers):
    raw = next(c for c in load("containers.json") if c["Name"] == "/rec-web")
    raw = {**raw, "Mounts": list(reversed(raw["Mounts"]))}
    mounts = container_evidence(raw)["inspect"]["Mounts"]
    assert [m["Destination"] for m in mounts] == ["/adata", "/tmp", "/zdata"]


def test_it_drops_the_healthcheck_log_but_keeps_the_status(containers):
    raw = next(c for c in load("containers.json") if c["Name"] == "/rec-health")
    assert raw["State"]["Health"]["Log"]  # the recording has probe results with timestamps
    health = containers["rec-health"]["inspect"]["State"]["Health"]
    assert "Log" not in health and health["Status"] in ("healthy", "starting")


def test_it_strips_volatile_counters_from_info():
    info = load("info.json")
    assert all(k in info for k in VOLATILE_INFO_KEYS)
    out = normalize_info(info)
    assert not any(k in out for k in VOLATILE_INFO_KEYS)
    assert out["DockerRootDir"] == info["DockerRootDir"]
    changed = {**info, "SystemTime": "2030-01-01T00:00:00Z", "NGoroutines": 999, "NFd": 1, "NEventsListener": 7}
    assert json.dumps(normalize_info(changed), sort_keys=True) == json.dumps(out, sort_keys=True)


def test_it_does_not_modify_the_raw_documents():
    raw = load("containers.json")
    before = json.dumps(raw, sort_keys=True)
    [container_evidence(c) for c in raw]
    assert json.dumps(raw, sort_keys=True) == before


def test_recorded_evidence_is_storable():
    docs = [image_evidence(i["inspect"], i["history"]) for i in load("images.json")]
    docs += [container_evidence(c) for c in load("containers.json")]
    text = json.dumps(sanitize(docs), ensure_ascii=False)
    assert "\\u0000" not in text
    text.encode("utf-8")


def test_it_keeps_what_a_volume_mounts_but_not_its_credentials():
    from scanners.collectors.containers import volume_options

    cifs = {"Driver": "local", "Options": {"type": "cifs", "device": "//files/share",
                                           "o": "username=svc,password=hunter2canary,vers=3.0"}}
    assert volume_options(cifs) == {"Driver": "local", "type": "cifs", "device": "//files/share",
                                    "o": "username=svc,password=<redacted>,vers=3.0"}
    bind = {"Driver": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}
    assert volume_options(bind)["device"] == "/etc"
    assert volume_options({"Driver": "local", "Options": None}) == {"Driver": "local", "type": "", "device": "", "o": ""}

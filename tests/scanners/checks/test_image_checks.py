"""Image checks (CIS 4.1, 4.6, 4.7, 4.9, 4.10) on images built by a real daemon (record.py):

local/busybox:1  imported rootfs, no USER, no HEALTHCHECK
rec/good:1       USER 65534, HEALTHCHECK CMD, COPY only
rec/bad:1        ADD, ENV DB_PASSWORD, ARG API_TOKEN used by RUN, RUN apt-get update alone,
                 HEALTHCHECK NONE, USER root
rec/uid0:1       USER 0, apt-get update && apt-get install in one RUN, no HEALTHCHECK
"""

from __future__ import annotations

import pytest

from scanners.checks import images as i
from scanners.checks.base import Status
from scanners.checks.images import instruction

from .helpers import evaluate, image, snapshot

PASS, FAIL = Status.PASS, Status.FAIL


@pytest.mark.parametrize(("tag", "expected"), [
    ("rec/good:1", (PASS, "Config.User=65534:65534")),
    ("rec/bad:1", (FAIL, "Config.User=root")),
    ("rec/uid0:1", (FAIL, "Config.User=0")),
    ("local/busybox:1", (FAIL, 'Config.User="" (defaults to root)')),
])
def test_it_checks_the_image_user(tag, expected):
    assert evaluate(i.image_user_not_root, snapshot(), tag) == expected


def test_it_treats_root_with_any_group_as_root():
    snap = snapshot()
    image(snap, "rec/good:1")["inspect"]["Config"]["User"] = "root:nogroup"
    assert evaluate(i.image_user_not_root, snap, "rec/good:1")[0] is FAIL


@pytest.mark.parametrize(("tag", "expected"), [
    ("rec/good:1", (PASS, "Config.Healthcheck.Test=['CMD', '/bin/true']")),
    ("rec/bad:1", (FAIL, "Config.Healthcheck.Test=[NONE] (HEALTHCHECK NONE)")),
    ("rec/uid0:1", (FAIL, "Config.Healthcheck not set")),
])
def test_it_checks_the_healthcheck(tag, expected):
    assert evaluate(i.healthcheck_defined, snapshot(), tag) == expected


@pytest.mark.parametrize(("tag", "status"), [
    ("rec/bad:1", FAIL), ("rec/uid0:1", PASS), ("rec/good:1", PASS), ("local/busybox:1", PASS)])
def test_it_flags_update_only_run_instructions(tag, status):
    assert evaluate(i.no_update_only_run, snapshot(), tag)[0] is status


def test_it_names_the_update_only_instruction():
    assert evaluate(i.no_update_only_run, snapshot(), "rec/bad:1") == (FAIL, "history RUN apt-get update")


@pytest.mark.parametrize(("created_by", "bad"), [
    ("RUN /bin/sh -c apk update # buildkit", True),
    ("RUN /bin/sh -c apk add --update curl # buildkit", False),
    ("/bin/sh -c yum -y update", True),
    ("/bin/sh -c yum -y update && yum -y install httpd", False),
    ("/bin/sh -c dnf makecache", True),
    ("/bin/sh -c echo updated", False),
])
def test_it_reads_update_commands_of_several_package_managers(created_by, bad):
    snap = snapshot()
    image(snap, "rec/good:1")["history"].insert(0, {"CreatedBy": created_by})
    assert evaluate(i.no_update_only_run, snap, "rec/good:1")[0] is (FAIL if bad else PASS)


def test_it_flags_add_instructions():
    status, detail = evaluate(i.no_add_instruction, snapshot(), "rec/bad:1")
    assert status is FAIL and detail.startswith("history ADD file:") and detail.endswith("in /app/hello.txt")
    assert evaluate(i.no_add_instruction, snapshot(), "rec/good:1")[0] is PASS


def test_it_excuses_the_base_root_filesystem_layer():
    snap = snapshot()
    history = image(snap, "rec/good:1")["history"]
    history[-1]["CreatedBy"] = "/bin/sh -c #(nop) ADD file:4f3e2a in / "  # oldest entry
    assert evaluate(i.no_add_instruction, snap, "rec/good:1")[0] is PASS
    history.insert(0, {"CreatedBy": "ADD https://example.com/app.tgz /opt/ # buildkit"})
    assert evaluate(i.no_add_instruction, snap, "rec/good:1") == (
        FAIL, "history ADD https://example.com/app.tgz /opt/")


def test_it_flags_secret_env_by_the_collectors_flag():
    assert evaluate(i.no_secrets, snapshot(), "rec/bad:1") == (FAIL, "Config.Env DB_PASSWORD looks secret")
    assert evaluate(i.no_secrets, snapshot(), "rec/good:1") == (
        PASS, "no secret-looking Env, label or history entry")


def test_it_flags_secret_build_args_kept_in_history():
    snap = snapshot()
    inspect = image(snap, "rec/bad:1")["inspect"]
    for section in ("Config", "ContainerConfig"):
        if inspect.get(section):
            inspect[section]["Env"] = [e for e in inspect[section]["Env"] if not e["looks_secret"]]
    history = image(snap, "rec/bad:1")["history"]
    history[:] = [h for h in history if "#(nop)  ENV" not in h["CreatedBy"]
                  and "#(nop)  ARG" not in h["CreatedBy"]]  # leave only "|1 API_TOKEN=... RUN"
    assert evaluate(i.no_secrets, snap, "rec/bad:1") == (
        FAIL, "history build arg API_TOKEN keeps a secret-looking value")


def test_it_flags_secret_arg_defaults_in_history():
    snap = snapshot()
    image(snap, "rec/good:1")["history"].insert(0, {"CreatedBy": "/bin/sh -c #(nop)  ARG NPM_TOKEN=<redacted>"})
    assert evaluate(i.no_secrets, snap, "rec/good:1") == (
        FAIL, "history ARG NPM_TOKEN keeps a secret-looking value")


def test_it_ignores_arg_declarations_without_a_value():
    snap = snapshot()
    image(snap, "rec/good:1")["history"].insert(0, {"CreatedBy": "/bin/sh -c #(nop)  ARG NPM_TOKEN"})
    assert evaluate(i.no_secrets, snap, "rec/good:1")[0] is PASS


def test_it_flags_secret_label_names():
    snap = snapshot()
    image(snap, "rec/good:1")["inspect"]["Config"]["Labels"] = {"org.example.api_key": "x"}
    assert evaluate(i.no_secrets, snap, "rec/good:1")[0] is FAIL


@pytest.mark.parametrize(("created_by", "parsed"), [
    ("/bin/sh -c #(nop)  USER root", ("USER", "root")),
    ("/bin/sh -c #(nop) ADD file:ab in /app ", ("ADD", "file:ab in /app")),
    ("|1 TOKEN=<redacted> /bin/sh -c make", ("RUN", "make")),
    ("RUN /bin/sh -c make install # buildkit", ("RUN", "make install")),
    ("COPY . /src # buildkit", ("COPY", ". /src")),
    ("", ("", "")),
])
def test_it_reads_history_lines_of_both_builders(created_by, parsed):
    assert instruction(created_by) == parsed

"""Image checks: CIS section 4, from image inspect (Config) and history (CreatedBy lines).

History is the only record of how an image was built that the Engine API keeps. It is read
oldest layer first; the lines look like ``/bin/sh -c #(nop)  USER root`` (classic builder),
``/bin/sh -c apt-get update`` (classic RUN), ``|1 TOKEN=<redacted> /bin/sh -c ...`` (RUN with
build args) or ``RUN /bin/sh -c ... # buildkit`` (BuildKit). Values were redacted at collection,
so secret detection here works on names and on the collector's ``looks_secret`` flags.

Not decidable from the API, so not here: setuid/setgid files (4.8) need the image filesystem,
which the API does not expose; see manual.py.
"""

from __future__ import annotations

import re

from scanners.checks.base import (
    CIS,
    SOC2,
    Result,
    Scope,
    Severity,
    check,
    failed,
    passed,
)
from scanners.checks.context import Context, ImageView
from scanners.snapshot import KIND_IMAGE
from scanners.text import one_line

IMAGE = (KIND_IMAGE,)


def user_is_root(user: object) -> bool:
    """Docker runs as root when User is "", "0", "root", or "0:<gid>" / "root:<group>"."""
    name = str(user or "").strip().split(":", 1)[0]
    return name in ("", "0", "root")


def describe_user(field: str, user: object) -> str:
    return f'{field}="" (defaults to root)' if not str(user or "").strip() else f"{field}={user}"


@check(
    id="image.user_not_root",
    title="Image declares a non-root USER",
    scope=Scope.IMAGE,
    severity=Severity.MEDIUM,
    controls={CIS: ("4.1",), SOC2: ("CC6.1", "CC6.3")},
    remediation="Create a user in the Dockerfile (RUN useradd ...) and switch to it with USER.",
    requires=IMAGE,
)
def image_user_not_root(img: ImageView, _: Context) -> Result:
    user = img.config.get("User")
    return (failed if user_is_root(user) else passed)(describe_user("Config.User", user))


def healthcheck_state(hc: object) -> tuple[bool, str]:
    """(defined, detail) for a Config.Healthcheck; ``HEALTHCHECK NONE`` is not a health check."""
    if not isinstance(hc, dict) or not hc.get("Test"):
        return False, "Config.Healthcheck not set"
    test = [str(t) for t in hc.get("Test") or []]
    if test[0].upper() == "NONE":
        return False, "Config.Healthcheck.Test=[NONE] (HEALTHCHECK NONE)"
    return True, one_line(f"Config.Healthcheck.Test={test}")


@check(
    id="image.healthcheck_defined",
    title="Image defines a HEALTHCHECK",
    scope=Scope.IMAGE,
    severity=Severity.LOW,
    controls={CIS: ("4.6",), SOC2: ("CC7.2", "A1.2")},
    remediation="Add a HEALTHCHECK instruction that probes the service (never HEALTHCHECK NONE).",
    requires=IMAGE,
)
def healthcheck_defined(img: ImageView, _: Context) -> Result:
    ok, detail = healthcheck_state(img.config.get("Healthcheck"))
    return (passed if ok else failed)(detail)


# --------------------------------------------------------------------------- history

_NOP = re.compile(r"#\(nop\)\s*")
_RUN_PREFIX = re.compile(r"^\s*(?:RUN\s+)?(?:\|\d+(?:\s+[A-Za-z_][A-Za-z0-9_]*=\S*)*\s+)?"
                         r"(?:/bin/(?:ba|da|a)?sh\s+-c\s+|cmd\s+/S\s+/C\s+)?")
_UPDATE = re.compile(
    r"\b(?:(?:apt-get|apt)\s+(?:-\S+\s+)*update"
    r"|apk\s+(?:-\S+\s+)*update"
    r"|(?:yum|dnf|microdnf|tdnf)\s+(?:-\S+\s+)*(?:update|upgrade|makecache|check-update)"
    r"|zypper\s+(?:-\S+\s+)*(?:refresh|ref))\b"
)
_INSTALL = re.compile(
    r"\b(?:(?:apt-get|apt|aptitude)\s+(?:-\S+\s+)*(?:install|upgrade|dist-upgrade|full-upgrade)"
    r"|apk\s+(?:-\S+\s+)*(?:add|upgrade)"
    r"|(?:yum|dnf|microdnf|tdnf)\s+(?:-\S+\s+)*install"
    r"|zypper\s+(?:-\S+\s+)*(?:install|in|update|up|dist-upgrade|dup))\b"
)


def instruction(created_by: str) -> tuple[str, str]:
    """("RUN", "apt-get update") / ("ADD", "file:... in /") / ("ENV", ...) from a CreatedBy."""
    text = created_by.strip()
    text = text.removesuffix("# buildkit").strip()
    nop = _NOP.search(text)
    if nop:
        body = text[nop.end():].strip()
        word, _, rest = body.partition(" ")
        return word.upper(), rest.strip()
    word, _, rest = text.partition(" ")
    if word.upper() in {"ADD", "COPY", "ENV", "ARG", "LABEL", "USER", "WORKDIR", "CMD",
                        "ENTRYPOINT", "EXPOSE", "VOLUME", "HEALTHCHECK", "SHELL", "STOPSIGNAL",
                        "ONBUILD", "MAINTAINER"}:
        return word.upper(), rest.strip()
    if not text:
        return "", ""
    return "RUN", _RUN_PREFIX.sub("", text, count=1).strip()


@check(
    id="image.no_update_only_run",
    title="Package index updates are never cached alone",
    scope=Scope.IMAGE,
    severity=Severity.LOW,
    controls={CIS: ("4.7",), SOC2: ("CC8.1", "CC7.1")},
    remediation="Run the update and the install in one RUN (apt-get update && apt-get install "
    "-y pkg=version) so a cached update layer can never be reused.",
    requires=IMAGE,
)
def no_update_only_run(img: ImageView, _: Context) -> Result:
    for entry in img.history:
        kind, body = instruction(str(entry.get("CreatedBy") or ""))
        if kind == "RUN" and _UPDATE.search(body) and not _INSTALL.search(body):
            return failed(one_line(f"history RUN {body}", 200))
    return passed(f"no update-only RUN in {len(img.history)} history entries")


def _is_base_rootfs(kind: str, body: str) -> bool:
    """The base image's root filesystem: ``ADD file:<sha> in /`` or ``ADD rootfs.tar.xz /``."""
    return kind == "ADD" and (body.rstrip().endswith(" in /") or body.rstrip().endswith(" /"))


@check(
    id="image.no_add_instruction",
    title="Image uses COPY rather than ADD",
    scope=Scope.IMAGE,
    severity=Severity.LOW,
    controls={CIS: ("4.9",), SOC2: ("CC6.8", "CC8.1")},
    remediation="Replace ADD by COPY; fetch remote files with a verified download in RUN.",
    requires=IMAGE,
)
def no_add_instruction(img: ImageView, _: Context) -> Result:
    for index, entry in enumerate(img.history):
        kind, body = instruction(str(entry.get("CreatedBy") or ""))
        if kind != "ADD" or (index == 0 and _is_base_rootfs(kind, body)):
            continue
        return failed(one_line(f"history ADD {body}", 200))
    return passed("no ADD in history (base root filesystem layer excepted)")


_SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL"
    r"|(?:^|_)PASS(?:_|$)|(?:^|_)PWD(?:_|$)|SSH_?KEY|CLIENT_?KEY|SIGNING_?KEY", re.I)
_HISTORY_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=")


def _history_secret_names(created_by: str) -> list[str]:
    """Secret-looking names whose values the history keeps: ENV, ARG defaults, RUN build args."""
    kind, body = instruction(created_by)
    names: list[str] = []
    if kind in ("ENV", "ARG"):
        names = _HISTORY_PAIR.findall(body)
        if kind == "ENV" and not names and body.split():
            names = [body.split()[0]]  # legacy "ENV NAME value"
    elif created_by.lstrip().startswith(("|", "RUN |")):
        prefix = created_by.lstrip().removeprefix("RUN ").split("/bin/", 1)[0]
        names = _HISTORY_PAIR.findall(prefix)
    return [n for n in names if _SECRET_NAME.search(n)]


@check(
    id="image.no_secrets",
    title="No secrets are baked into the image",
    scope=Scope.IMAGE,
    severity=Severity.HIGH,
    controls={CIS: ("4.10",), SOC2: ("CC6.1", "CC6.7", "C1.1")},
    remediation="Pass secrets at run time (docker secrets, mounted files, BuildKit --secret for "
    "builds); never through ENV, ARG defaults or build args, and rotate any that leaked.",
    requires=IMAGE,
)
def no_secrets(img: ImageView, _: Context) -> Result:
    # Pattern-based on names and the collector's flags: a pass means "nothing looked secret".
    for section in ("Config", "ContainerConfig"):
        for env in (img.inspect.get(section) or {}).get("Env") or []:
            if isinstance(env, dict) and env.get("looks_secret"):
                return failed(one_line(f"{section}.Env {env.get('name')} looks secret"))
    for label in (img.config.get("Labels") or {}):
        if _SECRET_NAME.search(str(label)):
            return failed(one_line(f"Config.Labels {label} looks secret"))
    for entry in img.history:
        created_by = str(entry.get("CreatedBy") or "")
        if names := _history_secret_names(created_by):
            kind, _body = instruction(created_by)
            where = "build arg" if kind == "RUN" else kind
            return failed(one_line(f"history {where} {names[0]} keeps a secret-looking value"))
    return passed("no secret-looking Env, label or history entry")

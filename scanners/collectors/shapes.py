"""What a Docker daemon's answers must look like before the collectors touch them.

Why: a daemon (or something pretending to be one) is a peer, and its answers are untrusted
input. Without a check at the boundary, ``/info`` answering a JSON list or
``{"Containers": "x"}`` surfaced deep inside our own code as ``TypeError``/``AttributeError``
and the scan ended ``errored`` ("internal error"), i.e. blamed on posture. Here each answer
is checked against a small JSON Schema of the parts we rely on, and a mismatch raises
:class:`~scanners.errors.MalformedAnswer`, so the scan ends ``failed`` with a reason that
names the call: "the daemon answered /info with malformed data: Containers: expected an
integer, got a string". Anything that still breaks after this is a real bug and stays
``errored``.

The schemas are deliberately loose: they type only the keys that collection, storage or
the checks read, allow ``null`` wherever Go's encoder writes nil slices and maps, and
accept any extra keys (newer Engine versions add fields all the time). Rejecting a real
daemon would be worse than letting an oddity through to a check, which reports ``error``
for that one check and never aborts the run. ``Env`` entries must be strings: a non-string
entry would otherwise be turned into text with its value inside and defeat redaction.

The snapshot built from these answers is described in :mod:`scanners.snapshot`; these are
the shapes of the raw answers it is built from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import requests.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from scanners.errors import MalformedAnswer

__all__ = ["SHAPES", "checked", "guarded"]

T = TypeVar("T")

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STRS: dict[str, Any] = {"type": ["array", "null"], "items": _STR}
_OBJ: dict[str, Any] = {"type": ["object", "null"]}
_STR_MAP: dict[str, Any] = {"type": ["object", "null"], "additionalProperties": _STR}


def _object(*, required: tuple[str, ...] = (), nullable: bool = False, **props: Any) -> dict[str, Any]:
    return {
        "type": ["object", "null"] if nullable else "object",
        "required": list(required),
        "properties": props,
    }


#: Image ``Config``/``ContainerConfig`` and container ``Config``.
_CONFIG = _object(
    nullable=True,
    Env=_STRS, Cmd=_STRS, Entrypoint=_STRS, OnBuild=_STRS, Labels=_STR_MAP,
    User=_STR, Image=_STR, WorkingDir=_STR, Healthcheck=_OBJ, ExposedPorts=_OBJ, Volumes=_OBJ,
)  # fmt: skip

_INFO = _object(
    ID=_STR, Name=_STR, ServerVersion=_STR, Driver=_STR, LoggingDriver=_STR, CgroupDriver=_STR,
    KernelVersion=_STR, OperatingSystem=_STR, OSType=_STR, Architecture=_STR, DockerRootDir=_STR,
    HttpProxy=_STR, HttpsProxy=_STR, NoProxy=_STR, DefaultRuntime=_STR,
    Containers=_INT, ContainersRunning=_INT, ContainersPaused=_INT, ContainersStopped=_INT,
    Images=_INT, NCPU=_INT, MemTotal=_INT,
    Debug=_BOOL, LiveRestoreEnabled=_BOOL, ExperimentalBuild=_BOOL, IPv4Forwarding=_BOOL,
    SecurityOptions=_STRS, Warnings=_STRS, Labels=_STRS,
    Plugins={"type": ["object", "null"], "additionalProperties": _STRS},
    Swarm=_object(nullable=True, LocalNodeState=_STR, ControlAvailable=_BOOL,
                  RemoteManagers={"type": ["array", "null"], "items": {"type": "object"}}),
    RegistryConfig=_OBJ, Runtimes=_OBJ,
)  # fmt: skip

_VERSION = _object(Version=_STR, ApiVersion=_STR, MinAPIVersion=_STR, Os=_STR, Arch=_STR,
                   KernelVersion=_STR, Components={"type": ["array", "null"], "items": {"type": "object"}})

_SUMMARIES = {"type": "array", "items": _object(required=("Id",), Id=_STR)}

_IMAGE = _object(
    required=("Id",),
    Id=_STR, RepoTags=_STRS, RepoDigests=_STRS, Config=_CONFIG, ContainerConfig=_CONFIG,
    Created=_STR, Os=_STR, Architecture=_STR, Author=_STR, Comment=_STR, RootFS=_OBJ,
)  # fmt: skip

_HISTORY = {
    "type": "array",
    "items": _object(Id=_STR, CreatedBy=_STR, Comment=_STR, Tags=_STRS, Created=_INT, Size=_INT),
}

_CONTAINER = _object(
    required=("Id", "Config", "HostConfig", "State"),
    Id=_STR, Name=_STR, Path=_STR, Args=_STRS, Image=_STR, Created=_STR,
    Config=_CONFIG | {"type": "object"},
    HostConfig={"type": "object"},
    State=_object(Running=_BOOL, Status=_STR, Health=_OBJ),
    Mounts={"type": ["array", "null"], "items": {"type": "object"}},
    NetworkSettings=_OBJ,
)  # fmt: skip

_VOLUME = _object(Name=_STR, Driver=_STR, Options=_STR_MAP)

_CREATED = _object(required=("Id",), Id=_STR)

#: Shapes by name; each is checked with :func:`checked`.
SHAPES: dict[str, dict[str, Any]] = {
    "info": _INFO,
    "version": _VERSION,
    "image_list": _SUMMARIES,
    "container_list": _SUMMARIES,
    "image": _IMAGE,
    "history": _HISTORY,
    "container": _CONTAINER,
    "volume": _VOLUME,
    "created": _CREATED,  # POST /containers/create, POST /containers/{id}/exec
    "object": {"type": "object"},
}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SHAPES.items()}

_JSON_NAMES = {
    "object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}  # fmt: skip


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _where(error: ValidationError) -> str:
    """``Config.Env[2]``; keys come from the peer, so each is cut short."""
    out = ""
    for part in error.absolute_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = str(part)
            key = key if len(key) <= 40 else key[:39] + "…"
            out += f".{key}" if out else key
    return out


def _describe(error: ValidationError) -> str:
    """One plain sentence for a schema error; never quotes the offending value itself."""
    where = _where(error)
    prefix = f"{where}: " if where else ""
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_JSON_NAMES.get(t, t) for t in expected)
        got = _json_type(error.instance)
        return f"{prefix}expected {wanted}, got {_JSON_NAMES.get(got, got)}"
    if error.validator == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
        return f"{prefix}missing {', '.join(missing) or 'a required key'}"
    return f"{prefix}does not have the expected shape ({error.validator})"


def checked(value: T, shape: str, path: str) -> T:
    """Return ``value`` unchanged when it has the named shape, else raise MalformedAnswer."""
    error = best_match(_VALIDATORS[shape].iter_errors(value))
    if error is not None:
        raise MalformedAnswer(path, _describe(error))
    return value


def guarded(fn: Callable[..., Any], *args: Any, shape: str, path: str, **kw: Any) -> Any:
    """Call one docker-py method and check its answer's shape.

    A body that is not JSON at all (or nested too deeply to parse) is a malformed answer
    too, said as such rather than as "not Docker". Transport errors pass through untouched
    for :func:`scanners.collectors._common.call` to classify.
    """
    try:
        value = fn(*args, **kw)
    except (requests.exceptions.JSONDecodeError, json.JSONDecodeError):
        raise MalformedAnswer(path, "not valid JSON") from None
    except RecursionError:
        raise MalformedAnswer(path, "JSON nested too deeply") from None
    return checked(value, shape, path)

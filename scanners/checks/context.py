"""Per-snapshot and per-resource data, computed ONCE before any check runs.

Why: a 200-container snapshot runs ~30 container checks on each container. Parsing
SecurityOpt, capabilities, port bindings or the dockerd command line inside every check would
repeat the same work thousands of times; here it is done once per resource, and checks read
plain attributes. It also puts Docker's inspect quirks in one place:

* ``CapAdd``/``CapDrop``/``SecurityOpt``/``Mounts``/``PortBindings`` can be ``null``;
* capability names come with or without ``CAP_``;
* a setting of the daemon can come from the dockerd command line or from daemon.json (dockerd
  refuses to start when both set the same directive, so whichever is present is effective).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanners import dockerd_args
from scanners.checks.base import Result, errored, not_assessed

NO_PROBE = "host probe not enabled"


def as_bool(value: Any) -> bool | None:
    """Docker spells booleans as JSON booleans, "true"/"false" strings or "1"/"0"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
    return None


# --------------------------------------------------------------------------- daemon settings


def parse_dockerd_cmdline(argv: Iterable[str]) -> dict[str, list[str]]:
    """``["dockerd", "-H", "fd://", "--icc=false"]`` -> ``{"hosts": ["fd://"], "icc": ["false"]}``.

    Keys are daemon.json names; every value is kept as a list of strings, in order. The
    parsing itself is :mod:`scanners.dockerd_args`, shared with the host probe.
    """
    return dockerd_args.parse(argv).by_json_key()


@dataclass(frozen=True)
class Setting:
    """An effective daemon setting and where it came from, for the one-line detail."""

    value: Any
    source: str  # "dockerd --icc" | "daemon.json icc"

    def describe(self) -> str:
        shown = self.value if not isinstance(self.value, bool) else str(self.value).lower()
        if isinstance(shown, list | tuple):
            shown = ",".join(str(v) for v in shown)
        return f"{self.source}={shown}"


@dataclass
class DaemonConfig:
    """Effective dockerd settings from the host probe's daemon.json and command line."""

    daemon_json: Mapping[str, Any]
    cmdline: Mapping[str, list[str]]
    daemon_json_error: str | None = None
    cmdline_known: bool = False

    def get(self, key: str) -> Setting | None:
        """The setting under its daemon.json name, or None when neither source sets it."""
        if key in self.cmdline:
            values = self.cmdline[key]
            source = f"dockerd --{dockerd_args.flag_for_key(key)}"
            if dockerd_args.is_list(key):
                return Setting(list(values), source)
            raw = values[-1]
            b = as_bool(raw)
            return Setting(b if b is not None and dockerd_args.is_bool(key) else raw, source)
        if key in self.daemon_json:
            return Setting(self.daemon_json[key], f"daemon.json {key}")
        return None

    def unknown_reason(self, key: str) -> str | None:
        """Why an unset setting cannot be trusted to be unset (a source was unreadable)."""
        if key in self.cmdline or key in self.daemon_json:
            return None
        if self.daemon_json_error:
            return f"daemon.json unreadable: {self.daemon_json_error}"
        if not self.cmdline_known:
            return "dockerd command line not collected by the host probe"
        return None


# --------------------------------------------------------------------------- resources


def _norm_cap(cap: str) -> str:
    cap = str(cap).strip().upper()
    return cap[4:] if cap.startswith("CAP_") else cap


@dataclass(frozen=True)
class PortBinding:
    container_port: str  # "80/tcp"
    host_ip: str  # "" means every interface
    host_port: str  # "" means an ephemeral port chosen at start


@dataclass
class ContainerView:
    """A container's inspect document with the fields checks need, parsed once."""

    id: str
    name: str
    inspect: dict[str, Any]
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: dict[str, Any]
    running: bool
    mounts: list[dict[str, Any]]
    security_opt: tuple[str, ...]
    cap_add: frozenset[str]
    cap_drop: frozenset[str]
    ports: tuple[PortBinding, ...]
    network_mode: str

    @classmethod
    def build(cls, evidence: Mapping[str, Any]) -> ContainerView:
        inspect = evidence.get("inspect") or {}
        hc = inspect.get("HostConfig") or {}
        state = inspect.get("State") or {}
        return cls(
            id=str(evidence.get("id") or inspect.get("Id") or ""),
            name=str(evidence.get("name") or str(inspect.get("Name") or "").lstrip("/")),
            inspect=inspect,
            config=inspect.get("Config") or {},
            host_config=hc,
            state=state,
            running=bool(state.get("Running")) or state.get("Status") == "running",
            mounts=[m for m in inspect.get("Mounts") or [] if isinstance(m, dict)],
            security_opt=tuple(str(s) for s in hc.get("SecurityOpt") or []),
            cap_add=frozenset(_norm_cap(c) for c in hc.get("CapAdd") or []),
            cap_drop=frozenset(_norm_cap(c) for c in hc.get("CapDrop") or []),
            ports=_ports(inspect),
            network_mode=str(hc.get("NetworkMode") or ""),
        )

    def security_opt_value(self, name: str) -> str | None:
        """``seccomp=unconfined`` / ``seccomp:unconfined`` -> "unconfined"; bare -> ""."""
        for opt in self.security_opt:
            # Split at the first "=" or ":" (old form), whichever comes first: a value may
            # itself hold both (seccomp={"defaultAction":"SCMP_ACT_ERRNO",...}).
            cut = min((i for i in (opt.find("="), opt.find(":")) if i >= 0), default=-1)
            key, value = (opt, None) if cut < 0 else (opt[:cut], opt[cut + 1:])
            if key.strip() == name:
                return value.strip() if value is not None else ""
        return None


def _ports(inspect: Mapping[str, Any]) -> tuple[PortBinding, ...]:
    """Configured (HostConfig.PortBindings) and actual (NetworkSettings.Ports) bindings."""
    found: dict[tuple[str, str, str], PortBinding] = {}
    hc = inspect.get("HostConfig") or {}
    sources = [hc.get("PortBindings"), (inspect.get("NetworkSettings") or {}).get("Ports")]
    for source in sources:
        for cport, bindings in (source or {}).items():
            for b in bindings or []:
                pb = PortBinding(str(cport), str(b.get("HostIp") or ""), str(b.get("HostPort") or ""))
                found[(pb.container_port, pb.host_ip, pb.host_port)] = pb
    if hc.get("PublishAllPorts"):
        bound = {p.container_port for p in found.values()}
        for cport in (inspect.get("Config") or {}).get("ExposedPorts") or {}:
            if cport not in bound:
                found[(cport, "", "")] = PortBinding(str(cport), "", "")
    # Docker reports a binding on 0.0.0.0 and [::] for one -p; keep both, they are distinct.
    return tuple(found.values())


@dataclass
class ImageView:
    """An image's inspect document and history (oldest layer first), parsed once."""

    id: str
    name: str
    tags: list[str]
    inspect: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]]

    @classmethod
    def build(cls, evidence: Mapping[str, Any]) -> ImageView:
        inspect = evidence.get("inspect") or {}
        image_id = str(evidence.get("id") or inspect.get("Id") or "")
        tags = [t for t in evidence.get("tags") or [] if t and t != "<none>:<none>"]
        short = image_id.removeprefix("sha256:")[:12]
        # The history API lists the newest layer first; checks reason oldest-first.
        history = [h for h in reversed(evidence.get("history") or []) if isinstance(h, dict)]
        return cls(id=image_id, name=tags[0] if tags else short, tags=tags, inspect=inspect,
                   config=inspect.get("Config") or {}, history=history)


# --------------------------------------------------------------------------- the snapshot


def _security_options(info: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """``["name=seccomp,profile=builtin", "name=rootless"]`` -> {"seccomp": {"profile": ...}}."""
    out: dict[str, dict[str, str]] = {}
    for raw in info.get("SecurityOptions") or []:
        parts = dict(p.partition("=")[::2] for p in str(raw).split(","))
        name = parts.pop("name", None)
        if name is None:  # pre-1.26 daemons list bare names: ["apparmor", "seccomp"]
            name, parts = str(raw), {}
        out[name] = parts
    return out


@dataclass
class Context:
    """What daemon- and host-scope checks look at, and what every check may consult."""

    snapshot: Mapping[str, Any]
    info: dict[str, Any]
    version: dict[str, Any]
    host: dict[str, Any] | None
    security_options: dict[str, dict[str, str]]
    swarm: dict[str, Any]
    daemon: DaemonConfig | None
    containers: list[ContainerView] = field(default_factory=list)
    images: list[ImageView] = field(default_factory=list)
    #: Documents that could not be parsed: (resource_type, resource, evidence key, reason).
    broken: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def swarm_active(self) -> bool:
        return self.swarm.get("LocalNodeState") == "active"

    def default_bridge(self) -> tuple[bool | None, str]:
        """Whether this daemon has its default ``bridge`` network (docker0), and why we think so.

        A daemon started with ``--bridge=none`` (or ``"bridge": "none"``, CIS's own remediation)
        has no such network, yet ``docker inspect`` still lists a ``bridge`` entry, with an empty
        NetworkID, for every container in the default network mode. Evidence, best first: the
        daemon's bridge setting (probe); any container attached to a real bridge network (a
        NetworkID); a running container whose bridge entry has none. None: cannot tell.
        """
        if self.daemon is not None and self.host is not None:
            setting = self.daemon.get("bridge")
            if setting is not None and str(setting.value) == "none":
                return False, f"{setting.describe()}: the daemon has no default bridge"
        seen_empty: str | None = None
        for c in self.containers:
            entry = ((c.inspect.get("NetworkSettings") or {}).get("Networks") or {}).get("bridge")
            if not isinstance(entry, dict):
                continue
            if entry.get("NetworkID"):
                return True, f"container {c.name} is attached to the bridge network {str(entry['NetworkID'])[:12]}"
            if c.running and seen_empty is None:
                seen_empty = c.name
        if seen_empty is not None:
            return False, (f"running container {seen_empty} has no bridge NetworkID: "
                           "the daemon has no default bridge (bridge=none)")
        return None, "no container shows whether the default bridge exists"

    def seccomp_profile_file(self) -> tuple[str, str] | None:
        """(path, text) of the daemon's custom seccomp profile when the probe read it."""
        if self.daemon is None or self.host is None:
            return None
        setting = self.daemon.get("seccomp-profile")
        value = setting.value if setting is not None else None
        path = value[-1] if isinstance(value, list) and value else value
        if not isinstance(path, str) or not path.startswith("/"):
            return None
        text = ((self.host or {}).get("contents") or {}).get(path)
        return (path, text) if isinstance(text, str) else None

    def daemon_config_path(self) -> str:
        """The daemon's config file: --config-file when given, else /etc/docker/daemon.json."""
        given = (self.daemon.cmdline.get("config-file") if self.daemon is not None else None) or []
        return str(given[-1]) if given else "/etc/docker/daemon.json"

    def container_by_ref(self, ref: str) -> ContainerView | None:
        """A container of this snapshot by id, unambiguous id prefix, or name."""
        index = self.__dict__.get("_ref_index")
        if index is None:
            index = {}
            for c in self.containers:
                index[c.id] = c
                index[c.name] = c
            self.__dict__["_ref_index"] = index
        if ref in index:
            return index[ref]
        matches = [c for c in self.containers if ref and c.id.startswith(ref)]
        return matches[0] if len(matches) == 1 else None

    def namespace_mode(self, c: ContainerView, field: str) -> tuple[str, str]:
        """The effective NetworkMode/PidMode/IpcMode of a container, following
        ``container:<id>`` joins (a container that joins one in the host namespace is in the
        host namespace too). Returns (mode, one-line description of how it was found);
        mode is "unknown" when the joined container is not in the evidence."""
        mode = str(c.host_config.get(field) or "")
        shown = f'HostConfig.{field}={mode or chr(34) * 2}'
        seen = {c.id}
        current = c
        while mode.startswith("container:"):
            target = self.container_by_ref(mode.split(":", 1)[1])
            if target is None:
                return "unknown", f"{shown} (joined container not in this scan)"
            if target.id in seen:
                return "unknown", f"{shown} (join loop)"
            seen.add(target.id)
            current = target
            mode = str(current.host_config.get(field) or "")
            shown += f" -> {current.name}: {field}={mode or chr(34) * 2}"
        return mode, shown

    # -- host probe helpers: missing evidence is never a pass ---------------------------
    def probe_missing(self) -> Result | None:
        """not_assessed when the probe is off or could not run; None when host evidence exists."""
        if self.host is None:
            return not_assessed(NO_PROBE)
        if self.probe_failed:
            return self.unreported("anything")
        return None

    @property
    def probe_failed(self) -> bool:
        """The probe was on but could not run at all: no file reported, a reason given."""
        return bool(self.host is not None and not self.host.get("files") and self.host.get("errors"))

    def file(self, path: str) -> dict[str, Any] | None:
        files = (self.host or {}).get("files") or {}
        entry = files.get(path)
        return entry if isinstance(entry, dict) else None

    def unreported(self, what: str) -> Result:
        """The probe said nothing about ``what``. When it could not run at all, nothing was
        collected (not_assessed, with its reason); when it ran and skipped ``what``, error."""
        errors = [str(e) for e in (self.host or {}).get("errors") or []]
        if self.probe_failed:
            return not_assessed(f"host probe failed: {errors[0]}")
        if errors:
            return errored(f"host probe failed: {errors[0]}")
        return errored(f"host probe did not report {what}")

    def setting_or_unknown(self, key: str) -> tuple[Setting | None, Result | None]:
        """(effective setting, None) or (None, a not_assessed/error result to return)."""
        if self.host is None or self.daemon is None:
            return None, not_assessed(NO_PROBE)
        if self.probe_failed:
            return None, self.unreported(key)
        setting = self.daemon.get(key)
        if setting is None:
            reason = self.daemon.unknown_reason(key)
            if reason:
                return None, errored(reason)
        return setting, None

    def docker_sockets(self) -> list[str]:
        """Unix socket paths the daemon listens on (default /var/run/docker.sock)."""
        paths = ["/var/run/docker.sock", "/run/docker.sock"]
        if self.daemon is not None:
            hosts = self.daemon.get("hosts")
            if hosts is not None:
                values = hosts.value if isinstance(hosts.value, list) else [hosts.value]
                unix = [str(h)[len("unix://"):] for h in values if str(h).startswith("unix://")]
                if unix:
                    paths = unix
        return paths


#: seccomp default actions that let through every syscall the profile does not list.
PERMISSIVE_SECCOMP_ACTIONS = frozenset({"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"})


def seccomp_default_action(profile_json: str) -> str | None:
    """``defaultAction`` of a seccomp profile (JSON text); None when it is not one."""
    try:
        data = json.loads(profile_json)
    except (TypeError, ValueError):
        return None
    action = data.get("defaultAction") if isinstance(data, dict) else None
    return str(action) if action else None


def build_context(snapshot: Mapping[str, Any]) -> Context:
    """Parse a snapshot once. Never raises on odd data: unusable parts are recorded as broken."""
    daemon = snapshot.get("daemon") or {}
    info = daemon.get("info") or {}
    host = snapshot.get("host")
    host = host if isinstance(host, dict) else None
    cfg = None
    if host is not None:
        argv = host.get("dockerd_cmdline")
        dj = host.get("daemon_json")
        cfg = DaemonConfig(
            daemon_json=dj if isinstance(dj, dict) else {},
            cmdline=parse_dockerd_cmdline(argv) if isinstance(argv, list) else {},
            daemon_json_error=host.get("daemon_json_error"),
            cmdline_known=isinstance(argv, list),
        )
    ctx = Context(
        snapshot=snapshot, info=info, version=daemon.get("version") or {}, host=host,
        security_options=_security_options(info), swarm=info.get("Swarm") or {}, daemon=cfg,
    )
    for kind, docs, view in (("container", snapshot.get("containers"), ContainerView),
                             ("image", snapshot.get("images"), ImageView)):
        for ev in docs or []:
            try:
                built = view.build(ev)
            except Exception as exc:  # noqa: BLE001 - one odd document must not stop the scan
                doc = ev if isinstance(ev, dict) else {}
                key = str(doc.get("id") or "?")
                name = str(doc.get("name") or (doc.get("tags") or [None])[0] or key[:19])
                ctx.broken.append((kind, name, key, f"unreadable {kind} evidence: "
                                   f"{type(exc).__name__}: {exc}"))
                continue
            (ctx.containers if kind == "container" else ctx.images).append(built)  # type: ignore[arg-type]
    return ctx

"""The dockerd command line, parsed once and the way dockerd itself parses it.

Why one module: the host probe needs a few flags while collecting (which daemon serves this
data root, which sockets and TLS files to stat) and the checks need the effective settings
(icc, log level, ulimits...). Two hand-written parsers used to disagree on short flags and
on boolean flags they did not list, so the same ``/proc/PID/cmdline`` read two ways.

dockerd parses its flags with spf13/pflag (through cobra), and this module follows pflag's
rules exactly, because a command line that dockerd accepted is the only kind we ever read:

* ``--flag=value`` and ``--flag value``; a boolean flag never takes the next word
  (``--icc`` is true, ``--icc=false`` is the only way to turn it off, ``--icc false`` leaves
  a stray ``false`` that dockerd refuses);
* ``-H value``, ``-Hvalue``, ``-H=value``; booleans combine (``-Dl debug``, ``-Dldebug``,
  ``-D=false``);
* repeatable flags (``--host``, ``--default-ulimit``, ``--label``...) keep every value in
  order; for the others the last one wins, as in dockerd;
* ``--`` ends the flags.

The flag table is dockerd's own (moby ``daemon/command/config*.go``, ``options.go``, and
flags older engines still in fleets accept: ``-g/--graph``, ``--cluster-store``...). A flag
not in the table is kept under its own name (a newer dockerd) and listed in ``problems``;
since dockerd takes no positional arguments, a word after an unknown ``--flag`` can only be
its value. Hostile or garbled input never raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "FLAGS",
    "DockerdArgs",
    "FlagKind",
    "flag_for_key",
    "is_bool",
    "is_list",
    "json_key",
    "parse",
]


class FlagKind(Enum):
    BOOL = "bool"  # no value unless "=value" (pflag NoOptDefVal "true")
    VALUE = "value"  # one value; the last occurrence wins
    LIST = "list"  # repeatable; every value kept


@dataclass(frozen=True)
class Flag:
    name: str  # long name, without "--"
    kind: FlagKind
    short: str = ""  # one letter, without "-"
    key: str = ""  # daemon.json key when it differs from the name


B, V, L = FlagKind.BOOL, FlagKind.VALUE, FlagKind.LIST

_TABLE: tuple[Flag, ...] = (
    # daemon/command/options.go and docker.go
    Flag("debug", B, "D"), Flag("validate", B), Flag("log-level", V, "l"), Flag("log-format", V),
    Flag("tls", B), Flag("tlsverify", B), Flag("tlscacert", V), Flag("tlscert", V), Flag("tlskey", V),
    Flag("host", L, "H", "hosts"), Flag("config-file", V), Flag("version", B, "v"), Flag("help", B, "h"),
    # daemon/command/config.go (every platform)
    Flag("registry-mirror", L, key="registry-mirrors"), Flag("insecure-registry", L, key="insecure-registries"),
    Flag("storage-opt", L, key="storage-opts"), Flag("authorization-plugin", L, key="authorization-plugins"),
    Flag("exec-opt", L, key="exec-opts"), Flag("pidfile", V, "p"), Flag("data-root", V), Flag("exec-root", V),
    Flag("containerd", V), Flag("cri-containerd", B), Flag("feature", L, key="features"),
    Flag("default-network-opt", L, key="default-network-opts"), Flag("mtu", V),
    Flag("network-control-plane-mtu", V), Flag("network-diagnostic-port", V), Flag("raw-logs", B),
    Flag("dns", L), Flag("dns-opt", L, key="dns-opts"), Flag("dns-search", L),
    Flag("host-gateway-ip", L, key="host-gateway-ips"), Flag("label", L, key="labels"), Flag("log-driver", V),
    Flag("log-opt", L, key="log-opts"), Flag("max-concurrent-downloads", V), Flag("max-concurrent-uploads", V),
    Flag("max-download-attempts", V), Flag("shutdown-timeout", V), Flag("swarm-default-advertise-addr", V),
    Flag("experimental", B), Flag("metrics-addr", V), Flag("node-generic-resource", L, key="node-generic-resources"),
    Flag("containerd-namespace", V), Flag("containerd-plugins-namespace", V), Flag("default-runtime", V),
    Flag("http-proxy", V), Flag("https-proxy", V), Flag("no-proxy", V), Flag("cdi-spec-dir", L, key="cdi-spec-dirs"),
    Flag("default-address-pool", L, key="default-address-pools"), Flag("nri-opts", V), Flag("restart", B, "r"),
    # daemon/command/config_unix.go
    Flag("add-runtime", L, key="runtimes"), Flag("group", V, "G"), Flag("storage-driver", V, "s"),
    Flag("selinux-enabled", B), Flag("default-ulimit", L, key="default-ulimits"), Flag("iptables", B),
    Flag("ip6tables", B), Flag("ip-forward", B), Flag("ip-forward-no-drop", B), Flag("ip-masq", B), Flag("ipv6", B),
    Flag("bip", V), Flag("bip6", V), Flag("bridge", V, "b"), Flag("fixed-cidr", V), Flag("fixed-cidr-v6", V),
    Flag("default-gateway", V), Flag("default-gateway-v6", V), Flag("icc", B), Flag("ip", V),
    Flag("userland-proxy", B), Flag("userland-proxy-path", V), Flag("allow-direct-routing", B),
    Flag("bridge-accept-fwmark", V), Flag("cgroup-parent", V), Flag("userns-remap", V), Flag("live-restore", B),
    Flag("init", B), Flag("init-path", V), Flag("cpu-rt-period", V), Flag("cpu-rt-runtime", V),
    Flag("seccomp-profile", V), Flag("default-shm-size", V), Flag("no-new-privileges", B),
    Flag("default-ipc-mode", V), Flag("firewall-backend", V), Flag("rootless", B), Flag("default-cgroupns-mode", V),
    # Removed from current dockerd, still accepted by engines found in fleets (20.10 and older).
    Flag("allow-nondistributable-artifacts", L), Flag("api-cors-header", V), Flag("oom-score-adjust", V),
    Flag("cluster-store", V), Flag("cluster-advertise", V), Flag("cluster-store-opt", L, key="cluster-store-opts"),
    Flag("disable-legacy-registry", B),
)

#: Every known flag by long name.
FLAGS: dict[str, Flag] = {f.name: f for f in _TABLE}
#: Deprecated spellings dockerd maps onto the same setting: -g/--graph was --data-root.
_ALIASES = {"graph": "data-root"}
_SHORT: dict[str, str] = {f.short: f.name for f in _TABLE if f.short} | {"g": "graph"}
_KEY_TO_FLAG: dict[str, str] = {(f.key or f.name): f.name for f in _TABLE}

#: strconv.ParseBool, which pflag uses for boolean flags.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _spec(name: str) -> Flag | None:
    return FLAGS.get(_ALIASES.get(name, name))


def json_key(name: str) -> str:
    """daemon.json key of a flag (``host`` -> ``hosts``); unknown flags keep their name."""
    spec = _spec(name)
    return (spec.key or spec.name) if spec else name


def flag_for_key(key: str) -> str:
    """Flag name of a daemon.json key (``hosts`` -> ``host``), for "dockerd --host=..." details."""
    return _KEY_TO_FLAG.get(key, key)


def is_bool(name_or_key: str) -> bool:
    spec = _spec(name_or_key) or _spec(flag_for_key(name_or_key))
    return spec is not None and spec.kind is FlagKind.BOOL


def is_list(name_or_key: str) -> bool:
    spec = _spec(name_or_key) or _spec(flag_for_key(name_or_key))
    return spec is not None and spec.kind is FlagKind.LIST


def _bool_value(raw: str) -> str:
    return "true" if raw in _TRUE else "false" if raw in _FALSE else raw


@dataclass
class DockerdArgs:
    """A parsed dockerd command line.

    ``flags``: known flags by long name (``-g``/``--graph`` under ``data-root``), every value
    in command-line order; booleans as "true"/"false". ``unknown``: flags not in dockerd's
    table, same shape. ``problems``: what dockerd would have refused (one line each).
    """

    flags: dict[str, list[str]] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return list(self.flags.get(_ALIASES.get(name, name), []))

    def last(self, name: str) -> str | None:
        values = self.flags.get(_ALIASES.get(name, name))
        return values[-1] if values else None

    def by_json_key(self) -> dict[str, list[str]]:
        """Known and unknown flags under their daemon.json keys (``hosts``, ``default-ulimits``)."""
        out: dict[str, list[str]] = {}
        for name, values in (*self.flags.items(), *self.unknown.items()):
            out.setdefault(json_key(name), []).extend(values)
        return out

    def _add(self, name: str, value: str) -> None:
        spec = _spec(name)
        if spec is None:
            self.unknown.setdefault(name, []).append(value)
            return
        self.flags.setdefault(spec.name, []).append(_bool_value(value) if spec.kind is FlagKind.BOOL else value)


def parse(argv: Iterable[object]) -> DockerdArgs:
    """Parse a full argv (``/proc/PID/cmdline``: the program first) as dockerd's pflag would."""
    args = DockerdArgs()
    tokens = [str(t) for t in list(argv)[1:]]
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok == "--":
            args.problems += [f"stray argument {_shown(t)}" for t in tokens[i:]]
            break
        if len(tok) < 2 or not tok.startswith("-"):
            args.problems.append(f"stray argument {_shown(tok)}")
        elif tok.startswith("--"):
            i = _long(args, tok, tokens, i)
        else:
            i = _shorts(args, tok[1:], tokens, i)
    return args


def _long(args: DockerdArgs, tok: str, tokens: list[str], i: int) -> int:
    """``--name=value`` / ``--name value`` / ``--bool``; returns the next token index."""
    name, eq, value = tok[2:].partition("=")
    if not name or name[0] in "-=":
        args.problems.append(f"bad flag syntax {_shown(tok)}")
        return i
    spec = _spec(name)
    if spec is None:
        args.problems.append(f"unknown flag --{_shown(name)}")
        if not eq:  # no positional arguments exist: a following word can only be its value
            value = "true"
            if i < len(tokens) and not tokens[i].startswith("-"):
                value, i = tokens[i], i + 1
        args._add(name, value)
        return i
    if not eq:
        if spec.kind is FlagKind.BOOL:
            value = "true"
        elif i < len(tokens):
            value, i = tokens[i], i + 1
        else:
            args.problems.append(f"flag --{name} needs a value")
            return i
    args._add(name, value)
    return i


def _shorts(args: DockerdArgs, shorthands: str, tokens: list[str], i: int) -> int:
    """``-H x``, ``-Hx``, ``-H=x``, ``-Dl debug``: pflag's parseSingleShortArg in a loop."""
    while shorthands:
        letter, rest = shorthands[0], shorthands[1:]
        name = _SHORT.get(letter)
        if name is None:
            args.problems.append(f"unknown shorthand flag {letter!r} in -{_shown(shorthands)}")
            return i
        spec = _spec(name)
        assert spec is not None
        if len(shorthands) > 2 and shorthands[1] == "=":
            value, rest = shorthands[2:], ""
        elif spec.kind is FlagKind.BOOL:
            value = "true"
        elif rest:
            value, rest = rest, ""
        elif i < len(tokens):
            value, i = tokens[i], i + 1
        else:
            args.problems.append(f"flag -{letter} needs a value")
            return i
        args._add(name, value)
        shorthands = rest
    return i


def _shown(text: str) -> str:
    """Command lines are host data: keep problem lines short."""
    return text if len(text) <= 60 else text[:59] + "…"


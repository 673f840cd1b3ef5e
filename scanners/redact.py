"""Remove secret values from what the daemon tells us, at collection time.

Evidence is kept for years, exported to auditors and shown in a browser, so a value that
might be a secret must never reach it. The rule is simple and strict: environment *values*
are never kept at all (only the name and a ``looks_secret`` flag that checks can use), and
other free text that is known to carry values has the value replaced with ``<redacted>``.

Docker repeats ``ENV``/``ARG`` values in more places than ``Env`` (all seen on a real
dockerd, see tests/fixtures/recorded/builds.json):

* history ``CreatedBy``: ``/bin/sh -c #(nop)  ENV K=V K2=V2`` (classic builder),
  ``ENV K=V`` / ``ARG K=V`` (BuildKit), ``ONBUILD ENV K=V``, and the build-arg prefix of a
  ``RUN`` after ``ARG``: ``|2 A=1 B=2 /bin/sh -c ...`` (``RUN |2 ...`` with BuildKit);
* the classic builder's ``ContainerConfig.Cmd`` of an image (the command of its last step)
  and the ``Cmd``/``Path``/``Args`` of any build container kept with ``--rm=false``, in
  list form: ``["/bin/sh", "-c", "#(nop) ", "ENV K=V"]`` or ``["|1", "K=V", "/bin/sh", ...]``;
* ``Config.OnBuild``: ``["ENV K=V"]``;
* proxy URLs in ``docker info``. Detection errs on the side of flagging: a false "looks secret" costs a
reviewer a glance, a miss costs a leaked credential.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from scanners.snapshot import EnvEntry

__all__ = [
    "REDACTED",
    "looks_secret",
    "known_names",
    "redact_command",
    "redact_config",
    "redact_created_by",
    "redact_env",
    "redact_history",
    "redact_info",
    "redact_url_userinfo",
    "scrub_text",
]

REDACTED = "<redacted>"

# --------------------------------------------------------------------------- by name

_NAME_SECRET = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|CREDS"
    r"|AUTH(?!ORS?(?![A-Z]))|DSN|SESSION_?KEY|SIGNING_?KEY|ENCRYPTION_?KEY|MASTER_?KEY"
    r"|CLIENT_?KEY|SSH_?KEY|COOKIE|CONNECTION_?STRING|CONN_?STR|SALT|(?:^|_)PASS(?:_|$)"
    r"|.PWD(?:_|$)|(?:^|_)PWD_"
)
#: ``..._KEY`` is usually a secret, except for well-known public-key/fingerprint names.
_NAME_KEY = re.compile(r"(?:^|_)KEYS?$")
_NAME_PUBLIC_KEY = re.compile(r"GPG|PGP|PUBLIC|PUB_|FINGERPRINT|KEYRING|KEY_?ID|SIGNING_KEYS?$")
#: Names whose long hex values are checksums or revisions, not tokens.
_NAME_HEX_OK = re.compile(
    r"SHA|SUM|HASH|DIGEST|GPG|PGP|FINGERPRINT|COMMIT|REVISION|(?:^|_)REV(?:_|$)|(?:^|_)ID(?:_|$)"
    r"|VERSION|(?:^|_)REF(?:_|$)|CHECKSUM"
)


def _name_looks_secret(name: str) -> bool:
    upper = name.upper()
    if _NAME_SECRET.search(upper):
        return True
    return bool(_NAME_KEY.search(upper)) and not _NAME_PUBLIC_KEY.search(upper)


# --------------------------------------------------------------------------- by value

#: Well-known credential formats. A match is replaced by ``<redacted>``; when a pattern has
#: a ``keep`` group (the ``password=`` in ``password=x``), that part is kept.
_VALUE_PATTERNS = [
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*-----|\Z)",
        re.S,
    ),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),  # Stripe
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}"),  # Google API key
    re.compile(r"\bnpm_[A-Za-z0-9]{36}"),
    re.compile(r"(?P<keep>\b(?:Bearer|Basic)\s+)(?!<redacted>)[A-Za-z0-9._~+/=-]{12,}", re.I),
    # key=value inside a value or a command line: "Server=db;Password=x", "token: x"
    re.compile(
        r"(?i)(?P<keep>(?<![A-Za-z])(?:password|passwd|pwd|secret|token|api[_-]?key"
        r"|access[_-]?key)\s*[=:]\s*)(?!<redacted>)[^\s;&,'\"]+"
    ),
    # command-line flags: "--password x", "-token x"
    re.compile(
        r"(?i)(?P<keep>(?<![A-Za-z])--?(?:password|passwd|secret|token|api[_-]?key)\s+)"
        r"(?![-<])[^\s;&,'\"]+"
    ),
]
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@")
_BARE_USERINFO = re.compile(r"(?:^|(?<=[\s,]))[^/?#@\s,:]+:[^/?#@\s,]*@")
_URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]+@")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_.\-]{20,}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _entropy(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _high_entropy_token(token: str, name: str) -> bool:
    """A long, random-looking token: base64/hex secrets without a recognisable prefix."""
    if token.startswith(("/", ".")) or "//" in token or _UUID.fullmatch(token):
        return False
    if _HEX.fullmatch(token):
        return not _NAME_HEX_OK.search(name.upper())
    has_digit = any(c.isdigit() for c in token)
    has_upper = any(c.isupper() for c in token)
    has_lower = any(c.islower() for c in token)
    if not (has_digit and has_upper and has_lower):
        return False
    return _entropy(token) >= 3.8


def _value_looks_secret(value: str, name: str = "") -> bool:
    if not value:
        return False
    if any(p.search(value) for p in _VALUE_PATTERNS) or _URL_PASSWORD.search(value):
        return True
    if "DSN" in name.upper() and _URL_USERINFO.search(value):
        return True
    return any(_high_entropy_token(t, name) for t in _TOKEN_CHARS.findall(value))


def looks_secret(name: str, value: str | None = None) -> bool:
    """True when the variable name or its value looks like it carries a credential."""
    return _name_looks_secret(name) or (value is not None and _value_looks_secret(value, name))


def redact_env(env: list[str] | None) -> list[EnvEntry] | None:
    """``["K=V", ...]`` to ``[{"name": K, "looks_secret": bool}]``; values are dropped."""
    if env is None:
        return None
    out: list[EnvEntry] = []
    for item in env:
        name, sep, value = str(item).partition("=")
        out.append({"name": name, "looks_secret": looks_secret(name, value if sep else None)})
    return out


# --------------------------------------------------------------------------- free text


def redact_url_userinfo(text: str) -> str:
    """``http://user:pw@proxy:3128`` to ``http://<redacted>@proxy:3128`` (also without scheme)."""
    text = _URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", text)
    # "user:pw@proxy:3128" with no scheme, as some proxy settings are written
    return _BARE_USERINFO.sub(REDACTED + "@", text)


def scrub_text(text: str) -> str:
    """Replace known credential formats and URL userinfo inside free text by ``<redacted>``."""
    if not text:
        return text
    for pattern in _VALUE_PATTERNS:
        text = pattern.sub(_replacement, text)
    return redact_url_userinfo(text)


def _replacement(m: re.Match[str]) -> str:
    keep = m.groupdict().get("keep")
    return (keep or "") + REDACTED


_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*=")
# "ONBUILD ENV K=V" repeats the value too (the step that records the trigger).
_NOP = re.compile(r"#\(nop\)\s+(?P<onbuild>ONBUILD\s+)?(?P<inst>ENV|ARG)\s+(?P<args>.*)\Z", re.S | re.I)
_NOP_ALONE = re.compile(r"\A\s*#\(nop\)\s*\Z")
_BUILDKIT = re.compile(r"\A\s*(?P<onbuild>ONBUILD\s+)?(?P<inst>ENV|ARG)\s+(?P<args>.*)\Z", re.S | re.I)
_BUILD_ARGS = re.compile(r"\A(?P<pre>\s*(?:RUN\s+)?)\|(?P<n>\d+)\s+(?P<rest>.*)\Z", re.S | re.I)
_ARG_COUNT = re.compile(r"\A\|(?P<n>\d+)\Z")
_SHELL_START = re.compile(r"\s(?=/bin/(?:ba|da|a)?sh\s+-c\b|cmd\s+/S\s+/C\b)")

#: Names of the variables an image or container really has (see :func:`known_names`).
Names = frozenset[str] | None


def _redact_pairs(args: str, inst: str, names: Names = None) -> str:
    """Redact ``K=V K2=V2`` (and legacy ``ENV K some value``); keep names, drop values.

    Docker writes the pairs unquoted (``ENV B=two words C=x``), so where one value ends is
    a guess. With ``names`` (the variables the image really has) only ``NAME=`` of a known
    name starts a new pair, so a value such as ``"a b=c"`` cannot leave ``b=`` behind;
    without it, any ``NAME=`` token does. Either way no value text is ever kept.
    """
    tokens = args.split()
    if not tokens:
        return args
    if "=" not in tokens[0]:
        if inst.upper() == "ARG" and len(tokens) == 1:  # "ARG NAME": declares, has no value
            return tokens[0]
        return f"{tokens[0]} {REDACTED}" if len(tokens) > 1 else tokens[0]
    out = []
    for tok in tokens:
        m = _NAME_TOKEN.match(tok)
        if m and (names is None or m.group(0)[:-1] in names):
            out.append(m.group(0) + REDACTED)
        # anything else is the continuation of the previous value: dropped
    return " ".join(out) if out else REDACTED


def _redact_build_args(rest: str, count: int, names: Names = None) -> tuple[str, str]:
    """``|2 A=1 B=2 /bin/sh -c cmd``: split off and redact the build-arg pairs."""
    shell = _SHELL_START.search(" " + rest)
    if shell:
        pairs, command = rest[: shell.start()], rest[shell.start() :]
        return _redact_pairs(pairs, "ARG", names), command.lstrip()
    tokens = rest.split(" ")
    taken = 0
    kept: list[str] = []
    i = 0
    while i < len(tokens) and taken < count:
        m = _NAME_TOKEN.match(tokens[i])
        if m:
            kept.append(m.group(0) + REDACTED)
            taken += 1
        i += 1
    return " ".join(kept), " ".join(tokens[i:])


def _names_for(m: re.Match[str], names: Names) -> Names:
    """Known names split ENV pairs of this image; ARG lines (where ARG names come from) and
    ONBUILD lines (names of a future child image) are split by the ``NAME=`` shape alone."""
    return names if m.group("inst").upper() == "ENV" and not m.group("onbuild") else None


def redact_created_by(created_by: str, names: Names = None) -> str:
    """Redact values in one image-history ``CreatedBy`` line (classic and BuildKit forms).

    ``names``: the variables the image has (:func:`known_names`), used to split
    multi-pair ``ENV`` lines and ``|N`` build-arg prefixes exactly.
    """
    if not created_by:
        return created_by
    text = created_by
    m = _NOP.search(text)
    if m is None:
        m = _BUILDKIT.match(text)
    if m is not None:
        pair_names = _names_for(m, names)
        text = text[: m.start("args")] + _redact_pairs(m.group("args"), m.group("inst"), pair_names)
    elif (m := _BUILD_ARGS.match(text)) is not None:
        pairs, command = _redact_build_args(m.group("rest"), int(m.group("n")), names)
        text = f"{m.group('pre')}|{m.group('n')} {pairs}" + (f" {command}" if command else "")
    return scrub_text(text)


def redact_command(args: list[Any] | None, names: Names = None) -> list[Any] | None:
    """Redact a command in list form: ``Cmd``, ``Entrypoint``, or a container's Path + Args.

    The classic builder records each step in the list form of its build container's
    command, and leaves it in the image's ``ContainerConfig.Cmd`` (and in the command of
    any build container kept with ``--rm=false``):

    * ``["/bin/sh", "-c", "#(nop) ", "ENV K=V K2=V2"]`` (ENV/ARG steps: the instruction is
      its own element after a lone ``#(nop)``);
    * ``["|2", "A=1", "B=two words", "/bin/sh", "-c", "make"]`` (a RUN after ``ARG``: the
      count, then exactly that many ``NAME=value`` elements).

    Every other element gets :func:`redact_created_by` (older daemons joined the ``#(nop)``
    line into one element) and credential scrubbing.
    """
    if not isinstance(args, list):
        return args
    out: list[Any] = []
    pending = 0
    after_nop = False
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            out.append(arg)
            continue
        if pending:
            pending -= 1
            m = _NAME_TOKEN.match(arg)
            out.append(m.group(0) + REDACTED if m else REDACTED)
            continue
        if i == 0 and (m := _ARG_COUNT.match(arg)) is not None:
            pending = int(m.group("n"))
            out.append(arg)
            continue
        if after_nop and (m := _BUILDKIT.match(arg)) is not None:
            pair_names = _names_for(m, names)
            redacted = arg[: m.start("args")] + _redact_pairs(m.group("args"), m.group("inst"), pair_names)
            out.append(scrub_text(redacted))
            continue
        if _NOP_ALONE.match(arg):
            after_nop = True
        out.append(redact_created_by(arg, names))
    return out


def known_names(*envs: Any, history: list[Any] | None = None) -> frozenset[str]:
    """Names of the variables of an image or container: from raw ``["K=V", ...]`` env lists
    and the ``ARG`` lines of its history. Used to split pairs exactly (:func:`_redact_pairs`).
    """
    names: set[str] = set()
    for env in envs:
        for item in env if isinstance(env, list) else []:
            if isinstance(item, str):
                names.add(item.partition("=")[0])
    for entry in history or []:
        created_by = entry.get("CreatedBy") if isinstance(entry, dict) else None
        if not isinstance(created_by, str):
            continue
        m = _NOP.search(created_by) or _BUILDKIT.match(created_by)
        if m is None or m.group("inst").upper() != "ARG":
            continue
        tokens = m.group("args").split()
        if len(tokens) == 1 and "=" not in tokens[0]:
            names.add(tokens[0])
        names.update(t.group(0)[:-1] for tok in tokens if (t := _NAME_TOKEN.match(tok)))
    return frozenset(names)


def redact_history(history: list[dict[str, Any]] | None, names: Names = None) -> list[dict[str, Any]]:
    """Copy image history entries with ``CreatedBy`` (and ``Comment``) redacted."""
    out = []
    for entry in history or []:
        entry = dict(entry)
        if isinstance(entry.get("CreatedBy"), str):
            entry["CreatedBy"] = redact_created_by(entry["CreatedBy"], names)
        if isinstance(entry.get("Comment"), str):
            entry["Comment"] = scrub_text(entry["Comment"])
        out.append(entry)
    return out


_PROXY_FIELDS = ("HttpProxy", "HttpsProxy", "NoProxy")


def redact_info(info: dict[str, Any]) -> dict[str, Any]:
    """``docker info`` with credentials removed from the proxy settings."""
    info = dict(info)
    for key in _PROXY_FIELDS:
        if isinstance(info.get(key), str):
            info[key] = redact_url_userinfo(info[key])
    return info


def redact_config(config: dict[str, Any] | None, names: Names = None) -> dict[str, Any] | None:
    """An image or container ``Config`` (or an image's ``ContainerConfig``): Env values
    dropped, ENV/ARG values removed from ``Cmd``/``Entrypoint`` (the classic builder's
    ``#(nop) ENV`` and ``|N K=V`` forms) and ``OnBuild`` (``ONBUILD ENV K=V``), and
    credentials scrubbed from all three."""
    if not isinstance(config, dict):
        return config
    config = dict(config)
    if "Env" in config:
        config["Env"] = redact_env(config["Env"])
    for key in ("Cmd", "Entrypoint"):
        if isinstance(config.get(key), list):
            config[key] = redact_command(config[key], names)
    if isinstance(config.get("OnBuild"), list):
        # ONBUILD names belong to the child image, not to this one: no names to split by.
        config["OnBuild"] = [redact_created_by(a) if isinstance(a, str) else a for a in config["OnBuild"]]
    return config

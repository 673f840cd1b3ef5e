"""The one dockerd command-line parser, form by form, against pflag's rules (dockerd's own).

Every row is a command line dockerd accepts (or refuses, for the problem rows) and what
dockerd makes of it. The probe (``parse_dockerd_flags``) and the checks
(``parse_dockerd_cmdline``, daemon.json keys) read the same parse.
"""

from __future__ import annotations

import pytest

from scanners import dockerd_args
from scanners.checks.context import parse_dockerd_cmdline
from scanners.collectors.probe_parse import parse_dockerd_flags, referenced_paths

FORMS = [
    # long flags: "--flag=value" and "--flag value"
    (["--host=unix:///a.sock"], {"host": ["unix:///a.sock"]}),
    (["--host", "unix:///a.sock"], {"host": ["unix:///a.sock"]}),
    (["--log-level", "warn"], {"log-level": ["warn"]}),
    (["--log-level=warn", "--log-level=error"], {"log-level": ["warn", "error"]}),  # last wins
    # a value flag takes the next word even when it starts with "-" (pflag does)
    (["--label", "-x=1"], {"label": ["-x=1"]}),
    # booleans: bare is true, only "=" gives another value, never the next word
    (["--icc"], {"icc": ["true"]}),
    (["--icc=false"], {"icc": ["false"]}),
    (["--selinux-enabled"], {"selinux-enabled": ["true"]}),
    (["--icc=0", "--userland-proxy=f", "--live-restore=T"],
     {"icc": ["false"], "userland-proxy": ["false"], "live-restore": ["true"]}),  # strconv.ParseBool
    (["--ipv6", "--icc=false"], {"ipv6": ["true"], "icc": ["false"]}),
    (["--cri-containerd", "--userland-proxy=false"], {"cri-containerd": ["true"], "userland-proxy": ["false"]}),
    (["--ip-forward-no-drop", "--allow-direct-routing", "--iptables=false"],
     {"ip-forward-no-drop": ["true"], "allow-direct-routing": ["true"], "iptables": ["false"]}),
    (["--tlsverify", "--tls=false"], {"tlsverify": ["true"], "tls": ["false"]}),
    # short flags: "-H value", "-Hvalue", "-H=value"
    (["-H", "fd://"], {"host": ["fd://"]}),
    (["-Hunix:///b.sock"], {"host": ["unix:///b.sock"]}),
    (["-H=fd://"], {"host": ["fd://"]}),
    (["-l", "debug"], {"log-level": ["debug"]}),
    (["-ldebug"], {"log-level": ["debug"]}),
    (["-G", "docker", "-p", "/run/d.pid", "-s", "overlay2", "-b", "none"],
     {"group": ["docker"], "pidfile": ["/run/d.pid"], "storage-driver": ["overlay2"], "bridge": ["none"]}),
    (["-g", "/old"], {"data-root": ["/old"]}),  # -g/--graph: data-root before Docker 23
    (["--graph=/old", "--data-root", "/new"], {"data-root": ["/old", "/new"]}),
    # short booleans, alone and combined
    (["-D"], {"debug": ["true"]}),
    (["-D=false"], {"debug": ["false"]}),
    (["-Dl", "debug"], {"debug": ["true"], "log-level": ["debug"]}),
    (["-Dldebug"], {"debug": ["true"], "log-level": ["debug"]}),
    (["-DH", "fd://"], {"debug": ["true"], "host": ["fd://"]}),
    (["-lD"], {"log-level": ["D"]}),  # a value flag takes the rest of the cluster
    (["-r", "--icc=false"], {"restart": ["true"], "icc": ["false"]}),
    # repeated flags keep every value, in order
    (["-H", "fd://", "-Hunix:///x.sock", "--host=tcp://a:1"], {"host": ["fd://", "unix:///x.sock", "tcp://a:1"]}),
    (["--default-ulimit=nofile=1024:2048", "--default-ulimit", "nproc=3:4"],
     {"default-ulimit": ["nofile=1024:2048", "nproc=3:4"]}),
    (["--insecure-registry", "r:5000", "--insecure-registry=10.0.0.0/8"], {"insecure-registry": ["r:5000", "10.0.0.0/8"]}),
    # values that hold "=" keep everything after the first one
    (["--log-opt", "syslog-address=udp://127.0.0.1:514"], {"log-opt": ["syslog-address=udp://127.0.0.1:514"]}),
    (["--seccomp-profile=/etc/docker/seccomp.json"], {"seccomp-profile": ["/etc/docker/seccomp.json"]}),
]


@pytest.mark.parametrize(("argv", "flags"), FORMS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_it_parses_every_form_dockerd_accepts(argv, flags):
    parsed = dockerd_args.parse(["dockerd", *argv])
    assert parsed.flags == flags
    assert parsed.problems == [] and parsed.unknown == {}


@pytest.mark.parametrize(("argv", "flags", "problem"), [
    (["--host"], {}, "flag --host needs a value"),
    (["-H"], {}, "flag -H needs a value"),
    (["--", "--icc=false"], {}, "stray argument --icc=false"),  # "--" ends the flags
    (["--icc", "false"], {"icc": ["true"]}, "stray argument false"),
    (["-icc=false"], {}, "unknown shorthand flag 'i' in -icc=false"),  # single-dash long flags are not pflag
    (["---x"], {}, "bad flag syntax ---x"),
    (["-"], {}, "stray argument -"),
])
def test_it_lists_what_dockerd_would_refuse_and_never_raises(argv, flags, problem):
    parsed = dockerd_args.parse(["dockerd", *argv])
    assert parsed.flags == flags
    assert problem in parsed.problems


def test_it_keeps_flags_it_does_not_know_with_their_value():
    parsed = dockerd_args.parse(["dockerd", "--future-flag", "x", "--future-bool", "--icc=false"])
    assert parsed.unknown == {"future-flag": ["x"], "future-bool": ["true"]}
    assert parsed.flags == {"icc": ["false"]}
    assert parsed.problems == ["unknown flag --future-flag", "unknown flag --future-bool"]


def test_it_survives_garbage():
    parsed = dockerd_args.parse(["dockerd", "", "=", "--=x", "-=", "\x00", "-" * 500, "--" + "a" * 500])
    assert parsed.flags == {} and parsed.problems
    assert all(len(p) < 120 for p in parsed.problems)
    assert dockerd_args.parse([]).flags == {} and dockerd_args.parse(["dockerd"]).flags == {}


def test_it_gives_daemon_json_keys_to_the_checks():
    argv = ["dockerd", "-H", "fd://", "--default-ulimit", "nofile=1:2", "--insecure-registry", "r:5000",
            "--log-opt", "max-size=1m", "--add-runtime", "crun=/usr/bin/crun", "-g", "/old", "--icc=false"]
    assert parse_dockerd_cmdline(argv) == {
        "hosts": ["fd://"], "default-ulimits": ["nofile=1:2"], "insecure-registries": ["r:5000"],
        "log-opts": ["max-size=1m"], "runtimes": ["crun=/usr/bin/crun"], "data-root": ["/old"], "icc": ["false"],
    }
    assert dockerd_args.flag_for_key("hosts") == "host" and dockerd_args.json_key("host") == "hosts"
    assert dockerd_args.is_list("default-ulimits") and dockerd_args.is_bool("icc") and not dockerd_args.is_bool("bridge")


def test_it_gives_the_probe_and_the_checks_the_same_parse():
    argv = ["dockerd", "-DH", "unix:///run/a.sock", "--ipv6", "--tlsverify", "--tlscacert", "/ca.pem",
            "-g", "/var/lib/docker-b"]
    flags = parse_dockerd_flags(argv)
    keys = parse_dockerd_cmdline(argv)
    assert flags["host"] == keys["hosts"] == ["unix:///run/a.sock"]
    assert flags["data-root"] == keys["data-root"] == ["/var/lib/docker-b"]
    # the probe stats the socket it found behind the combined -DH (it used to miss it)
    assert "/run/a.sock" in referenced_paths(flags, None)

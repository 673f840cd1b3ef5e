"""Redaction: no value survives, names survive, secrets are flagged (no Docker needed)."""

from __future__ import annotations

import json

import pytest

from scanners.redact import (
    REDACTED,
    known_names,
    looks_secret,
    redact_command,
    redact_config,
    redact_created_by,
    redact_env,
    redact_history,
    redact_info,
    redact_url_userinfo,
    scrub_text,
)

CANARY = "CANARY-5e1d"


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "dbPassword",
        "SMTP_PASSWD",
        "JWT_SECRET",
        "CLIENT_SECRET",
        "GITHUB_TOKEN",
        "NPM_TOKEN",
        "STRIPE_API_KEY",
        "SENDGRID_APIKEY",
        "SSH_PRIVATE_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "BASIC_AUTH",
        "AUTHORIZATION",
        "SENTRY_DSN",
        "DJANGO_SECRET_KEY",
        "SIGNING_KEY",
        "STRIPE_KEY",
        "DB_PASS",
        "DB_PWD",
        "SESSION_COOKIE",
    ],
)
def test_it_flags_secret_names(name):
    assert looks_secret(name, "x")


@pytest.mark.parametrize(
    "name,value",
    [
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("LANG", "C.UTF-8"),
        ("PYTHON_VERSION", "3.11.7"),
        ("PYTHON_SHA256", "1db84fec57125aa93638b51bb2b15103e12ac196e2f960f0d124275b2687ea54"),
        ("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D"),
        ("NGINX_VERSION", "1.25.3"),
        ("PHP_ASC_URL", "https://www.php.net/distributions/php-8.3.0.tar.xz.asc"),
        ("JAVA_HOME", "/opt/java/openjdk"),
        ("AUTHOR", "Jane Doe"),
        ("HOSTNAME", "abc123def456"),
        ("REQUEST_ID", "550e8400-e29b-41d4-a716-446655440000"),
        ("PHP_CFLAGS", "-fstack-protector-strong -fpic -fpie -O2 -D_LARGEFILE_SOURCE -D_FILE_OFFSET_BITS=64"),
        ("GIT_COMMIT", "9fceb02d0ae598e95dc970b74767f19372d61af8"),
        ("PWD", "/app"),
        ("DATABASE_HOST", "db.internal:5432"),
        ("PROXY_URL", "http://proxy.example.com:3128"),
    ],
)
def test_it_does_not_flag_ordinary_variables(name, value):
    assert not looks_secret(name, value)


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "postgres://app:hunter2@db:5432/app",
        "https://user:pa55@example.com/x",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "glpat-ABCDEFGHIJ0123456789",
        "xoxb-123456789012-abcdefghijkl",
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "Bearer abcdefghijklmnop123456",
        "Server=db;Database=app;User Id=sa;Password=hunter2;",
        "Xk9mP2qL7vN4rT8wY3zBq5Jd",  # random base64-ish
        "3f7a9c0e1b2d4f6a8c0e2b4d6f8a0c2e",  # 32 hex chars, no checksum-like name
    ],
)
def test_it_flags_secret_values_under_innocent_names(value):
    assert looks_secret("SETTING", value)


def test_it_keeps_names_and_drops_every_value():
    env = [
        f"DB_PASSWORD={CANARY}-pw",
        f"HARMLESS=postgres://u:{CANARY}@db/x",
        f"PLAIN={CANARY}-plain",
        "EMPTY=",
        "NOVALUE",
        f"WITH_EQUALS=a=b={CANARY}",
    ]
    out = redact_env(env)
    assert [e["name"] for e in out] == ["DB_PASSWORD", "HARMLESS", "PLAIN", "EMPTY", "NOVALUE", "WITH_EQUALS"]
    assert [e["looks_secret"] for e in out] == [True, True, False, False, False, False]
    assert CANARY not in json.dumps(out)
    assert all(set(e) == {"name", "looks_secret"} for e in out)


def test_it_passes_null_env_through():
    assert redact_env(None) is None
    assert redact_config({"Env": None, "Cmd": None}) == {"Env": None, "Cmd": None}


@pytest.mark.parametrize(
    "created_by,expected",
    [
        # classic builder
        (
            f"/bin/sh -c #(nop)  ENV API_TOKEN={CANARY} DATABASE_URL=postgres://a:{CANARY}@db/x",
            f"/bin/sh -c #(nop)  ENV API_TOKEN={REDACTED} DATABASE_URL={REDACTED}",
        ),
        (f"/bin/sh -c #(nop)  ENV LEGACY {CANARY} more words", f"/bin/sh -c #(nop)  ENV LEGACY {REDACTED}"),
        (f"/bin/sh -c #(nop)  ENV K={CANARY} spaced value", f"/bin/sh -c #(nop)  ENV K={REDACTED}"),
        (f"/bin/sh -c #(nop)  ARG WITH_DEFAULT={CANARY}", f"/bin/sh -c #(nop)  ARG WITH_DEFAULT={REDACTED}"),
        ("/bin/sh -c #(nop)  ARG NO_DEFAULT", "/bin/sh -c #(nop)  ARG NO_DEFAULT"),
        (
            f"|2 BUILD_TOKEN={CANARY} OTHER={CANARY}x /bin/sh -c echo $BUILD_TOKEN",
            f"|2 BUILD_TOKEN={REDACTED} OTHER={REDACTED} /bin/sh -c echo $BUILD_TOKEN",
        ),
        # BuildKit
        (f"ENV API_TOKEN={CANARY}", f"ENV API_TOKEN={REDACTED}"),
        (f"ENV A={CANARY} B={CANARY}", f"ENV A={REDACTED} B={REDACTED}"),
        (f"ARG VERSION={CANARY}", f"ARG VERSION={REDACTED}"),
        ("ARG VERSION", "ARG VERSION"),
        (
            f"RUN |1 NPM_TOKEN={CANARY} /bin/sh -c npm ci # buildkit",
            f"RUN |1 NPM_TOKEN={REDACTED} /bin/sh -c npm ci # buildkit",
        ),
        (f"RUN |1 TOKEN={CANARY} npm ci", f"RUN |1 TOKEN={REDACTED} npm ci"),
        # untouched
        ('/bin/sh -c #(nop)  CMD ["sh"]', '/bin/sh -c #(nop)  CMD ["sh"]'),
        ("COPY file:abc in /app", "COPY file:abc in /app"),
        ("", ""),
    ],
)
def test_it_redacts_env_and_arg_values_in_history(created_by, expected):
    assert redact_created_by(created_by) == expected


def test_it_scrubs_known_credentials_inside_run_lines():
    line = (
        "/bin/sh -c curl -H 'Authorization: Bearer abcdefghijklmnop1234' "
        "https://u:hunter2@example.com/x && aws configure set key AKIAIOSFODNN7EXAMPLE "
        "&& mysql --password hunter3 && echo token=hunter4"
    )
    out = redact_created_by(line)
    for secret in ("abcdefghijklmnop1234", "hunter2", "AKIAIOSFODNN7EXAMPLE", "hunter3", "hunter4"):
        assert secret not in out
    assert "curl" in out and "example.com/x" in out


def test_it_redacts_history_entries_without_touching_the_input():
    history = [{"Id": "sha256:1", "CreatedBy": f"ENV X={CANARY}", "Comment": "", "Size": 0}]
    out = redact_history(history)
    assert CANARY in history[0]["CreatedBy"]
    assert CANARY not in json.dumps(out)
    assert out[0]["Size"] == 0


@pytest.mark.parametrize(
    "value,expected",
    [
        ("http://user:pw@proxy:3128", f"http://{REDACTED}@proxy:3128"),
        ("http://xxxxx:xxxxx@proxy:3128", f"http://{REDACTED}@proxy:3128"),
        ("http://token@proxy:3128", f"http://{REDACTED}@proxy:3128"),
        ("user:pw@proxy:3128", f"{REDACTED}@proxy:3128"),
        ("http://proxy:3128", "http://proxy:3128"),
        ("localhost,127.0.0.1,.internal", "localhost,127.0.0.1,.internal"),
        ("a.b,u:p@c.d", f"a.b,{REDACTED}@c.d"),
        ("", ""),
    ],
)
def test_it_removes_userinfo_from_proxy_urls(value, expected):
    assert redact_url_userinfo(value) == expected


def test_it_redacts_proxy_fields_of_docker_info():
    info = {
        "HttpProxy": f"http://alice:{CANARY}@proxy:3128",
        "HttpsProxy": f"https://alice:{CANARY}@proxy:3129",
        "NoProxy": f"localhost,bob:{CANARY}@odd",
        "Name": "host",
    }
    out = redact_info(info)
    assert CANARY not in json.dumps(out)
    assert out["HttpProxy"] == f"http://{REDACTED}@proxy:3128"
    assert out["Name"] == "host"


def test_it_scrubs_private_keys_in_free_text():
    text = f"x\n-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\ny"
    out = scrub_text(text)
    assert CANARY not in out and out.startswith("x\n") and out.endswith("\ny")


def test_it_scrubs_credentials_from_config_commands():
    config = {"Env": [f"A={CANARY}"], "Cmd": ["server", f"--password={CANARY}"], "Entrypoint": None}
    out = redact_config(config)
    assert CANARY not in json.dumps(out)
    assert out["Cmd"] == ["server", f"--password={REDACTED}"]


@pytest.mark.parametrize(
    "created_by,expected",
    [
        (f"/bin/sh -c #(nop)  ONBUILD ENV ONB={CANARY}", f"/bin/sh -c #(nop)  ONBUILD ENV ONB={REDACTED}"),
        (f"ONBUILD ARG X={CANARY}", f"ONBUILD ARG X={REDACTED}"),
        (f"ENV A='{CANARY}' B=\"{CANARY} two\"", f"ENV A={REDACTED} B={REDACTED}"),
        (f"ENV a={CANARY} b={CANARY}", f"ENV a={REDACTED} b={REDACTED}"),
        (f"ARG M1={CANARY} M2={CANARY}", f"ARG M1={REDACTED} M2={REDACTED}"),
        (f"RUN |2 A={CANARY} two B={CANARY} /bin/sh -c x", f"RUN |2 A={REDACTED} B={REDACTED} /bin/sh -c x"),
    ],
)
def test_it_redacts_more_history_forms(created_by, expected):
    assert redact_created_by(created_by) == expected


def test_it_splits_env_pairs_by_the_names_the_image_really_has():
    # "ENV ODD=\"v {CANARY}x=y\"" is written unquoted: without names, "{CANARY}x=" looks like a name.
    line = f"/bin/sh -c #(nop)  ENV ODD=v {CANARY}x=y B=2"
    assert CANARY in redact_created_by(line)  # the shape alone cannot tell
    names = known_names(["ODD=v x", "B=2"])
    assert redact_created_by(line, names) == f"/bin/sh -c #(nop)  ENV ODD={REDACTED} B={REDACTED}"
    # a name it does not know is dropped with its value, never kept as text
    assert redact_created_by(f"ENV Q={CANARY}", frozenset()) == f"ENV {REDACTED}"


def test_it_learns_arg_names_from_history():
    history = [{"CreatedBy": "/bin/sh -c #(nop)  ARG PLAIN"}, {"CreatedBy": f"ARG M1={CANARY} M2=x"}, {"CreatedBy": 3}]
    assert known_names(["PATH=/bin"], None, history=history) == {"PATH", "PLAIN", "M1", "M2"}


@pytest.mark.parametrize(
    "cmd,expected",
    [
        # classic builder, last step ENV / ARG / ONBUILD (ContainerConfig.Cmd)
        (["/bin/sh", "-c", "#(nop) ", f"ENV UPSTREAM_SETTING={CANARY}"],
         ["/bin/sh", "-c", "#(nop) ", f"ENV UPSTREAM_SETTING={REDACTED}"]),
        (["/bin/sh", "-c", "#(nop) ", f"ENV A={CANARY} B={CANARY} two words"],
         ["/bin/sh", "-c", "#(nop) ", f"ENV A={REDACTED} B={REDACTED}"]),
        (["/bin/sh", "-c", "#(nop) ", f"ENV LEGACY {CANARY} words"],
         ["/bin/sh", "-c", "#(nop) ", f"ENV LEGACY {REDACTED}"]),
        (["/bin/sh", "-c", "#(nop) ", f"ARG X={CANARY}"], ["/bin/sh", "-c", "#(nop) ", f"ARG X={REDACTED}"]),
        (["/bin/sh", "-c", "#(nop) ", f"ONBUILD ENV O={CANARY}"],
         ["/bin/sh", "-c", "#(nop) ", f"ONBUILD ENV O={REDACTED}"]),
        # older daemons: the instruction inside the "#(nop)" element
        (["/bin/sh", "-c", f"#(nop) ENV X={CANARY}"], ["/bin/sh", "-c", f"#(nop) ENV X={REDACTED}"]),
        # classic builder, RUN after ARG: the count, then exactly that many pairs
        (["|2", f"A={CANARY} two words", f"B={CANARY}", "/bin/sh", "-c", "make"],
         ["|2", f"A={REDACTED}", f"B={REDACTED}", "/bin/sh", "-c", "make"]),
        (["|1", f"{CANARY}"], ["|1", REDACTED]),
        # ordinary commands stay as they are
        (["sleep", "3600"], ["sleep", "3600"]),
        (["sh", "-c", "echo ENV=prod"], ["sh", "-c", "echo ENV=prod"]),
        (["/bin/sh", "-c", "#(nop) ", 'CMD ["sh"]'], ["/bin/sh", "-c", "#(nop) ", 'CMD ["sh"]']),
        ([1, None, "x"], [1, None, "x"]),
        ([], []),
    ],
)
def test_it_redacts_env_and_arg_values_in_list_form_commands(cmd, expected):
    assert redact_command(cmd) == expected


def test_it_redacts_every_place_of_a_classic_builder_config():
    """The shape of an image's ContainerConfig whose last step was ENV, with ONBUILD."""
    config = {
        "Env": ["PATH=/bin", f"UPSTREAM_SETTING={CANARY}"],
        "Cmd": ["/bin/sh", "-c", "#(nop) ", f"ENV UPSTREAM_SETTING={CANARY}"],
        "Entrypoint": ["/bin/sh", "-c", "#(nop) ", f"ARG E={CANARY}"],
        "OnBuild": [f"ENV ONB={CANARY}", f"ARG OA={CANARY}", "RUN make"],
        "Labels": {"x": "y"},
    }
    out = redact_config(config)
    assert CANARY not in json.dumps(out)
    assert out["OnBuild"] == [f"ENV ONB={REDACTED}", f"ARG OA={REDACTED}", "RUN make"]
    assert out["Env"] == [
        {"name": "PATH", "looks_secret": False},
        {"name": "UPSTREAM_SETTING", "looks_secret": False},
    ]

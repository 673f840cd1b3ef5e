"""One validation for every way a host is written (API, `manage.py addhost`, the admin form):
the same bad input gets the same clear message on each path, and nothing is saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

from posture.jobs.hosts import INTERVAL_MAX_MINUTES, save_host
from posture.management.commands.addhost import Command as AddHost
from posture.models import AuditEvent, DockerHost
from tests.posture.conftest import api_error
from tests.support.certs import make_bundle

pytestmark = pytest.mark.django_db

BUNDLE = make_bundle()
GOOD_TLS = {"tls_ca": BUNDLE.ca.cert_pem, "tls_cert": BUNDLE.client.cert_pem, "tls_key": BUNDLE.client.key_pem}
GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\nnot a certificate at all\n-----END CERTIFICATE-----\n"
NAME_RULE = ("a host name is 1 to 100 characters: letters, digits, '.', '_' and '-', "
             "starting with a letter or digit")
INTERVAL_RULE = f"the scan interval must be between 1 and {INTERVAL_MAX_MINUTES} minutes (one year)"
TCP = "tcp://127.0.0.1:2376"

#: bad input (over a valid unix:// host named "h1") -> (field, the one message every path gives)
BAD = {
    "name over 100 characters": ({"name": "n" * 101}, "name", NAME_RULE),
    "name with a slash and a space": ({"name": "web 1/2"}, "name", NAME_RULE),
    "URL over 500 characters": ({"url": "tcp://h:2376/" + "x" * 500}, "url", "the URL is longer than 500 characters"),
    "URL with a newline": ({"url": "unix:///var/run/docker.sock\nX-Injected: 1"}, "url",
                           "the URL contains a space or a control character"),
    "URL with another scheme": ({"url": "http://127.0.0.1:2375"}, "url",
                                "'http://127.0.0.1:2375': the URL must start with unix://, tcp:// or ssh://"),
    "interval 0": ({"scan_interval_minutes": 0}, "scan_interval_minutes", INTERVAL_RULE),
    "interval 99999999999": ({"scan_interval_minutes": 99999999999}, "scan_interval_minutes", INTERVAL_RULE),
    "TLS on unix://": (GOOD_TLS, "url", "TLS material only applies to tcp:// URLs"),
    "half the TLS material": ({"url": TCP, "tls_cert": BUNDLE.client.cert_pem}, "tls_ca",
                              "TLS needs all three of the CA certificate, the client certificate and the client key"),
    "garbage PEMs": ({"url": TCP, "tls_ca": GARBAGE_PEM, "tls_cert": GARBAGE_PEM, "tls_key": GARBAGE_PEM}, "tls_cert",
                     "TLS material refused: the CA certificate is not a readable PEM certificate"),
    "a client key of another certificate": ({"url": TCP, **GOOD_TLS, "tls_key": BUNDLE.foreign_client.key_pem},
                                            "tls_cert", "TLS material refused: the client certificate and the "
                                            "client key do not belong together"),
}


def host_fields(overrides: dict) -> dict:
    return {"name": "h1", "url": "unix:///var/run/docker.sock", **overrides}


def via_api(user, fields: dict, tmp_path: Path) -> tuple[bool, dict]:
    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/v1/hosts/", fields, format="json")
    assert response.status_code in (201, 400), response.content
    return response.status_code == 201, api_error(response)["fields"] if response.status_code == 400 else {}


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    """run_from_argv closes every connection when it ends, the test's transaction with it."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def via_cli(user, fields: dict, tmp_path: Path) -> tuple[bool, dict]:
    argv = ["manage.py", "addhost", fields["name"], fields["url"]]
    if "scan_interval_minutes" in fields:
        argv += ["--interval", str(fields["scan_interval_minutes"])]
    for field in ("tls_ca", "tls_cert", "tls_key"):
        if field in fields:
            path = tmp_path / f"{field}.pem"
            path.write_text(fields[field])
            argv += [f"--{field.replace('_', '-')}", str(path)]
    try:
        AddHost().run_from_argv(argv)  # what manage.py does: CommandError -> stderr, exit 1
    except SystemExit as exc:
        assert exc.code == 1
        return False, {"cli": True}
    return True, {}


def admin_form_data(fields: dict) -> dict:
    data = {"name": fields["name"], "url": fields["url"], "tls_ca": fields.get("tls_ca", ""),
            "tls_cert": fields.get("tls_cert", ""), "tls_key": fields.get("tls_key", ""),
            "scan_interval_minutes": str(fields.get("scan_interval_minutes", 60)), "enabled": "on", "_save": "Save"}
    return data


def via_admin(user, fields: dict, tmp_path: Path) -> tuple[bool, dict]:
    client = Client()
    client.force_login(user)
    response = client.post("/admin/posture/dockerhost/add/", admin_form_data(fields))
    if response.status_code == 302:
        return True, {}
    assert response.status_code == 200
    return False, {k: list(v) for k, v in response.context["adminform"].form.errors.items()}


@pytest.mark.parametrize("case", BAD)
def test_it_gives_the_same_message_on_the_api(admin, case, tmp_path):
    overrides, field, message = BAD[case]
    saved, errors = via_api(admin, host_fields(overrides), tmp_path)
    assert not saved and errors == {field: [message]}
    assert not DockerHost.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("case", BAD)
def test_it_gives_the_same_message_in_the_admin_form(admin, case, tmp_path):
    overrides, field, message = BAD[case]
    saved, errors = via_admin(admin, host_fields(overrides), tmp_path)
    assert not saved and errors == {field: [message]}
    assert not DockerHost.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("case", BAD)
def test_it_gives_the_same_message_from_addhost_on_one_line(admin, case, tmp_path, capsys):
    overrides, field, message = BAD[case]
    saved, _ = via_cli(admin, host_fields(overrides), tmp_path)
    err = capsys.readouterr().err
    assert not saved
    assert err == f"CommandError: {message}\n", err
    assert "Traceback" not in err
    assert not DockerHost.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("via", [via_api, via_cli, via_admin])
def test_it_saves_a_good_host_with_tls_on_every_path_and_audits_it(admin, via, tmp_path):
    saved, errors = via(admin, host_fields({"url": TCP, **GOOD_TLS, "scan_interval_minutes": 30}), tmp_path)
    assert saved, errors
    host = DockerHost.objects.get(name="h1")
    assert host.uses_tls and host.tls_key == BUNDLE.client.key_pem and host.scan_interval_minutes == 30
    event = AuditEvent.objects.get(action="host.created")
    assert event.target == "h1"
    assert event.actor_label == ("cli" if via is via_cli else "admin")
    assert BUNDLE.client.key_pem not in str(event.detail)


def test_it_audits_an_admin_edit_and_keeps_stored_tls_when_left_empty(admin):
    host = save_host(None, host_fields({"url": TCP, **GOOD_TLS}), actor_label="cli")
    client = Client()
    client.force_login(admin)
    data = admin_form_data(host_fields({"url": TCP, "scan_interval_minutes": 15}))
    response = client.post(f"/admin/posture/dockerhost/{host.pk}/change/", data)
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.scan_interval_minutes == 15 and host.tls_key == BUNDLE.client.key_pem
    assert AuditEvent.objects.get(action="host.updated").actor == admin


def test_it_refuses_an_archived_name_on_every_path(admin, tmp_path):
    host = save_host(None, host_fields({}), actor_label="cli")
    from posture.jobs.hosts import archive_host

    archive_host(host, actor=admin)
    message = "a host named 'h1' already exists (archived: its history keeps the name)"
    assert via_api(admin, host_fields({}), tmp_path)[1] == {"name": [message]}
    assert via_admin(admin, host_fields({}), tmp_path)[1] == {"name": [message]}


def test_it_refuses_to_update_an_archived_host_from_addhost(admin, tmp_path, capsys):
    from posture.jobs.hosts import archive_host

    archive_host(save_host(None, host_fields({}), actor_label="cli"), actor=admin)
    assert via_cli(admin, host_fields({"url": "unix:///other.sock"}), tmp_path) == (False, {"cli": True})
    assert "host 'h1' is archived (its history is kept); unarchive it first" in capsys.readouterr().err
    assert DockerHost.objects.get(name="h1").url == "unix:///var/run/docker.sock"


def test_it_updates_an_existing_host_from_addhost(admin, tmp_path):
    save_host(None, host_fields({}), actor_label="cli")
    assert via_cli(admin, host_fields({"scan_interval_minutes": 5}), tmp_path) == (True, {})
    assert DockerHost.objects.get(name="h1").scan_interval_minutes == 5
    assert AuditEvent.objects.filter(action="host.updated").count() == 1


def test_it_accepts_the_interval_bounds(admin):
    assert save_host(None, host_fields({"scan_interval_minutes": 1})).scan_interval_minutes == 1
    assert save_host(None, host_fields({"name": "h2", "scan_interval_minutes": INTERVAL_MAX_MINUTES}))

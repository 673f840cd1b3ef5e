"""Login throttling (django-axes): per account and per client address, on the site login and
the admin login, with a clear message, a cool-off that ends, and a reset on success."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import F

pytestmark = pytest.mark.django_db
MESSAGE = "Too many failed logins for this account or address; try again in 15 minutes"


def login(client, path: str, username: str, password: str, **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_it_uses_the_documented_defaults():
    assert settings.AXES_FAILURE_LIMIT == 5 and settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_IPWARE_META_PRECEDENCE_ORDER == ("REMOTE_ADDR",)


@pytest.mark.parametrize("path, who", [("/login/", "olive"), ("/admin/login/", "admin")])
def test_it_refuses_the_right_password_after_five_wrong_ones(client, admin, operator, path, who):
    for _ in range(5):
        assert login(client, path, who, "wrong").status_code in (200, 429)
        assert not logged_in(client)
    response = login(client, path, who, "x")
    assert response.status_code == 429
    assert MESSAGE in response.content.decode()
    assert not logged_in(client)


def test_it_lets_four_wrong_passwords_then_the_right_one_in(client, operator):
    for _ in range(4):
        assert login(client, "/login/", "olive", "wrong").status_code == 200
    assert login(client, "/login/", "olive", "x").status_code == 302 and logged_in(client)


def test_it_throttles_an_address_that_tries_many_accounts(client, operator):
    for i in range(5):
        login(client, "/login/", f"guess{i}", "wrong")  # one failure per account, five from the address
    response = login(client, "/login/", "olive", "x")
    assert response.status_code == 429 and MESSAGE in response.content.decode()
    other = client.__class__()
    assert login(other, "/login/", "olive", "x", REMOTE_ADDR="192.0.2.7").status_code == 302  # another address


def test_it_throttles_an_account_from_any_address(client, operator):
    for i in range(5):
        login(client, "/login/", "olive", "wrong", REMOTE_ADDR=f"192.0.2.{i + 1}")
    assert login(client, "/login/", "olive", "x", REMOTE_ADDR="198.51.100.1").status_code == 429


def test_it_lets_the_account_in_once_the_cool_off_has_passed(client, operator):
    for _ in range(5):
        login(client, "/login/", "olive", "wrong")
    assert login(client, "/login/", "olive", "x").status_code == 429
    # Sixteen minutes pass (failures are dated; the cool-off is 15 minutes).
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    assert login(client, "/login/", "olive", "x").status_code == 302 and logged_in(client)


def test_it_lets_an_admin_lift_a_lockout_at_once(client, operator):
    for _ in range(5):
        login(client, "/login/", "olive", "wrong")
    call_command("axes_reset_username", "olive")
    call_command("axes_reset_ip", "127.0.0.1")
    assert login(client, "/login/", "olive", "x").status_code == 302


def test_it_forgets_failures_after_a_successful_login(client, operator):
    for _ in range(4):
        login(client, "/login/", "olive", "wrong")
    assert login(client, "/login/", "olive", "x").status_code == 302
    client.post("/logout/")
    for _ in range(4):
        login(client, "/login/", "olive", "wrong")
    assert login(client, "/login/", "olive", "x").status_code == 302 and logged_in(client)


def test_it_counts_the_forwarded_address_when_configured(client, settings, operator):
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    for i in range(5):
        # Every request comes from the proxy (127.0.0.1); each client guesses from its own address.
        login(client, "/login/", f"guess{i}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.9, 192.0.2.{i + 1}")
    assert login(client, "/login/", "olive", "x", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 302
    for i in range(5):
        login(client, "/login/", f"other{i}", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert login(client, "/login/", "olive", "x", HTTP_X_FORWARDED_FOR="198.51.100.4").status_code == 429


def test_it_refuses_a_header_name_that_is_not_a_meta_key(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "posture.settings", "POSTURE_VAR_DIR": str(tmp_path),
             "POSTURE_CLIENT_IP_HEADER": "X-Forwarded-For: evil"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "must be a request.META key" in result.stderr


def test_it_keeps_no_password_in_the_attempt_log(client, operator):
    login(client, "/login/", "olive", "hunter2-secret")
    assert AccessAttempt.objects.count() == 1
    stored = str(list(AccessAttempt.objects.values()))
    assert "hunter2-secret" not in stored and User.objects.filter(username="olive").exists()

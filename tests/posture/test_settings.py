"""Production settings as `manage.py` meets them: a missing key is one clear line, and
`check --deploy` finds nothing but the warnings listed (and justified) here."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
#: Variables of the test environment that would change what production settings see.
OUTSIDE = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE",
           "DJANGO_ALLOW_ASYNC_UNSAFE")  # the browser tests set it in this process

#: Deploy-check warnings that stay, and why (the README repeats these).
JUSTIFIED = {
    # HSTS is a decision for the whole host name (subdomains, preload) and belongs to the TLS
    # proxy in front of posture, which sees the TLS connection; posture never does.
    "security.W004",
    # Without POSTURE_TRUST_X_FORWARDED_PROTO posture cannot tell HTTPS from HTTP, so redirecting
    # would loop: the TLS proxy redirects plain HTTP. With it, posture redirects (SECURE_SSL_REDIRECT).
    "security.W008",
}
#: Over plain HTTP (POSTURE_HTTPS=false, compose's first-run default) cookies cannot be
#: HTTPS-only, or no one could log in; the README says to put TLS in front and turn it on.
PLAIN_HTTP = {"security.W012", "security.W016"}


def production_keys() -> dict[str, str]:
    return {"POSTURE_SECRET_KEY": secrets.token_urlsafe(50), "POSTURE_ENCRYPTION_KEY": Fernet.generate_key().decode()}


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in OUTSIDE and not k.startswith("POSTURE_")}
    base.update(POSTURE_VAR_DIR=str(tmp_path), POSTURE_ENV="production", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=120)


def warning_ids(output: str) -> set[str]:
    return set(re.findall(r"\(([a-z_]+\.[WE]\d+)\)", output))


def test_it_says_which_key_is_missing_in_one_line(tmp_path):
    result = manage(tmp_path, "check", POSTURE_ENCRYPTION_KEY=Fernet.generate_key().decode())
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "posture: configuration error: POSTURE_ENV=production needs POSTURE_SECRET_KEY (see .env.example)"
    ]
    both = manage(tmp_path, "check")
    assert both.returncode != 0 and len(both.stderr.strip().splitlines()) == 1
    assert "POSTURE_SECRET_KEY, POSTURE_ENCRYPTION_KEY" in both.stderr and "Traceback" not in both.stderr


def test_it_passes_the_deploy_check_but_for_justified_warnings(tmp_path):
    result = manage(tmp_path, "check", "--deploy", **production_keys())
    assert result.returncode == 0, result.stderr
    assert warning_ids(result.stderr) <= JUSTIFIED, result.stderr


def test_it_redirects_to_https_when_it_can_tell_https(tmp_path):
    result = manage(tmp_path, "check", "--deploy", POSTURE_TRUST_X_FORWARDED_PROTO="true", **production_keys())
    assert result.returncode == 0, result.stderr
    assert warning_ids(result.stderr) == {"security.W004"}


def test_it_names_the_cookie_warnings_over_plain_http(tmp_path):
    result = manage(tmp_path, "check", "--deploy", POSTURE_HTTPS="false", **production_keys())
    assert result.returncode == 0, result.stderr
    assert warning_ids(result.stderr) <= JUSTIFIED | PLAIN_HTTP, result.stderr


def test_processes_starting_at_once_on_a_fresh_checkout_share_one_set_of_development_keys(tmp_path):
    """Web, worker and beat import the settings together on a fresh var/: none fails because
    another created the keys first, and all run with the same keys (sessions and stored TLS
    material stay readable by every process)."""
    base = {k: v for k, v in os.environ.items() if k not in OUTSIDE and not k.startswith("POSTURE_")}
    base.update(POSTURE_VAR_DIR=str(tmp_path / "var"), POSTURE_ENV="development", DJANGO_SETTINGS_MODULE="posture.settings")
    code = "from django.conf import settings; print(settings.SECRET_KEY, settings.ENCRYPTION_KEYS[0])"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=base, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(rc == 0 for _, rc in results), [err[-500:] for (_, err), rc in results if rc]
    assert len({out.strip() for (out, _), _ in results}) == 1
    assert not [p.name for p in (tmp_path / "var").iterdir() if p.name.startswith(".dev-keys")]  # no candidates left
    assert oct((tmp_path / "var" / "dev-keys.json").stat().st_mode & 0o777) == "0o600"

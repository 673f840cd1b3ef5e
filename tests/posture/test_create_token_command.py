"""manage.py create_token: a token for scripts and bootstrap, printed once, audited as the CLI's."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from posture.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db


def create_token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_prints_a_working_token_once(operator):
    out, err = create_token("olive", "--name", "backup job", "--expires-days", "7")
    token = out.strip()
    assert re.fullmatch(r"pst_[a-z0-9]{8}_[A-Za-z0-9]{40}", token)  # stdout holds the token and nothing else
    assert f"token {token[:12]} (backup job) for olive, expires " in err and "shown only now" in err
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/hosts/").status_code == 200
    event = AuditEvent.objects.get()
    assert (event.action, event.actor_label, event.actor) == ("token.created", "cli", None)
    assert event.detail["owner"] == "olive" and token not in str(event.detail)


@pytest.mark.parametrize("args, message", [
    (["nobody", "--name", "x"], "no user named 'nobody'"),
    (["otto", "--name", "x"], "otto has no posture role: add the account to the operator or auditor group"),
    (["olive", "--name", " "], "give the token a name"),
    (["olive", "--name", "x", "--expires-days", "0"], "between 1 and 3650 days (got 0)"),
])
def test_it_refuses_with_one_line_and_writes_nothing(operator, outsider, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        create_token(*args)
    assert not ApiToken.objects.exists() and not AuditEvent.objects.exists()

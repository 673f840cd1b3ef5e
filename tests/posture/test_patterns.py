"""Exception resource patterns: the stored regex says in SQL (PostgreSQL ``~``) exactly what
``fnmatch`` says in Python, including brackets, negation and regex metacharacters."""

from __future__ import annotations

import random
from datetime import timedelta
from fnmatch import fnmatchcase

import pytest
from django.db.models import F, Value
from django.db.models.fields import TextField
from django.utils import timezone

from posture.models import ControlException
from posture.patterns import pattern_matches, shell_pattern_regex

TRICKY = ["*", "?", "web-*", "web-?", "[ab]*", "[!a]*", "[!a-c]x", "[a-c]", "[]]", "[!]]", "[z-a]", "[", "a[",
          "*.log", "a+b", "(x)", "$HOME", "^start", "back\\slash", "a\\*", "[\\]", "a|b", "{a,b}", "x{2}", "[^a]",
          "[a-]", "[-a]", "*[0-9]", "**", "?*?", "a.b*", "[.]x", "[&&]", "tab\tname", "é*", "end$", "line\n"]
NAMES = ["", "a", "b", "x", "ab", "ba", "web-1", "web-12", "web-", "app.log", "applog", "a+b", "aab", "(x)", "x",
         "$HOME", "^start", "back\\slash", "a*", "a\\*", "\\", "]", "!", "a|b", "{a,b}", "xx", "^", "-", "a-",
         "5", "a9", "a.bc", "axbc", ".x", "&", "tab\tname", "étoile", "end$", "end", "line\n", "line", "cx", "dx"]


def test_it_matches_exactly_what_fnmatch_matches_in_python():
    rnd = random.Random(7)
    alphabet = "ab!-]^[*?\\.+($z\n&|é"
    patterns = TRICKY + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 7))) for _ in range(3000)]
    for pattern in patterns:
        for name in NAMES + ["".join(rnd.choice(alphabet.replace("*", "")) for _ in range(4)) for _ in range(5)]:
            assert pattern_matches(pattern, name) == fnmatchcase(name, pattern), (pattern, name)


def test_it_anchors_the_regex_and_matches_everything_for_an_empty_pattern():
    assert shell_pattern_regex("web") == r"(?s)\Aweb\Z"
    assert pattern_matches("", "anything") and pattern_matches("", "")
    assert not pattern_matches("web", "web\n") and not pattern_matches("web", "xweb")


@pytest.mark.django_db
def test_it_matches_in_postgresql_as_fnmatch_does(operator):
    expires = timezone.now() + timedelta(days=1)
    exceptions = {ControlException.objects.create(check_id="container.privileged_disabled", resource_pattern=p,
                                                  justification="x", expires_at=expires, proposed_by=operator).pk: p
                  for p in TRICKY}
    assert all(e.resource_regex == shell_pattern_regex(e.resource_pattern) for e in ControlException.objects.all())
    for name in NAMES:
        matched = set(ControlException.objects.annotate(name=Value(name, output_field=TextField()))
                      .filter(name__regex=F("resource_regex")).values_list("pk", flat=True))
        expected = {pk for pk, p in exceptions.items() if fnmatchcase(name, p)}
        assert matched == expected, name
        # ... and `matches` (what the read side applied in Python) agrees with both.
        assert {e.pk for e in ControlException.objects.all() if e.matches(None, e.check_id, name)} == expected


@pytest.mark.django_db
def test_it_rederives_the_regex_when_the_pattern_changes(operator):
    exc = ControlException.objects.create(check_id="c", resource_pattern="a*", justification="x",
                                          expires_at=timezone.now() + timedelta(days=1))
    exc.resource_pattern = "b?"
    exc.save(update_fields=["resource_pattern"])
    exc.refresh_from_db()
    assert exc.resource_regex == shell_pattern_regex("b?")

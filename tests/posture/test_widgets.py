"""FastSelect writes the markup Django's Select templates write, escaped the same way."""

from __future__ import annotations

import pytest
from django import forms
from django.utils.safestring import mark_safe

from posture.filtersets import FindingFilterSet
from posture.widgets import FastSelect

HOSTILE = '<img src=x onerror=alert(1)>"\'&'


@pytest.mark.parametrize(("choices", "value", "attrs"), [
    ([("", "---------"), ("a", "A"), ("b", "B")], "a", {"id": "id_x", "title": HOSTILE}),
    ([("", "any"), (HOSTILE, HOSTILE), (1, 2)], HOSTILE, {"id": "id_x", "required": True, "disabled": False}),
    ([("group", [("a", "A"), ("b", mark_safe("<b>B</b>"))]), ("c", "C")], "b", {}),
    ([(HOSTILE, [("a", "A")])], None, None),
    ([], None, {"placeholder": 5}),
])
def test_it_writes_what_djangos_select_template_writes(choices, value, attrs):
    expected = forms.Select(choices=choices).render(f"n{HOSTILE}", value, attrs)
    written = FastSelect(choices=choices).render(f"n{HOSTILE}", value, attrs)
    assert written == expected and "<img" not in written


@pytest.mark.django_db
def test_it_renders_the_findings_filters_check_choice():
    field = FindingFilterSet({"check": "container.privileged_disabled"}).form["check"]
    assert isinstance(field.field.widget, FastSelect)
    assert str(field) == forms.Select(choices=field.field.choices).render(
        "check", "container.privileged_disabled", {"id": "id_check", **field.field.widget.attrs})

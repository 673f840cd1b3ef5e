"""The cheap date filters print what Django's ``date`` filter prints."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

MOMENTS = [datetime(2026, 3, 9, 7, 5, 59, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, tzinfo=UTC), None, ""]


def render(source: str, value, zone: str) -> str:
    with timezone.override(zone):
        return Template("{% load posture_tags %}" + source).render(Context({"v": value}))


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
@pytest.mark.parametrize("value", MOMENTS)
def test_it_prints_moments_as_the_date_filter_does(zone, value):
    assert render('{{ v|minute|default:"–" }}', value, zone) == render('{{ v|date:"Y-m-d H:i"|default:"–" }}', value, zone)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
@pytest.mark.parametrize("value", [*MOMENTS, date(2026, 1, 2)])
def test_it_prints_days_as_the_date_filter_does(zone, value):
    assert render("{{ v|day }}", value, zone) == render('{{ v|date:"Y-m-d" }}', value, zone)

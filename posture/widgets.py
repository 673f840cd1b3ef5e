"""Form widgets of the filter forms, written in Python.

Django renders a ``<select>`` through a template and one included template per option: the
findings page's check filter offers every check of the catalog, and rendering its options
took half of that page's template time. ``FastSelect`` writes the very same markup (tests
compare it with Django's own rendering), escaping every label, value and attribute as the
templates do."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import conditional_escape, escape
from django.utils.safestring import SafeString, mark_safe


def _attrs(attrs: dict[str, Any]) -> str:
    """django/forms/widgets/attrs.html: `` name="value"``, a bare name for True, nothing for False."""
    return "".join(f" {conditional_escape(name)}" + ("" if value is True else f'="{escape(str(value))}"')
                   for name, value in attrs.items() if value is not False)


class FastSelect(forms.Select):
    """``forms.Select`` whose markup is written here rather than by template includes (the
    same text: django/forms/widgets/select.html and select_option.html)."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        out = [f'<select name="{conditional_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, group_choices, _index in widget["optgroups"]:
            if group_name:
                out.append(f'\n  <optgroup label="{conditional_escape(group_name)}">')
            for option in group_choices:
                value, label = escape(str(option["value"])), conditional_escape(option["label"])
                out.append(f'\n  <option value="{value}"{_attrs(option["attrs"])}>{label}</option>\n')
            if group_name:
                out.append("\n  </optgroup>")
        out.append("\n</select>")
        return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)

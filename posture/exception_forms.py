"""The forms of the exception and attestation pages: what a person typed, turned into the
arguments of ``posture.jobs.exceptions.propose`` / ``attest``.

The forms only parse (a check from the catalog, a host by name, a moment); every rule about
exceptions and attestations (justification required, expiry in the future, manual checks
only, file type and size) lives in the workflow the API also calls, and its messages are
shown beside the fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from posture.models import DockerHost
from scanners import registry

PATTERN_HELP = ("shell-style pattern on the container or image name (e.g. web-*); empty: every resource. "
                "Names are chosen by whoever starts the container: keep the pattern narrow and scoped to a host, "
                "or anyone who names a container to match inherits the exception.")


def _check_choices(*, manual_only: bool = False) -> list[tuple[str, str]]:
    specs = registry.manual_checks() if manual_only else registry.all_checks()
    return [("", "choose a check…")] + [(s.id, f"{s.id} — {s.title}") for s in sorted(specs, key=lambda s: s.id)]


class HostChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: DockerHost) -> str:
        return obj.name


def _host_field(help_text: str) -> HostChoiceField:
    return HostChoiceField(queryset=DockerHost.objects.filter(archived_at__isnull=True).order_by("name"),
                           required=False, empty_label="every host", help_text=help_text)


def _moment_field(label: str, help_text: str) -> forms.DateTimeField:
    return forms.DateTimeField(label=label, help_text=help_text,
                               input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
                               widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))


class WorkflowForm(forms.Form):
    def show(self, exc: ValidationError) -> None:
        """Put the workflow's messages on the form: by field when it named one, else above it."""
        if hasattr(exc, "error_dict"):
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields and field != NON_FIELD_ERRORS else None
                for message in messages:
                    self.add_error(target, message)
        else:
            for message in exc.messages:
                self.add_error(None, message)


class ProposeForm(WorkflowForm):
    check_id = forms.ChoiceField(label="Check", choices=())
    host = _host_field("the host it applies to; every host is a wide exception")
    resource_pattern = forms.CharField(label="Resource pattern", required=False, max_length=300, strip=False,
                                       help_text=PATTERN_HELP,
                                       widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False,
                                    help_text="why the risk is accepted, and what mitigates it")
    expires_at = _moment_field("Expires", "UTC; the exception stops applying then, by itself")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "propose_%s")  # the filter form above uses id_*
        super().__init__(*args, **kwargs)
        self.fields["check_id"].choices = _check_choices()

    def arguments(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"check_id": d["check_id"], "host": d.get("host"), "resource_pattern": d.get("resource_pattern", ""),
                "justification": d["justification"], "expires_at": d["expires_at"]}


class AttestForm(WorkflowForm):
    check_id = forms.ChoiceField(label="Manual check", choices=())
    host = _host_field("the host it covers; empty: every host")
    statement = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), strip=False,
                                help_text="what was verified, how, and by whom")
    valid_until = _moment_field("Valid until", "UTC; the check is manual again after this")
    file = forms.FileField(required=False, help_text="optional evidence: PDF, PNG, JPEG, plain text (.txt) or CSV")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "attest_%s")  # the filter form above uses id_*
        super().__init__(*args, **kwargs)
        self.fields["check_id"].choices = _check_choices(manual_only=True)

    def arguments(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {"check_id": d["check_id"], "host": d.get("host"), "statement": d["statement"],
                "valid_until": d["valid_until"], "file": d.get("file")}

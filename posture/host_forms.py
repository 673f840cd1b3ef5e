"""The host form of the dashboard: what a person typed, turned into the changes
``posture.jobs.hosts.save_host`` validates.

The form itself checks nothing about hosts (names, URLs, intervals, TLS): ``save_host`` is
the one validation, shared with the API, ``addhost`` and the admin, and its messages are
shown next to the fields. The form only turns the browser's input into values: TLS material
comes as three uploaded PEM files or pasted text (a file must be small UTF-8 text), and on an
existing host an empty TLS field keeps what is stored (the material is write-only: it is
never sent back to the browser)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from posture.jobs.hosts import HOST_FIELDS, TLS_FIELDS, messages_of
from posture.models import DockerHost
from posture.models.hosts import INTERVAL_RULE, NAME_RULE, default_interval

#: A PEM certificate chain or key is a few kB; anything this large is not one.
PEM_MAX_BYTES = 64 * 1024
TLS_LABELS = {"tls_ca": "CA certificate", "tls_cert": "client certificate", "tls_key": "client key"}


def _pem_area(label: str) -> forms.CharField:
    return forms.CharField(label=f"{label} (paste)", required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off",
                                                        "placeholder": "-----BEGIN …-----"}))


class HostForm(forms.Form):
    """Every field is a plain value: the rules live in ``save_host``."""

    name = forms.CharField(required=False, strip=False, help_text=NAME_RULE,
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    url = forms.CharField(label="Docker URL", required=False, strip=False,
                          help_text="unix:///var/run/docker.sock, tcp://host:2376 (with TLS) or ssh://user@host",
                          widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false",
                                                        "inputmode": "url"}))
    tls_ca_file = forms.FileField(label="CA certificate (file)", required=False)
    tls_ca = _pem_area("CA certificate")
    tls_cert_file = forms.FileField(label="Client certificate (file)", required=False)
    tls_cert = _pem_area("Client certificate")
    tls_key_file = forms.FileField(label="Client key (file)", required=False)
    tls_key = _pem_area("Client key")
    tls_clear = forms.BooleanField(label="Remove the stored TLS material", required=False)
    probe_enabled = forms.BooleanField(label="Run the host probe", required=False,
                                       help_text="a read-only container that records Docker's files on the host "
                                                 "(CIS section 3)")
    scan_interval_minutes = forms.CharField(label="Scan every (minutes)", required=False, strip=False,
                                            help_text=INTERVAL_RULE,
                                            widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    enabled = forms.BooleanField(label="Enabled (scanned on schedule)", required=False)

    def __init__(self, *args: Any, host: DockerHost | None = None, **kwargs: Any) -> None:
        self.host = host if host is not None and host.pk else None
        if self.host is not None:
            kwargs.setdefault("initial", {f: getattr(self.host, f) for f in HOST_FIELDS if f not in TLS_FIELDS})
        else:
            kwargs.setdefault("initial", {"scan_interval_minutes": default_interval(), "enabled": True})
        super().__init__(*args, **kwargs)
        if self.host is None:
            del self.fields["tls_clear"]
        for field in TLS_FIELDS:
            if self.host is not None and getattr(self.host, field):
                self.fields[field].help_text = "stored (encrypted); leave empty to keep it"

    # --- turning input into values -------------------------------------------------------
    def _pem(self, field: str) -> str:
        """The PEM text of one TLS field: its file or its pasted text, never both."""
        label = TLS_LABELS[field]
        upload = self.cleaned_data.get(f"{field}_file")
        pasted = self.cleaned_data.get(field) or ""
        if upload is None:
            return pasted
        if pasted.strip():
            raise ValidationError(f"give the {label} as a file or pasted, not both")
        if upload.size > PEM_MAX_BYTES:
            raise ValidationError(f"the {label} file is {upload.size} bytes: a PEM file is at most "
                                  f"{PEM_MAX_BYTES // 1024} KiB")
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError(f"the {label} file is not PEM text (a DER or binary file?)") from None

    def changes(self) -> dict[str, Any]:
        """The changes to hand to ``save_host`` (call after ``is_valid()``). Problems the
        form itself finds (a file that is not text) are added to the form and raise
        ValidationError."""
        data = self.cleaned_data
        interval = data.get("scan_interval_minutes", "")
        changes: dict[str, Any] = {
            "name": data.get("name", ""),
            "url": data.get("url", ""),
            "probe_enabled": bool(data.get("probe_enabled")),
            # A number when it is one; otherwise the text, which save_host refuses with its rule.
            "scan_interval_minutes": int(interval) if interval.strip().isdigit() and len(interval) < 12 else interval,
            "enabled": bool(data.get("enabled")),
        }
        problems: dict[str, list[str]] = {}
        if data.get("tls_clear"):
            changes.update({f: "" for f in TLS_FIELDS})
        else:
            for field in TLS_FIELDS:
                try:
                    pem = self._pem(field)
                except ValidationError as exc:
                    problems[field] = exc.messages
                    continue
                if pem or self.host is None:
                    changes[field] = pem
        if problems:
            self.show(ValidationError(problems))
            raise ValidationError(problems)
        return changes

    def tls_for_test(self, changes: dict[str, Any]) -> dict[str, str | None]:
        """The TLS material a connection test uses: what was given, else what is stored."""
        out: dict[str, str | None] = {}
        for field in TLS_FIELDS:
            value = changes.get(field)
            if value is None and self.host is not None:
                value = getattr(self.host, field)
            out[field] = value or None
        return out

    def show(self, exc: ValidationError) -> None:
        """Put ``save_host``'s messages next to their fields (non-field ones above the form)."""
        for field, messages in messages_of(exc).items():
            target = None if field == NON_FIELD_ERRORS or field not in self.fields else field
            if target in TLS_FIELDS and self.errors.get(target):
                continue
            for message in messages:
                self.add_error(target, message)

"""The report request form of the Reports page, and the presets an Export button passes to it.

The form only parses what a person chose (a framework, a period in whole UTC days, a scope of
hosts, a kind) into the arguments of ``posture.jobs.reports.request_report``, the one way to
ask for a report (the API calls it too); the job's own refusals are shown above the form.

The kinds offered are ``ReportKind``'s, less those no renderer handles yet (PDF until
``posture/reports/pdf.py`` exists): a new kind appears here when it lands, without a change."""

from __future__ import annotations

import importlib.util
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from posture.filtersets import parse_moment
from posture.models import ReportKind
from posture.queries import reports as queries
from posture.reports import csv as exports

#: Quick picks for the period (days up to today), and the default.
PERIOD_DAYS = (30, 90, 365)
DEFAULT_DAYS = 90
DEFAULT_FRAMEWORK = "cis-docker-1.8.0"
ALL, CHOSEN = "all", "chosen"
#: What an Export button or a shared link may preset (GET /reports/new/?...).
PRESETS = ("framework", "host", "at", "start", "end", "days", "kind", "csv_kind")
DATE_FORMAT = "%Y-%m-%d"


#: What each kind holds, shown beside its choice.
KIND_HELP = {
    ReportKind.CSV: "one CSV export (choose which below): UTF-8, one row per item, formula cells neutralised",
    ReportKind.ZIP: "the PDF report and every CSV, with manifest.json: the sha256 of each file and each host's chain head, "
                    "checkable offline with sha256sum and against posture",
    ReportKind.PDF: "the auditor's report: scope, method, summary and trend, operating effectiveness per control, "
                    "the population of scans, the evidence manifest",
}


def renderable(kind: str) -> bool:
    """Whether a worker can render ``kind`` today (PDF needs its renderer module)."""
    if kind == ReportKind.PDF:
        return importlib.util.find_spec("posture.reports.pdf") is not None
    return True


def kind_choices() -> list[tuple[str, str]]:
    return [(k.value, k.label) for k in ReportKind if renderable(k)]


def csv_choices() -> list[tuple[str, str]]:
    return [("", "choose one…")] + [(k.name, f"{k.filename}: {k.about}") for k in exports.KINDS.values()]


def today() -> date:
    return timezone.localdate()


def _date_field(label: str, help_text: str) -> forms.DateField:
    return forms.DateField(label=label, help_text=help_text, input_formats=[DATE_FORMAT],
                           error_messages={"invalid": "give a date as YYYY-MM-DD", "required": "give a date"},
                           widget=forms.DateInput(attrs={"type": "date"}, format=DATE_FORMAT))


class ReportRequestForm(forms.Form):
    framework = forms.ChoiceField(label="Framework", choices=())
    start = _date_field("From", "the first day of the period (UTC), included")
    end = _date_field("To", "the last day of the period (UTC), included; today ends now")
    scope = forms.ChoiceField(label="Hosts", choices=[(ALL, "Every host of the period"), (CHOSEN, "Only these hosts")],
                              initial=ALL, widget=forms.RadioSelect)
    hosts = forms.MultipleChoiceField(label="Hosts in scope", required=False, choices=(),
                                      widget=forms.CheckboxSelectMultiple)
    kind = forms.ChoiceField(label="Kind", choices=(), initial=ReportKind.ZIP, widget=forms.RadioSelect)
    csv_kind = forms.ChoiceField(label="Which CSV", required=False, choices=(),
                                 help_text="a CSV report holds one of these; an evidence package holds them all")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        frameworks = queries.frameworks()
        known = ", ".join(slug for slug, _ in frameworks) or "none (run manage.py load_catalog)"
        self.fields["framework"].choices = frameworks
        self.fields["framework"].error_messages["invalid_choice"] = f"unknown framework '%(value)s'; known: {known}"
        self.hosts = queries.scope_hosts()
        self.fields["hosts"].choices = [(h.name, f"{h.name} (archived)" if h.archived else h.name) for h in self.hosts]
        self.fields["hosts"].error_messages["invalid_choice"] = "no host named '%(value)s'"
        self.fields["kind"].choices = kind_choices()
        self.fields["kind"].error_messages["invalid_choice"] = (
            f"'%(value)s' is not a kind of report posture renders; choose one of: "
            f"{', '.join(k for k, _ in kind_choices())}")
        self.fields["csv_kind"].choices = csv_choices()
        self.fields["csv_kind"].error_messages["invalid_choice"] = (
            f"'%(value)s' is not one of the CSV exports: {', '.join(exports.KINDS)}")

    def kind_options(self) -> list[tuple[Any, str]]:
        """(radio, what that kind holds) for the template."""
        return [(radio, KIND_HELP.get(radio.data["value"], "")) for radio in self["kind"]]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if start > end:
                self.add_error("end", f"the period must start before it ends: {start:%Y-%m-%d} is after "
                                      f"{end:%Y-%m-%d}")
            elif end > today():
                self.add_error("end", f"{end:%Y-%m-%d} is in the future: posture only knows the past and today "
                                      f"({today():%Y-%m-%d})")
        if data.get("scope") == CHOSEN and not data.get("hosts") and "hosts" not in self.errors:
            self.add_error("hosts", "tick at least one host, or choose every host of the period")
        if data.get("kind") == ReportKind.CSV and not data.get("csv_kind") and "csv_kind" not in self.errors:
            self.add_error("csv_kind", "a CSV report holds one export: choose which")
        return data

    def period(self) -> tuple[datetime, datetime]:
        """[start day 00:00, the day after the end day 00:00) in the server's time zone (UTC),
        the end capped at now so that the period recorded is the one rendered."""
        d = self.cleaned_data
        tz = timezone.get_current_timezone()
        start = datetime.combine(d["start"], time.min, tz)
        end = datetime.combine(d["end"] + timedelta(days=1), time.min, tz)
        return start, min(end, timezone.now())

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``request_report`` (besides the user)."""
        d = self.cleaned_data
        start, end = self.period()
        return {"kind": d["kind"], "framework": d["framework"], "start": start, "end": end,
                "hosts": list(d["hosts"]) if d["scope"] == CHOSEN else None,
                "csv_kind": d["csv_kind"] if d["kind"] == ReportKind.CSV else ""}


def presets(params: QueryDict) -> tuple[dict[str, Any], list[str]]:
    """The form's initial values from an Export button's link (``framework``, ``host`` (name
    or id, repeatable), ``at`` (the page's as-of: the period ends that day), ``start``/``end``
    (YYYY-MM-DD), ``days`` (30, 90 or 365 up to the end), ``kind``, ``csv_kind``) and the
    problems with them, one line each. Defaults: the last 90 days up to today, every host,
    an evidence package, CIS Docker 1.8.0 (when loaded)."""
    problems: list[str] = []
    initial: dict[str, Any] = {"scope": ALL, "kind": ReportKind.ZIP}
    for name in sorted(set(params) - set(PRESETS)):
        problems.append(f"{name[:40]}: unknown parameter; accepted: {', '.join(PRESETS)}")
    frameworks = [slug for slug, _ in queries.frameworks()]
    framework = params.get("framework") or ""
    if framework and framework not in frameworks:
        problems.append(f"framework: unknown framework {framework[:100]!r}; known: {', '.join(frameworks)}")
    initial["framework"] = framework if framework in frameworks else (
        DEFAULT_FRAMEWORK if DEFAULT_FRAMEWORK in frameworks else (frameworks or [""])[0])

    end = today()
    if params.get("at"):
        try:
            end = min(timezone.localdate(parse_moment(params["at"])), end)
        except forms.ValidationError as exc:
            problems.append(f"at: {' '.join(exc.messages)}")
    end = _preset_date(params, "end", problems) or end
    days = params.get("days") or ""
    if days and days not in {str(d) for d in PERIOD_DAYS}:
        problems.append(f"days: {days[:20]!r} is not one of the quick picks: {', '.join(map(str, PERIOD_DAYS))}")
    span = int(days) if days.isdigit() and int(days) in PERIOD_DAYS else DEFAULT_DAYS
    initial["end"] = end
    initial["start"] = _preset_date(params, "start", problems) or end - timedelta(days=span - 1)

    found, unknown = queries.host_names(params.getlist("host"))
    for value in unknown:
        problems.append(f"host: no host {value[:100]!r} (give its name or id)")
    if found:
        initial.update(scope=CHOSEN, hosts=sorted(set(found.values())))
    kinds = [k for k, _ in kind_choices()]
    if params.get("kind"):
        if params["kind"] in kinds:
            initial["kind"] = params["kind"]
        else:
            problems.append(f"kind: {params['kind'][:20]!r} is not one of: {', '.join(kinds)}")
    if params.get("csv_kind"):
        if params["csv_kind"] in exports.KINDS:
            initial["csv_kind"] = params["csv_kind"]
        else:
            problems.append(f"csv_kind: {params['csv_kind'][:20]!r} is not one of: {', '.join(exports.KINDS)}")
    return initial, problems


def _preset_date(params, name: str, problems: list[str]) -> date | None:
    raw = params.get(name) or ""
    if not raw:
        return None
    try:
        return datetime.strptime(raw, DATE_FORMAT).date()
    except ValueError:
        problems.append(f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD)")
        return None

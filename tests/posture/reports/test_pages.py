"""The Reports page (posture/report_views.py): the listing with state, progress, sha256,
Download and Verify; the request form (presets from Export links, refusals beside the fields
with nothing queued); the authenticated download; verification; and which role may do what
(the reports API's rules: every posture role, never an account without one)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from posture.jobs.reports import render_report
from posture.models import AuditEvent, DockerHost, Report, ReportState
from posture.report_forms import renderable
from tests.posture.reports.conftest import CIS, PAYLOADS

pytestmark = pytest.mark.django_db

UTC = timezone.get_current_timezone()


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored(user, period, **fields) -> Report:
    """A report requested by ``user`` over the seeded period and rendered (as a worker would)."""
    report = Report.objects.create(kind=fields.pop("kind", "csv"), csv_kind=fields.pop("csv_kind", "findings"),
                                   framework=CIS, period_start=period["start"], period_end=period["end"],
                                   hosts=fields.pop("hosts", ["audit1"]), requested_by=user)
    render_report(report.pk)
    report.refresh_from_db()
    assert report.state == ReportState.SUCCEEDED, report.error
    return report


def form_data(**fields) -> dict:
    today = timezone.localdate()
    return {"framework": CIS, "start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat(),
            "scope": "all", "kind": "zip", "csv_kind": "", **fields}


# --- listing ---------------------------------------------------------------------------------

def test_it_lists_each_report_with_its_state_progress_digest_and_file_actions(auditor, operator, period, media):
    done = stored(operator, period)
    running = Report.objects.create(kind="zip", framework=CIS, period_start=period["start"],
                                    period_end=period["end"], state=ReportState.RUNNING, progress=42,
                                    progress_note="windows.csv: 2000 rows", requested_by=auditor)
    failed = Report.objects.create(kind="zip", framework="soc2-2017", period_start=period["start"],
                                   period_end=period["end"], hosts=None, state=ReportState.FAILED,
                                   error="OperationalError: the database went away", requested_by=auditor)
    body = as_user(auditor).get("/reports/").content.decode()
    row = {r.pk: body.split(f'id="report-{r.pk}"')[1].split("</tr>")[0] for r in (done, running, failed)}
    assert f'title="{done.sha256}">{done.sha256[:12]}…' in row[done.pk]
    assert f'href="/reports/{done.pk}/download/"' in row[done.pk] and "state-succeeded" in row[done.pk]
    assert "2026-03-02 – 2026-03-10" in row[done.pk] and "audit1" in row[done.pk] and "olive" in row[done.pk]
    assert 'value="42"' in row[running.pk] and "windows.csv: 2000 rows" in row[running.pk]
    assert f'href="/reports/{running.pk}/download/" hidden' in row[running.pk]
    assert "state-failed" in row[failed.pk] and "OperationalError: the database went away" in row[failed.pk]
    assert "every host" in row[failed.pk]
    assert body.index(f'id="report-{failed.pk}"') < body.index(f'id="report-{done.pk}"')  # newest first


def test_it_filters_reports_and_refuses_an_unknown_filter(auditor, period):
    for kind, framework in (("csv", CIS), ("zip", CIS), ("zip", "soc2-2017")):
        Report.objects.create(kind=kind, csv_kind="scans" if kind == "csv" else "", framework=framework,
                              period_start=period["start"], period_end=period["end"])
    client = as_user(auditor)
    assert client.get("/reports/", {"kind": "zip"}).context["page"].paginator.count == 2
    assert client.get("/reports/", {"kind": "zip", "framework": "soc2-2017"}).context["page"].paginator.count == 1
    bad = client.get("/reports/", {"state": "done"})
    assert bad.status_code == 400 and "is not one of the valid choices: queued, running" in bad.content.decode()
    typo = client.get("/reports/", {"knd": "zip"})
    assert typo.status_code == 400 and "unknown parameter; accepted:" in typo.content.decode()


def test_it_pages_the_list_in_queries_that_do_not_grow_with_reports(auditor, period):
    def add(n):
        Report.objects.bulk_create(Report(kind="zip", framework=CIS, period_start=period["start"],
                                          period_end=period["end"], requested_by=auditor) for _ in range(n))
    client = as_user(auditor)
    add(3)
    with CaptureQueriesContext(connection) as few:
        client.get("/reports/")
    add(70)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/reports/", {"page": 2})
    assert len(many) == len(few), [q["sql"] for q in many]
    assert response.context["page"].paginator.count == 73 and len(response.context["rows"]) == 23


# --- the request form ------------------------------------------------------------------------

def test_it_presets_the_form_from_an_export_link(auditor, period):
    host = period["host"]
    response = as_user(auditor).get("/reports/new/", {"framework": "soc2-2017", "host": str(host.pk),
                                                      "at": "2026-03-05T12:00:00Z"})
    assert response.status_code == 200
    initial = response.context["form"].initial
    assert (initial["framework"], initial["scope"], initial["hosts"]) == ("soc2-2017", "chosen", ["audit1"])
    assert (initial["start"].isoformat(), initial["end"].isoformat()) == ("2025-12-06", "2026-03-05")
    body = response.content.decode()
    assert 'value="2026-03-05"' in body and 'value="audit1" id="id_hosts_0" checked' in body


def test_it_defaults_to_the_last_90_days_of_every_host_and_offers_quick_picks(auditor, period):
    client = as_user(auditor)
    initial = client.get("/reports/new/").context["form"].initial
    today = timezone.localdate()
    assert (initial["end"], initial["start"], initial["scope"]) == (today, today - timedelta(days=89), "all")
    assert initial["framework"] == CIS
    picked = client.get("/reports/new/", {"days": "365"}).context["form"].initial
    assert picked["start"] == today - timedelta(days=364)
    assert 'href="?days=30"' in client.get("/reports/new/").content.decode()


def test_it_names_presets_it_cannot_use_and_shows_the_defaults(auditor, period):
    response = as_user(auditor).get("/reports/new/", {"framework": "nope", "host": "ghost", "at": "yesterday",
                                                      "colour": "red"})
    assert response.status_code == 400
    body = response.content.decode()
    for text in ("unknown framework &#x27;nope&#x27;", "no host &#x27;ghost&#x27;", "not a valid ISO 8601",
                 "colour: unknown parameter"):
        assert text in body, text
    assert response.context["form"].initial["framework"] == CIS


def test_it_queues_the_report_asked_for_and_follows_it_on_the_reports_page(auditor, period,
                                                                          django_capture_on_commit_callbacks):
    client = as_user(auditor)
    with django_capture_on_commit_callbacks() as sent:
        response = client.post("/reports/new/", form_data(kind="csv", csv_kind="windows", scope="chosen",
                                                          hosts=["audit1"], start="2026-03-02", end="2026-03-09"))
    report = Report.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/reports/#report-{report.pk}"
    assert len(sent) == 1  # render_report is sent once the row is committed
    assert (report.kind, report.csv_kind, report.framework, report.hosts) == ("csv", "windows", CIS, ["audit1"])
    assert report.period_start == datetime(2026, 3, 2, tzinfo=UTC)
    assert report.period_end == datetime(2026, 3, 10, tzinfo=UTC)  # the end day included
    assert report.requested_by == auditor and AuditEvent.objects.filter(action="report.requested").count() == 1
    page = client.get(response["Location"]).content.decode()
    assert f"Report #{report.pk} queued" in page and f'id="report-{report.pk}" data-report' in page


def test_a_period_ending_today_ends_now(auditor, period):
    before = timezone.now()
    as_user(auditor).post("/reports/new/", form_data())
    report = Report.objects.get()
    assert before <= report.period_end <= timezone.now()
    assert report.hosts is None and report.csv_kind == ""


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"start": "2026-03-09", "end": "2026-03-02"}, "end", "the period must start before it ends: 2026-03-09 is after"),
    ({"end": "2999-01-01"}, "end", "2999-01-01 is in the future"),
    ({"start": "03/02/2026"}, "start", "give a date as YYYY-MM-DD"),
    ({"framework": "nope"}, "framework", "unknown framework 'nope'; known: cis-docker-1.6.0, cis-docker-1.8.0"),
    ({"scope": "chosen", "hosts": ["audit1", "ghost"]}, "hosts", "no host named 'ghost'"),
    ({"scope": "chosen"}, "hosts", "tick at least one host"),
    ({"kind": "csv"}, "csv_kind", "a CSV report holds one export: choose which"),
    ({"kind": "csv", "csv_kind": "passwords"}, "csv_kind", "'passwords' is not one of the CSV exports"),
    ({"kind": "docx"}, "kind", "'docx' is not a kind of report posture renders"),
])
def test_it_refuses_a_bad_request_beside_the_field_and_queues_nothing(auditor, period, fields, field, message):
    response = as_user(auditor).post("/reports/new/", form_data(**fields))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in e for e in errors[field]), errors
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert not Report.objects.exists() and not AuditEvent.objects.filter(action="report.requested").exists()


def test_it_offers_pdf_only_once_a_renderer_exists(auditor, period):
    kinds = [value for value, _ in as_user(auditor).get("/reports/new/").context["form"].fields["kind"].choices]
    assert ("pdf" in kinds) == renderable("pdf") and {"csv", "zip"} <= set(kinds)


# --- download and verification ---------------------------------------------------------------

def test_it_downloads_the_file_as_an_attachment_through_the_authenticated_view(auditor, operator, period, media):
    report = stored(operator, period)
    response = as_user(auditor).get(f"/reports/{report.pk}/download/")
    data = b"".join(response.streaming_content)
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="report-{report.pk}-{CIS}-csv-findings.csv"'
    assert response["Cache-Control"] == "private, no-store" and response["X-Content-Type-Options"] == "nosniff"
    assert hashlib.sha256(data).hexdigest() == report.sha256 and ("'" + PAYLOADS[0]).encode() in data
    package = stored(operator, period, kind="zip", csv_kind="")
    zipped = as_user(auditor).get(f"/reports/{package.pk}/download/")
    assert zipped["Content-Type"] == "application/zip" and b"".join(zipped.streaming_content)[:2] == b"PK"
    assert Client().get(f"/reports/{report.pk}/download/")["Location"].startswith("/login/")
    assert as_user(auditor).get(f"/media/{report.file.name}").status_code == 404  # MEDIA_ROOT has no URL


def test_it_says_when_a_report_cannot_be_downloaded_yet_or_its_file_is_gone(auditor, operator, period, media):
    queued = Report.objects.create(kind="zip", framework=CIS, period_start=period["start"], period_end=period["end"])
    client = as_user(auditor)
    response = client.get(f"/reports/{queued.pk}/download/", follow=True)
    assert f"Report #{queued.pk} is queued: it can be downloaded once it has succeeded." in response.content.decode()
    report = stored(operator, period)
    (media / report.file.name).unlink()
    assert client.get(f"/reports/{report.pk}/download/").status_code == 404
    assert client.get("/reports/999999/download/").status_code == 404


def test_it_verifies_a_file_and_names_a_tampered_one(auditor, operator, period, media):
    report = stored(operator, period)
    client = as_user(auditor)
    ok = client.post(f"/reports/{report.pk}/verify/", HTTP_ACCEPT="application/json").json()
    assert ok == {"id": report.pk, "ok": True, "problem": "", "label": "verified"}
    with open(media / report.file.name, "ab") as handle:
        handle.write(b"=1+1\r\n")
    page = client.post(f"/reports/{report.pk}/verify/", follow=True).content.decode()
    assert f"Report #{report.pk} is tampered: report #{report.pk}: file" in page and "the file was altered" in page
    row = page.split(f'id="report-{report.pk}"')[1].split("</tr>")[0]
    assert "state-tampered" in row and "by audrey" in row  # the last verification stays on the row
    events = AuditEvent.objects.filter(action="report.verified", target=f"report #{report.pk}").order_by("id")
    assert [e.detail["ok"] for e in events] == [True, False] and events[1].actor == auditor


def test_it_refuses_to_verify_a_report_without_a_file(auditor, period):
    failed = Report.objects.create(kind="zip", framework=CIS, period_start=period["start"],
                                   period_end=period["end"], state=ReportState.FAILED, error="boom")
    response = as_user(auditor).post(f"/reports/{failed.pk}/verify/", HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and "only a succeeded report has a file" in response.json()["error"]
    assert not AuditEvent.objects.filter(action="report.verified").exists()


def test_it_answers_a_reports_state_as_json_for_the_live_row(auditor, operator, period, media):
    queued = Report.objects.create(kind="zip", framework=CIS, period_start=period["start"], period_end=period["end"])
    client = as_user(auditor)
    body = client.get(f"/reports/{queued.pk}/status/").json()["report"]
    assert (body["state"], body["finished"], body["download_url"]) == ("queued", False, None)
    done = stored(operator, period)
    response = client.get(f"/reports/{done.pk}/status/")
    body = response.json()["report"]
    assert (body["state"], body["finished"], body["progress"]) == ("succeeded", True, 100)
    assert body["download_url"] == f"/reports/{done.pk}/download/" and body["sha256"] == done.sha256
    assert "no-cache" in response["Cache-Control"]


# --- roles -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "operator", "auditor", "outsider", "anonymous"])
def test_every_posture_role_may_list_request_download_and_verify_reports(personas, role, period, media):
    """As the API's rules: ("report", "create") and reads need any role; no role is 403."""
    report = stored(personas["admin"], period)
    client = Client()
    if role != "anonymous":
        client.force_login(personas[role])
    calls = {
        "list": client.get("/reports/"),
        "form": client.get("/reports/new/"),
        "request": client.post("/reports/new/", form_data()),
        "status": client.get(f"/reports/{report.pk}/status/"),
        "download": client.get(f"/reports/{report.pk}/download/"),
        "verify": client.post(f"/reports/{report.pk}/verify/"),
    }
    expected = {"list": 200, "form": 200, "request": 302, "status": 200, "download": 200, "verify": 302}
    for name, response in calls.items():
        if role == "anonymous":
            assert response.status_code == 302 and response["Location"].startswith("/login/"), name
        elif role == "outsider":
            assert response.status_code == 403, name
        else:
            assert response.status_code == expected[name], (name, response.status_code)
    assert Report.objects.count() == (2 if role in ("admin", "operator", "auditor") else 1)
    nav = as_user(personas["auditor"]).get("/").content.decode()
    assert '<a href="/reports/">Reports</a>' in nav


# --- the Export buttons ----------------------------------------------------------------------

def test_the_export_buttons_preset_the_form_from_their_page(auditor, period):
    host = period["host"]
    client = as_user(auditor)
    overview = client.get("/", {"at": "2026-03-05T12:00:00+00:00"}).content.decode()
    assert 'class="btn export-btn" href="/reports/new/?at=2026-03-05T12%3A00%3A00%2B00%3A00"' in overview
    control = client.get(f"/controls/{CIS}/5.5/").content.decode()
    assert f'class="btn export-btn" href="/reports/new/?framework={CIS}"' in control
    findings = client.get("/findings/", {"framework": "soc2-2017", "host": host.name, "status": "fail"}).content.decode()
    assert 'class="btn export-btn" href="/reports/new/?framework=soc2-2017&amp;host=audit1"' in findings
    preset = client.get("/reports/new/?framework=soc2-2017&host=audit1").context["form"].initial
    assert (preset["framework"], preset["hosts"]) == ("soc2-2017", ["audit1"])
    assert DockerHost.objects.count() == 1

"""The host pages: every page x role, the form through save_host (bad input saves nothing),
archive/unarchive, "Scan now" and its JSON status, CSRF on every form, hostile strings escaped."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from posture import control_views
from posture.choices import ScanState, Trigger
from posture.jobs.evaluate import evaluate_scan
from posture.jobs.hosts import save_host
from posture.models import AuditEvent, DockerHost, ScanRun
from posture.models.hosts import INTERVAL_RULE, NAME_RULE
from posture.overview_views import percent
from posture.queries.rollups import host_rollups
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT, stored_scan
from tests.support.certs import make_bundle

pytestmark = pytest.mark.django_db
HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def host() -> DockerHost:
    return DockerHost.objects.create(name="web-1", url="unix:///var/run/docker.sock", scan_interval_minutes=60)


def login(client: Client, user: User | None) -> Client:
    if user is not None:
        client.force_login(user)
    return client


def form_data(**overrides) -> dict:
    return {"name": "web-2", "url": "unix:///var/run/docker.sock", "scan_interval_minutes": "60",
            "enabled": "on", "action": "save", **overrides}


# --- page x role ------------------------------------------------------------------------------

READ_PAGES = ["/hosts/", "/hosts/{pk}/", "/hosts/{pk}/scan-status/"]
WRITE_PAGES = ["/hosts/new/", "/hosts/{pk}/edit/"]
POSTS = ["/hosts/new/", "/hosts/{pk}/edit/", "/hosts/{pk}/archive/", "/hosts/{pk}/unarchive/", "/hosts/{pk}/scan/"]


@pytest.mark.parametrize("path", READ_PAGES + WRITE_PAGES)
def test_it_sends_anonymous_visitors_to_the_login_page(client, host, path):
    response = client.get(path.format(pk=host.pk))
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("path", POSTS)
def test_it_sends_anonymous_posts_to_the_login_page_and_changes_nothing(client, host, path):
    response = client.post(path.format(pk=host.pk), form_data())
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert DockerHost.objects.count() == 1 and not ScanRun.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("path", READ_PAGES + WRITE_PAGES + POSTS)
def test_it_refuses_accounts_without_a_role(client, outsider, host, path):
    login(client, outsider)
    url = path.format(pk=host.pk)
    response = client.post(url, form_data()) if path in POSTS and path not in WRITE_PAGES else client.get(url)
    assert response.status_code == 403
    assert "no posture role" in response.content.decode()


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
@pytest.mark.parametrize("path", READ_PAGES)
def test_it_lets_every_role_read(client, personas, host, role, path):
    login(client, personas[role])
    assert client.get(path.format(pk=host.pk)).status_code == 200


@pytest.mark.parametrize("role", ["operator", "admin"])
@pytest.mark.parametrize("path", WRITE_PAGES)
def test_it_lets_operators_and_admins_open_the_forms(client, personas, host, role, path):
    login(client, personas[role])
    assert client.get(path.format(pk=host.pk)).status_code == 200


@pytest.mark.parametrize("path", WRITE_PAGES)
def test_it_refuses_the_forms_to_an_auditor(client, auditor, host, path):
    login(client, auditor)
    response = client.get(path.format(pk=host.pk))
    assert response.status_code == 403
    assert "the auditor role is read-only: changing hosts needs the operator or admin role" in response.content.decode()


@pytest.mark.parametrize("path", POSTS)
def test_it_refuses_an_auditors_posts_and_changes_nothing(client, auditor, host, path):
    login(client, auditor)
    before = DockerHost.objects.values().get(pk=host.pk)
    assert client.post(path.format(pk=host.pk), form_data(name="web-1")).status_code == 403
    assert DockerHost.objects.values().get(pk=host.pk) == before and DockerHost.objects.count() == 1
    assert not ScanRun.objects.exists() and not AuditEvent.objects.exists()


def test_it_shows_no_write_buttons_to_an_auditor(client, auditor, host):
    login(client, auditor)
    pages = [client.get("/hosts/"), client.get(f"/hosts/{host.pk}/")]
    assert [p.status_code for p in pages] == [200, 200]
    for body in (p.content.decode() for p in pages):
        assert "web-1" in body
        assert ">Add host<" not in body and ">Scan now<" not in body and ">Archive<" not in body
        assert f"/hosts/{host.pk}/edit/" not in body and "<form method=\"post\" action=\"/hosts/" not in body


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_it_shows_the_write_buttons_to_operators_and_admins(client, personas, host, role):
    login(client, personas[role])
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    assert ">Scan now<" in body and ">Archive<" in body and f"/hosts/{host.pk}/edit/" in body
    assert ">Add host<" in client.get("/hosts/").content.decode()


@pytest.mark.parametrize("path", POSTS)
def test_it_refuses_a_post_without_a_csrf_token(operator, host, path):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(path.format(pk=host.pk), form_data())
    assert response.status_code == 403 and "CSRF" in response.content.decode()
    assert DockerHost.objects.count() == 1 and not ScanRun.objects.exists() and not AuditEvent.objects.exists()


def test_it_puts_a_csrf_token_in_every_form(client, operator, host):
    login(client, operator)
    for path in ("/hosts/new/", f"/hosts/{host.pk}/edit/", f"/hosts/{host.pk}/"):
        response = client.get(path)
        body = response.content.decode()
        assert response.status_code == 200 and 'method="post"' in body, path
        assert body.count('method="post"') == body.count('name="csrfmiddlewaretoken"'), path


# --- the list ---------------------------------------------------------------------------------

def test_it_lists_hosts_with_state_latest_scan_next_scan_overdue_and_last_failure(client, auditor, host):
    now = timezone.now()
    ok = stored_scan(host, SNAPSHOT, counts={"images": 4, "containers": 8})
    ScanRun.objects.filter(pk=ok.pk).update(finished_at=now - timedelta(hours=3))  # interval 60 min: overdue
    failed = ScanRun.objects.create(host=host, state=ScanState.FAILED, finished_at=now,
                                    error="connection refused at unix:///var/run/docker.sock")
    DockerHost.objects.create(name="off-1", url="unix:///x.sock", enabled=False)
    login(client, auditor)
    rows = client.get("/hosts/").content.decode().split("<tbody>")[1].split("</tr>")
    off, web = rows[0], rows[1]  # by name
    assert "web-1" in web and f"#{failed.pk}" in web and "state-failed" in web and "connection refused" in web
    assert "state-overdue" in web and "4 images, 8 containers" in web
    assert "off-1" in off and "state-disabled" in off and "not scheduled" in off and "state-overdue" not in off


def test_it_does_not_flag_a_recently_scanned_host_as_overdue(client, auditor, host):
    stored_scan(host, SNAPSHOT)
    login(client, auditor)
    body = client.get("/hosts/").content.decode()
    assert "web-1" in body and "state-enabled" in body and "state-overdue" not in body


def test_it_hides_archived_hosts_unless_asked(client, auditor, host):
    archived = DockerHost.objects.create(name="old-1", url="unix:///x.sock", enabled=False, archived_at=timezone.now())
    login(client, auditor)
    assert archived.name not in client.get("/hosts/").content.decode()
    body = client.get("/hosts/?archived=true").content.decode()
    assert archived.name in body and "state-archived" in body and host.name not in body


def test_it_answers_a_bad_filter_value_with_a_400_naming_the_choices(client, auditor, host):
    login(client, auditor)
    response = client.get("/hosts/?archived=maybe")
    body = response.content.decode()
    assert response.status_code == 400 and "maybe is not one of the valid choices: false, true, all" in body
    assert host.name not in body.split("</form>")[1]  # no list under a filter it cannot read


def test_it_refuses_an_unknown_filter_instead_of_listing_everything(client, auditor, host):
    login(client, auditor)
    response = client.get("/hosts/?nme=web-1")
    assert response.status_code == 400 and "unknown parameter" in response.content.decode()


def test_it_filters_the_list_as_the_api_does(client, auditor, host):
    DockerHost.objects.create(name="db-1", url="tcp://db-1.example:2376")
    broken = DockerHost.objects.create(name="broken-1", url="unix:///y.sock")
    ScanRun.objects.create(host=broken, state=ScanState.FAILED, finished_at=timezone.now(), error="refused")
    login(client, auditor)

    def listed(query: str) -> set[str]:
        body = client.get(f"/hosts/?{query}").content.decode().split("<tbody>")[1]
        return {name for name in ("web-1", "db-1", "broken-1") if f"<strong>{name}</strong>" in body}

    assert listed("") == {"web-1", "db-1", "broken-1"}
    assert listed("scheme=tcp") == {"db-1"}
    assert listed("name_contains=WEB") == {"web-1"}
    assert listed("last_scan_failed=true") == {"broken-1"}
    assert "No host matches these filters." in client.get("/hosts/?name=nobody").content.decode()


def evaluated(host: DockerHost, snapshot: dict | None = None) -> ScanRun:
    scan = stored_scan(host, snapshot or SNAPSHOT)
    evaluate_scan(scan)
    return scan


def test_it_shows_each_hosts_controls_passing_and_failing_with_score_and_coverage(client, auditor, host):
    evaluated(host)
    DockerHost.objects.create(name="new-1", url="unix:///x.sock")
    rollup = host_rollups(["cis-docker-1.8.0"], [host])[host.pk]["cis-docker-1.8.0"]
    failing = findings([host], status="fail").count()
    assert rollup.pair_tally["pass"] and rollup.pair_tally["fail"] and failing
    login(client, auditor)
    rows = client.get("/hosts/").content.decode().split("<tbody>")[1].split("</tr>")
    new, web = rows[0], rows[1]
    assert f"{rollup.pair_tally['pass']} pass</a>" in web and f"{rollup.pair_tally['fail']} fail</a>" in web
    assert f"score <strong>{percent(rollup.score)}</strong> · coverage {percent(rollup.coverage)}" in web
    assert f"?host={host.pk}&amp;status=fail\">{failing} failing findings</a>" in web
    assert "no succeeded scan" in new and "score" not in new  # never scanned is not a pass


def test_it_lists_hosts_in_a_number_of_queries_that_does_not_grow_with_hosts(client, auditor):
    def add(i: int) -> None:
        h = DockerHost.objects.create(name=f"h{i:02}", url="unix:///x.sock")
        evaluated(h)
        ScanRun.objects.create(host=h, state=ScanState.FAILED, finished_at=timezone.now(), error="x")

    def count() -> int:
        client.get("/hosts/")  # warm: result sets' control counts are read once per process
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/hosts/").content.decode()
        assert body.count("failing findings</a>") == DockerHost.objects.count()
        return len(queries)

    add(0)
    login(client, auditor)
    one = count()
    for i in range(1, 12):
        add(i)
    assert count() == one and 6 < one <= 14  # session, user, roles, count, hosts, scans, summaries (5) and the form


def test_it_escapes_hostile_strings_on_the_host_pages(client, auditor):
    host = DockerHost.objects.create(name="evil-1", url="unix:///x.sock")
    snap = copy.deepcopy(SNAPSHOT)
    snap["daemon"]["info"]["OperatingSystem"] = HOSTILE
    snap["daemon"]["info"]["SecurityOptions"] = [f"name={HOSTILE}"]
    snap["daemon"]["version"]["Version"] = HOSTILE
    stored_scan(host, snap)
    ScanRun.objects.create(host=host, state=ScanState.FAILED, finished_at=timezone.now(), error=HOSTILE,
                           log=[HOSTILE])
    login(client, auditor)
    for url in ("/hosts/", f"/hosts/{host.pk}/"):
        body = client.get(url).content.decode()
        assert HOSTILE not in body, url
        assert ESCAPED in body, url


# --- detail -----------------------------------------------------------------------------------

def test_it_shows_the_daemon_facts_of_the_current_scan(client, auditor, host):
    stored_scan(host, SNAPSHOT)
    info, version = SNAPSHOT["daemon"]["info"], SNAPSHOT["daemon"]["version"]
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    assert version["Version"] in body and info["OperatingSystem"] in body and info["Driver"] in body
    assert all(o in body for o in info["SecurityOptions"])
    assert f"<dd>{info['Images']}</dd>" in body


def test_it_pages_the_scan_history(client, auditor, host):
    ScanRun.objects.bulk_create([ScanRun(host=host, state=ScanState.FAILED, error=f"failure {i}") for i in range(25)])
    login(client, auditor)
    first = client.get(f"/hosts/{host.pk}/").content.decode()
    second = client.get(f"/hosts/{host.pk}/?page=2").content.decode()
    assert "failure 24" in first and "failure 0" not in first and "page 1 of 2 (25 in all)" in first
    assert "failure 0" in second and "failure 24" not in second


def test_it_answers_404_for_a_host_that_does_not_exist(client, auditor):
    login(client, auditor)
    response = client.get("/hosts/999999/")
    assert response.status_code == 404 and "Page not found" in response.content.decode()


# --- scan now and its status ------------------------------------------------------------------

def test_it_queues_a_scan_with_a_form_post_and_follows_it(client, operator, host):
    login(client, operator)
    response = client.post(f"/hosts/{host.pk}/scan/")
    scan = ScanRun.objects.get(host=host)
    assert response.status_code == 302 and response["Location"] == f"/hosts/{host.pk}/?scan={scan.pk}#scan-progress"
    assert scan.state == ScanState.QUEUED and scan.trigger == Trigger.MANUAL
    event = AuditEvent.objects.get(action="scan.requested")
    assert event.actor == operator and event.detail["scan"] == scan.pk
    body = client.get(response["Location"]).content.decode()
    assert f"Scan #{scan.pk} queued." in body and f'data-status-url="/hosts/{host.pk}/scan-status/?scan={scan.pk}"' in body


def test_it_answers_json_to_scan_now_and_reuses_a_queued_scan(client, admin, host):
    login(client, admin)
    first = client.post(f"/hosts/{host.pk}/scan/", **JSON)
    again = client.post(f"/hosts/{host.pk}/scan/", **JSON)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["scan"]["id"] == again.json()["scan"]["id"] == ScanRun.objects.get(host=host).pk
    assert first.json()["scan"]["status_url"] == f"/hosts/{host.pk}/scan-status/?scan={first.json()['scan']['id']}"


def test_it_refuses_to_scan_an_archived_host(client, operator, host):
    archived = DockerHost.objects.create(name="old-1", url="unix:///x.sock", enabled=False, archived_at=timezone.now())
    login(client, operator)
    response = client.post(f"/hosts/{archived.pk}/scan/", **JSON)
    assert response.status_code == 409 and "archived" in response.json()["error"]
    response = client.post(f"/hosts/{archived.pk}/scan/", follow=True)
    assert "is archived; unarchive it to scan it" in response.content.decode()
    assert not ScanRun.objects.exists()


def test_it_reports_a_scans_progress_as_json(client, auditor, host):
    scan = ScanRun.objects.create(host=host, state=ScanState.RUNNING, started_at=timezone.now(),
                                  log=["attempt 1 on w1: connecting", HOSTILE])
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/scan-status/?scan={scan.pk}").json()["scan"]
    assert body["id"] == scan.pk and body["state"] == "running" and body["finished"] is False
    assert body["log"][-1] == HOSTILE and body["url"] == f"/scans/{scan.pk}/"
    ScanRun.objects.filter(pk=scan.pk).update(state=ScanState.SUCCEEDED, finished_at=timezone.now())
    assert client.get(f"/hosts/{host.pk}/scan-status/").json()["scan"]["finished"] is True


@pytest.mark.parametrize("value, status", [("abc", 400), ("1" * 30, 400), ("999999", 404)])
def test_it_answers_a_bad_scan_id_with_a_clear_error(client, auditor, host, value, status):
    login(client, auditor)
    response = client.get(f"/hosts/{host.pk}/scan-status/?scan={value}")
    assert response.status_code == status and response.json()["error"]


def test_it_does_not_report_another_hosts_scan(client, auditor, host):
    other = DockerHost.objects.create(name="other", url="unix:///y.sock")
    scan = ScanRun.objects.create(host=other)
    login(client, auditor)
    assert client.get(f"/hosts/{other.pk}/scan-status/?scan={scan.pk}").status_code == 200
    assert client.get(f"/hosts/{host.pk}/scan-status/?scan={scan.pk}").status_code == 404


# --- archive / unarchive ----------------------------------------------------------------------

def test_it_archives_and_unarchives_a_host_keeping_its_scans(client, operator, host):
    scan = stored_scan(host, SNAPSHOT)
    login(client, operator)
    assert client.post(f"/hosts/{host.pk}/archive/").status_code == 302
    host.refresh_from_db()
    assert host.archived and not host.enabled and ScanRun.objects.filter(pk=scan.pk).exists()
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    assert "Unarchive" in body and "Scan now" not in body
    client.post(f"/hosts/{host.pk}/unarchive/")
    host.refresh_from_db()
    assert not host.archived and not host.enabled
    assert list(AuditEvent.objects.values_list("action", "actor__username").order_by("id")) == [
        ("host.archived", "olive"), ("host.unarchived", "olive")]


# --- add / edit through save_host -------------------------------------------------------------

def test_it_adds_a_host_and_audits_it(client, operator):
    login(client, operator)
    response = client.post("/hosts/new/", form_data(probe_enabled="on"))
    host = DockerHost.objects.get(name="web-2")
    assert response.status_code == 302 and response["Location"] == f"/hosts/{host.pk}/"
    assert host.probe_enabled and host.enabled and host.scan_interval_minutes == 60
    assert AuditEvent.objects.get().action == "host.created"


def tls_files(bundle, **overrides) -> dict:
    files = {"tls_ca_file": bundle.ca.cert_pem, "tls_cert_file": bundle.client.cert_pem,
             "tls_key_file": bundle.client.key_pem, **overrides}
    return {k: SimpleUploadedFile(f"{k}.pem", v if isinstance(v, bytes) else v.encode()) for k, v in files.items()}


def test_it_adds_a_tls_host_from_three_uploaded_pem_files(client, operator):
    bundle = make_bundle()
    login(client, operator)
    response = client.post("/hosts/new/", {**form_data(url="tcp://127.0.0.1:2376"), **tls_files(bundle)})
    assert response.status_code == 302, response.content.decode()[-2000:]
    host = DockerHost.objects.get(name="web-2")
    assert host.tls_ca == bundle.ca.cert_pem and host.tls_key == bundle.client.key_pem
    body = client.get(f"/hosts/{host.pk}/edit/").content.decode()
    assert "BEGIN CERTIFICATE" not in body and "PRIVATE KEY" not in body  # write-only: the stored material is never sent back


def test_it_keeps_the_stored_tls_material_when_an_edit_leaves_it_empty_and_removes_it_on_request(client, operator):
    bundle = make_bundle()
    host = save_host(None, {"name": "tls-1", "url": "tcp://127.0.0.1:2376", "tls_ca": bundle.ca.cert_pem,
                            "tls_cert": bundle.client.cert_pem, "tls_key": bundle.client.key_pem})
    login(client, operator)
    assert client.post(f"/hosts/{host.pk}/edit/", form_data(name="tls-1", url="tcp://127.0.0.1:2377")).status_code == 302
    host.refresh_from_db()
    assert host.url == "tcp://127.0.0.1:2377" and host.tls_key == bundle.client.key_pem
    response = client.post(f"/hosts/{host.pk}/edit/", form_data(name="tls-1", url="unix:///x.sock", tls_clear="on"))
    assert response.status_code == 302
    host.refresh_from_db()
    assert host.url == "unix:///x.sock" and not host.uses_tls


#: One case per message class of save_host (and the form's own file checks): the input, the
#: field the message belongs to, and the message.
BAD_INPUT = [
    ({"name": "bad name/1"}, "name", NAME_RULE),
    ({"name": "x" * 101}, "name", NAME_RULE),
    ({"name": "web-1"}, "name", "a host named 'web-1' already exists"),
    ({"url": "http://x"}, "url", "the URL must start with unix://, tcp:// or ssh://"),
    ({"url": "unix:///x.sock\nX: y"}, "url", "the URL contains a space or a control character"),
    ({"url": "unix:///" + "x" * 600}, "url", "the URL is longer than 500 characters"),
    ({"url": "tcp://example"}, "url", "a tcp:// URL needs a port"),
    ({"scan_interval_minutes": "0"}, "scan_interval_minutes", INTERVAL_RULE),
    ({"scan_interval_minutes": "99999999999999"}, "scan_interval_minutes", INTERVAL_RULE),
    ({"scan_interval_minutes": "often"}, "scan_interval_minutes", INTERVAL_RULE),
    ({"url": "unix:///x.sock", "tls_ca": "-----BEGIN CERTIFICATE-----"}, "url", "TLS material only applies to tcp:// URLs"),
    ({"url": "tcp://127.0.0.1:2376", "tls_ca": "x"}, "tls_cert", "TLS needs all three"),
    ({"url": "tcp://127.0.0.1:2376", "tls_ca": "garbage", "tls_cert": "garbage", "tls_key": "garbage"}, "tls_cert",
     "TLS material refused:"),
]


@pytest.mark.parametrize("bad, field, message", BAD_INPUT, ids=[f"{f}:{m[:30]}" for _, f, m in BAD_INPUT])
def test_it_shows_save_hosts_message_next_to_the_field_and_saves_nothing(client, operator, host, bad, field, message):
    login(client, operator)
    response = client.post("/hosts/new/", form_data(**bad))
    assert response.status_code == 400
    body = response.content.decode()
    errors = body[body.index(f'id="id_{field}-errors"'):]
    assert escape(message) in errors[:errors.index("</ul>")], errors[:600]
    assert DockerHost.objects.count() == 1 and not AuditEvent.objects.exists()


def test_it_refuses_to_edit_an_archived_host_and_saves_nothing(client, operator, host):
    DockerHost.objects.filter(pk=host.pk).update(archived_at=timezone.now(), enabled=False)
    login(client, operator)
    response = client.post(f"/hosts/{host.pk}/edit/", form_data(name="web-1", url="unix:///other.sock"))
    assert response.status_code == 400
    assert "host &#x27;web-1&#x27; is archived (its history is kept); unarchive it first" in response.content.decode()
    host.refresh_from_db()
    assert host.url == "unix:///var/run/docker.sock" and not AuditEvent.objects.exists()


@pytest.mark.parametrize("files, message", [
    ({"tls_key_file": b"\x30\x82\x01\xff\xfe\x00binary"}, "the client key file is not PEM text"),
    ({"tls_ca_file": b"-" * (64 * 1024 + 1)}, "the CA certificate file is 65537 bytes: a PEM file is at most 64 KiB"),
])
def test_it_refuses_tls_files_that_are_not_pem_text_and_saves_nothing(client, operator, files, message):
    login(client, operator)
    response = client.post("/hosts/new/", {**form_data(url="tcp://127.0.0.1:2376"), **tls_files(make_bundle(), **files)})
    assert response.status_code == 400 and message in response.content.decode()
    assert not DockerHost.objects.exists() and not AuditEvent.objects.exists()


def test_it_refuses_a_tls_file_and_pasted_text_for_the_same_field(client, operator):
    bundle = make_bundle()
    login(client, operator)
    data = {**form_data(url="tcp://127.0.0.1:2376", tls_ca=bundle.ca.cert_pem), **tls_files(bundle)}
    response = client.post("/hosts/new/", data)
    assert response.status_code == 400
    assert "give the CA certificate as a file or pasted, not both" in response.content.decode()
    assert not DockerHost.objects.exists()


def test_it_tests_a_url_that_is_not_a_docker_url_without_connecting_or_saving(client, operator):
    login(client, operator)
    response = client.post("/hosts/new/", form_data(url="http://example.invalid", action="test"), **JSON)
    report = response.json()["report"]
    assert report["ok"] is False and report["error_kind"] == "configuration" and report["seconds"] == 0.0
    assert "must start with unix://, tcp:// or ssh://" in report["error"]
    assert not DockerHost.objects.exists() and not AuditEvent.objects.exists()


# --- detail: resources and their failing checks ------------------------------------------------

def section(body: str, key: str) -> str:
    return body.split(f'id="{key}"')[1].split("</table>")[0]


def resource_row(body: str, key: str, name: str) -> str:
    return next(row for row in section(body, key).split("<tr>") if f'<span class="name">{name}</span>' in row)


def test_it_shows_each_image_and_container_with_its_failing_checks(client, auditor, host):
    scan = evaluated(host)
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    failing = list(findings([host], status="fail", resource_type="container", resource="rec-privileged"))
    assert any(r.check_id == "container.privileged_disabled" for r in failing)
    row = resource_row(body, "containers", "rec-privileged")
    assert f"{len(failing)} failing check{'s' if len(failing) != 1 else ''}</strong>" in row
    for r in failing:
        assert escape(r.title) in row
    privileged = next(r for r in failing if r.check_id == "container.privileged_disabled")
    evidence = f"/controls/cis-docker-1.8.0/5.5/?evidence={scan.pk}-{privileged.result_id}#evidence"
    assert f'href="{evidence}"' in row
    assert (f'href="/findings/?host={host.pk}&amp;resource_type=container&amp;resource=rec-privileged'
            f'&amp;check=container.privileged_disabled"') in row
    hardened = resource_row(body, "containers", "rec-hardened")
    assert "failing check" not in hardened or findings([host], status="fail", resource="rec-hardened").exists()
    images = section(body, "images")
    assert "rec/bad:1" in images
    assert len(section(body, "containers").split("<tr>")) - 2 == 8  # header row + 8 containers


def test_it_links_a_failing_check_to_its_deciding_evidence(client, auditor, host, monkeypatch):
    scan = evaluated(host)
    # Other hosts fail the control first (by name), and the control page lists one row a page:
    # the finding linked to is not on its first page, and its evidence is shown all the same.
    for i in range(3):
        evaluated(DockerHost.objects.create(name=f"a{i}", url="unix:///x.sock"))
    monkeypatch.setattr(control_views, "PAGE_SIZE", 1)
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    row = resource_row(body, "containers", "rec-privileged")
    url = row.split('href="/controls/cis-docker-1.8.0/5.5/')[1].split('"')[0]
    page = client.get("/controls/cis-docker-1.8.0/5.5/" + url.replace("&amp;", "&")).content.decode()
    evidence = page.split('id="evidence"')[1]
    assert "web-1" in evidence and "rec-privileged" in evidence and "jl-hit" in evidence
    assert "web-1" not in page.split('id="evidence"')[0].split("<tbody>")[1]  # not on the page's list
    assert f"{scan.pk}-" in url


def test_it_links_a_resource_to_its_findings(client, auditor, host):
    evaluated(host)
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    row = resource_row(body, "containers", "rec-privileged")
    url = row.split('<a href="')[1].split('"')[0].replace("&amp;", "&")
    listed = client.get(url)
    assert listed.status_code == 200
    rows = listed.content.decode().split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr>") == findings([host], resource="rec-privileged", resource_type="container").count()
    assert rows.count('<span class="muted">container</span> rec-privileged</td>') == rows.count("<tr>")


def test_it_reads_the_host_page_in_a_number_of_queries_that_does_not_grow(client, auditor, host):
    evaluated(host)
    login(client, auditor)

    def count() -> int:
        client.get(f"/hosts/{host.pk}/")  # warm: result sets' control counts are read once per process
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/hosts/{host.pk}/").status_code == 200
        return len(queries)

    small = count()
    assert small > 6
    bigger = copy.deepcopy(SNAPSHOT)
    for i in range(12):
        extra = copy.deepcopy(next(c for c in SNAPSHOT["containers"] if c["name"] == "rec-privileged"))
        extra["name"], extra["id"] = f"more-{i}", f"{i:064x}"
        bigger["containers"].append(extra)
    for _ in range(5):
        evaluated(host, bigger)
    assert "more-11" in client.get(f"/hosts/{host.pk}/").content.decode()
    assert count() == small


def test_it_escapes_hostile_container_names_and_labels_on_the_host_page(client, auditor, host):
    snap = copy.deepcopy(SNAPSHOT)
    target = next(c for c in snap["containers"] if c["name"] == "rec-privileged")
    target["name"] = "evil" + HOSTILE
    target["inspect"]["Config"]["Labels"] = {"note" + HOSTILE: HOSTILE}
    snap["images"][1]["tags"] = ["rec/bad:" + HOSTILE]
    evaluated(host, snap)
    login(client, auditor)
    body = client.get(f"/hosts/{host.pk}/").content.decode()
    assert HOSTILE not in body
    row = resource_row(body, "containers", "evil" + ESCAPED)
    assert "container.privileged_disabled" in row  # the hostile resource's failing checks are linked
    assert ESCAPED in section(body, "images")


def test_it_shows_the_host_as_of_a_past_moment(client, auditor, host):
    first = evaluated(host)
    ScanRun.objects.filter(pk=first.pk).update(finished_at=timezone.now() - timedelta(days=2),
                                               queued_at=timezone.now() - timedelta(days=2))
    later = copy.deepcopy(SNAPSHOT)
    later["containers"] = [c for c in later["containers"] if c["name"] != "rec-privileged"]
    second = evaluated(host, later)
    login(client, auditor)
    now = client.get(f"/hosts/{host.pk}/").content.decode()
    assert "rec-privileged" not in section(now, "containers") and f"scan #{second.pk}" in now
    at = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    then = client.get(f"/hosts/{host.pk}/?at={at}").content.decode()
    assert "As of" in then and f"scan #{first.pk}" in then
    assert "rec-privileged" in section(then, "containers")
    assert f"#{second.pk}</a>" not in then.split('id="history"')[1]  # queued after the moment


def test_it_answers_a_bad_moment_on_the_host_page_with_a_400(client, auditor, host):
    login(client, auditor)
    for query in ("at=yesterday", "at=2026-02-30T00:00Z", "when=now"):
        response = client.get(f"/hosts/{host.pk}/?{query}")
        assert response.status_code == 400, query
        assert "cannot be read" in response.content.decode()


def test_it_offers_any_for_an_empty_choice_filter_and_active_hosts_by_default(client, auditor, host):
    login(client, auditor)
    form = client.get("/hosts/").content.decode().split('aria-label="Filter hosts"')[1].split("</form>")[0]
    assert '<option value="" selected>any</option>' in form and "---------" not in form
    archived = form.split('name="archived"')[1].split("</select>")[0]
    assert '<option value="false">false (the default)</option>' in archived and 'value=""' not in archived


#: The host page's failing-check items as a template loop wrote them before ``failing_items``.
_FAILING_LOOP = ('{% for f in links %}<li><span class="sev sev-{{ f.check.severity|default:\'none\' }}">'
                 '{{ f.check.severity|default:"–" }}</span> {{ f.check.title|default:f.check.check_id }}\n'
                 '        <span class="links">{% if f.evidence_url %}<a href="{{ f.evidence_url }}" title="the deciding '
                 'evidence, on CIS {{ f.ref }}\'s page">CIS {{ f.ref }} evidence</a> · {% endif %}<a href="'
                 '{{ f.findings_url }}" title="this finding in the findings list">finding</a></span></li>{% endfor %}')


def test_it_writes_failing_checks_escaped_as_the_template_loop_did():
    from django.template import Context, Template

    from posture.host_views import FailingLink
    from posture.queries.groups import FailingCheck

    hostile = '<img src=x onerror=alert(1)>"\'&'
    links = [FailingLink(FailingCheck(f"c.{hostile}", hostile, hostile, 1, 2), hostile, f"/e?{hostile}", f"/f?{hostile}"),
             FailingLink(FailingCheck("c.plain", None, None, 3, 4), None, None, "/f?a=1&b=2")]
    written = Template("{% load posture_tags %}{% failing_items links %}").render(Context({"links": links}))
    assert written == Template(_FAILING_LOOP).render(Context({"links": links}))
    assert "<img" not in written and escape(hostile) in written

"""The frameworks-and-controls pages: every role reads them, the rollup and failing resources
agree with the query layer, the deciding evidence is escaped pretty JSON with the deciding
field marked, exceptions and attestations in force and the failure history are shown, bad
parameters are a 400, and the query count does not grow with hosts."""

from __future__ import annotations

import copy
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from posture.jobs.evaluate import check_controls
from posture.models import Attestation, ControlException, ExceptionState
from posture.queries.rollups import rollup
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT
from tests.posture.reader_pages import ESCAPED, HOSTILE, formatting_calls, reader_page_tests, scanned

pytestmark = pytest.mark.django_db
CIS = "cis-docker-1.8.0"
PRIVILEGED = f"/controls/{CIS}/5.5/"


def hostile_snapshot() -> dict:
    """The recorded snapshot with the privileged container renamed and labelled with HTML."""
    snap = copy.deepcopy(SNAPSHOT)
    for c in snap["containers"]:
        if c["name"] == "rec-privileged":
            c["name"] = f"rec-privileged{HOSTILE}"
            c["inspect"]["Name"] = f"/rec-privileged{HOSTILE}"
            c["inspect"]["Config"]["Labels"] = {HOSTILE: f"v{HOSTILE}"}
    return snap


# --- page x role ---------------------------------------------------------------------------

PAGES = ["/controls/", "/controls/?framework=soc2-2017", PRIVILEGED, "/controls/soc2-2017/CC6.1/"]


(test_it_sends_anonymous_visitors_to_the_login_page, test_it_refuses_accounts_without_a_role,
 test_it_lets_every_role_read) = reader_page_tests(PAGES)


def test_it_answers_404_for_an_unknown_control(client: Client, auditor):
    client.force_login(auditor)
    assert client.get(f"/controls/{CIS}/99.99/").status_code == 404
    assert client.get("/controls/nope/5.5/").status_code == 404


# --- the controls list ---------------------------------------------------------------------

def test_it_lists_the_frameworks_controls_with_the_rollup(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/controls/").content.decode()
    expected = rollup(CIS)
    row = expected.by_ref["5.5"]
    assert row.status == "fail" and row.hosts_failing == 2
    assert f'href="{PRIVILEGED}"><strong>5.5</strong>' in body
    assert len(re.findall(r'data-label="Control"', body)) == len(expected.controls)
    soc2 = client.get("/controls/", {"framework": "soc2-2017"}).content.decode()
    assert 'href="/controls/soc2-2017/CC6.1/"' in soc2


def test_it_filters_controls_by_status(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get("/controls/", {"status": "fail"}).content.decode()
    failing = [c for c in rollup(CIS).controls if c.status == "fail"]
    assert len(re.findall(r'data-label="Control"', body)) == len(failing)


@pytest.mark.parametrize("query", [{"framework": "cis-9"}, {"bogus": "1"}, {"at": "soon"}, {"status": "red"}])
def test_it_refuses_bad_control_filters_with_a_400(client: Client, auditor, query):
    client.force_login(auditor)
    response = client.get("/controls/", query)
    assert response.status_code == 400 and "cannot be read" in response.content.decode()


# --- control detail ------------------------------------------------------------------------

def test_it_shows_the_control_its_checks_and_the_resources_failing_them(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get(PRIVILEGED).content.decode()
    checks = sorted(c for c, refs in check_controls().items() if (CIS, "5.5") in refs)
    for check in checks:
        assert f"<code class=\"muted\">{check}</code>" in body
    assert "Remediation:" in body
    failing = findings(framework=CIS, control="5.5", status=["fail", "error", "excepted"])
    assert f"{failing.count()} finding" in body
    assert body.count('data-label="Evidence"') == failing.count()


def test_it_shows_the_deciding_evidence_with_the_field_marked(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    row = findings(framework=CIS, control="5.5", status=["fail"], check="container.privileged_disabled").first()
    assert "HostConfig.Privileged=true" in row.detail
    body = client.get(PRIVILEGED, {"evidence": f"{row.scan_id}-{row.result_id}"}).content.decode()
    evidence = body.split('id="evidence"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<span class="jl jl-hit" id="deciding-\d+">\s*&quot;Privileged&quot;: true,?</span>', evidence)
    assert evidence.count("jl-hit") == 1
    assert "Deciding field: <a href=\"#deciding-" in evidence and "<code>inspect.HostConfig.Privileged</code>" in evidence
    assert row.resource in evidence


def test_it_escapes_hostile_names_and_labels_in_findings_and_evidence(client: Client, auditor):
    scanned("web-1", hostile_snapshot())
    client.force_login(auditor)
    body = client.get(PRIVILEGED).content.decode()
    assert HOSTILE not in body
    evidence = body.split('id="evidence"', 1)[1].split("</section>", 1)[0]
    assert f"rec-privileged{ESCAPED}" in evidence and f"&quot;{ESCAPED}&quot;: &quot;v{ESCAPED}&quot;" in evidence


def test_it_shows_exceptions_and_attestations_in_force_and_the_excepted_rows(client: Client, auditor, web_hosts):
    now = timezone.now()
    exc = ControlException.objects.create(
        check_id="container.privileged_disabled", host=web_hosts[0], resource_pattern="rec-privileged",
        justification="lab box, isolated", state=ExceptionState.APPROVED, decided_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=9))
    ControlException.objects.create(
        check_id="container.privileged_disabled", resource_pattern="*", justification="never approved",
        expires_at=now + timedelta(days=9))
    manual = next(c for c, refs in check_controls().items() if c.startswith("manual.") and any(s == CIS for s, _ in refs))
    ref = next(r for s, r in check_controls()[manual] if s == CIS)
    Attestation.objects.create(check_id=manual, statement="hardened per runbook", attested_at=now - timedelta(days=1),
                               valid_until=now + timedelta(days=30))
    client.force_login(auditor)
    body = client.get(PRIVILEGED).content.decode()
    assert f"#{exc.pk}</strong>" in body and "lab box, isolated" in body and "never approved" not in body
    assert f"exception #{exc.pk}" in body and 'class="state state-excepted">excepted' in body
    before = client.get(PRIVILEGED, {"at": (now - timedelta(days=2)).isoformat()}).content.decode()
    assert "lab box, isolated" not in before
    assert "hardened per runbook" in client.get(f"/controls/{CIS}/{ref}/").content.decode()


def test_it_draws_the_failure_windows_of_the_last_90_days(client: Client, auditor, web_hosts):
    client.force_login(auditor)
    body = client.get(PRIVILEGED).content.decode()
    history = body.split('id="history"', 1)[1]
    assert "web-1</a>" in history and "web-2</a>" in history
    assert "<rect " in history and "still failing" in history


@pytest.mark.parametrize("query", [{"evidence": "x"}, {"at": "2026-02-30T00:00:00Z"}, {"framework": CIS}])
def test_it_refuses_bad_control_page_parameters_with_a_400(client: Client, auditor, web_hosts, query):
    client.force_login(auditor)
    response = client.get(PRIVILEGED, query)
    assert response.status_code == 400 and "cannot be read" in response.content.decode()


# --- query count ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/controls/", PRIVILEGED])
def test_it_reads_a_bounded_number_of_queries(client: Client, auditor, django_assert_max_num_queries, path):
    client.force_login(auditor)
    for i in range(2):
        scanned(f"web-{i + 1}")
    with django_assert_max_num_queries(25) as few:
        assert client.get(path).status_code == 200
    for i in range(2, 10):
        scanned(f"web-{i + 1}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(path).status_code == 200


def test_it_caps_the_windows_drawn_and_says_so(client: Client, auditor, web_hosts, monkeypatch):
    from posture.queries import controls

    monkeypatch.setattr(controls, "TIMELINE_MAX", 1)
    timeline = controls.timeline(["container.privileged_disabled"])
    assert (timeline.total, timeline.drawn) == (2, 1)
    client.force_login(auditor)
    assert "2 windows in these 90 days: the bars draw the first 1." in client.get(PRIVILEGED).content.decode()


def test_it_formats_a_bounded_number_of_values_whatever_the_hosts(client: Client, auditor):
    """The timeline's bars and windows are positioned and formatted once in Python, not
    localised value by value in the template: 10 hosts format no more than 2."""
    client.force_login(auditor)
    for i in range(2):
        scanned(f"web-{i + 1}")
    with formatting_calls() as few:
        assert client.get(PRIVILEGED).status_code == 200
    for i in range(2, 10):
        scanned(f"web-{i + 1}")
    with formatting_calls() as many:
        body = client.get(PRIVILEGED).content.decode()
    assert body.count("<rect ") >= 10 and many == few


def test_it_draws_each_window_where_it_falls_in_the_period(client: Client, auditor, web_hosts):
    from posture.queries import controls

    timeline = controls.timeline(["container.privileged_disabled"])
    span = (timeline.end - timeline.start).total_seconds()
    for host in timeline.hosts:
        assert len(host.bars) == len(host.windows)
        for (x, width), w in zip(host.bars, host.windows, strict=True):
            assert x == int((w.clipped_start - timeline.start).total_seconds() / span * 1000)
            assert width == max(1, min(int((w.clipped_end - timeline.start).total_seconds() / span * 1000), 1000) - x)
    client.force_login(auditor)
    x, width = timeline.hosts[0].bars[0]
    assert f'<rect x="{x}" y="0" width="{width}" height="10"></rect>' in client.get(PRIVILEGED).content.decode()

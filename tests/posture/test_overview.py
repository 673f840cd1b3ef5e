"""The Overview page (``/``): page x role, every number equal to the query layer's for a
small stored history, "as of" a past moment (an exception approved later is not applied),
bad ``?at=`` is a 400 saying why, and a query count that does not grow with the fleet."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from posture.choices import ScanState
from posture.models import DockerHost, ScanRun
from posture.overview_views import SLUGS, percent
from posture.queries.history import collection_gaps
from posture.queries.rollups import host_rollups, rollups
from posture.queries.trends import fleet_trend, last_days
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import PIDS, exception, scan_at, without

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def scanned(host: DockerHost, snapshot: dict, when) -> ScanRun:
    """A stored, evaluated scan that was queued, ran and finished at ``when``."""
    scan = scan_at(host, snapshot, when)
    ScanRun.objects.filter(pk=scan.pk).update(queued_at=when)
    return scan


@pytest.fixture
def fleet():
    """alpha: scanned 3 days ago (SNAPSHOT), fixed 1 day ago (no privileged container);
    beta: scanned 40 hours ago; gamma: its last scan failed an hour ago after a success 5 days
    ago (daily interval: overdue, in a gap)."""
    now = timezone.now()
    alpha, beta, gamma = (DockerHost.objects.create(name=n, url=f"unix:///{n}.sock", scan_interval_minutes=24 * 60)
                          for n in ("alpha", "beta", "gamma"))
    scans = {
        "alpha-old": scanned(alpha, SNAPSHOT, now - 3 * DAY),
        "alpha": scanned(alpha, without(SNAPSHOT, "rec-privileged"), now - DAY),
        "beta": scanned(beta, SNAPSHOT, now - 40 * HOUR),
        "gamma": scanned(gamma, without(SNAPSHOT, "rec-sshd"), now - 5 * DAY),
    }
    scans["gamma-failed"] = ScanRun.objects.create(host=gamma, state=ScanState.FAILED, queued_at=now - HOUR,
                                                   started_at=now - HOUR, finished_at=now - HOUR,
                                                   error="connection refused")
    ScanRun.objects.filter(pk=scans["gamma-failed"].pk).update(queued_at=now - HOUR)
    return {"alpha": alpha, "beta": beta, "gamma": gamma}, scans


def get(client: Client, user, path: str = "/", **params):
    client.force_login(user)
    return client.get(path, params)


def marked(body: str, attribute: str) -> dict[str, str]:
    return dict(re.findall(rf'{attribute}="([^"]+)">([^<]*)<', body))


def test_it_rounds_percentages_down_but_never_below_their_value():
    assert [percent(v) for v in (0.29, 0.57, 0.996, 1.0, 0.0, None)] == ["29%", "57%", "99%", "100%", "0%", "–"]


# --- page x role ------------------------------------------------------------------------------

def test_it_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_it_refuses_accounts_without_a_role(client, outsider):
    assert get(client, outsider).status_code == 403


@pytest.mark.parametrize("role", ["auditor", "operator", "admin"])
def test_it_shows_the_overview_to_every_role(client, personas, fleet, role):
    response = get(client, personas[role])
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Overview</h1>" in body and 'href="/" aria-current="page">Overview' in body


# --- the numbers are the query layer's ----------------------------------------------------------

def test_it_shows_the_query_layers_scores_coverage_and_counts(client, auditor, fleet):
    hosts, scans = fleet
    response = get(client, auditor)
    body = response.content.decode()
    fleet_rollups = rollups(SLUGS)
    scores, coverage = marked(body, "data-score"), marked(body, "data-coverage")
    for slug in SLUGS:
        assert scores[slug] == percent(fleet_rollups[slug].score) and scores[slug].endswith("%"), slug
        assert coverage[slug] == percent(fleet_rollups[slug].coverage), slug
        assert fleet_rollups[slug].hosts == 3
    per_host = host_rollups(SLUGS)
    rows = {r.host.name: r for r in response.context["rows"]}
    assert set(rows) == {"alpha", "beta", "gamma"}
    for name, host in hosts.items():
        assert [(s, c) for _, s, c in rows[name].scores] == [
            (percent(per_host[host.pk][slug].score), percent(per_host[host.pk][slug].coverage)) for slug in SLUGS]
        assert f'href="/hosts/{host.pk}/"' in body
    assert rows["alpha"].current == scans["alpha"]  # the fix, not the older scan
    # Failing results by severity: the findings' own rows, counted here one by one.
    expected = Counter(r.severity for r in findings(status="fail"))
    shown = {sev: n for sev, n, _ in response.context["severities"] if n}
    assert shown == dict(expected) and response.context["failing"] == sum(expected.values())
    assert 'href="/findings/?status=fail&amp;severity=high"' in body
    assert f'href="/findings/?status=fail&amp;host={hosts["beta"].pk}"' in body
    # The trend: the query layer's points for the last 30 days, today's score matching the cards.
    start, end = last_days(30)
    series = fleet_trend(SLUGS[0], start, end, DockerHost.objects.filter(archived_at__isnull=True))
    chart = response.context["trend_chart"]
    assert chart["days"] == [p.day.isoformat() for p in series]
    assert chart["series"][0]["score"] == [None if p.score is None else round(p.score * 100, 1) for p in series]
    assert chart["series"][0]["score"][-2] is not None  # yesterday: alpha and beta and 'id="trend-data" type="application/json"' in body


def test_it_makes_failed_overdue_and_gappy_hosts_stand_out(client, auditor, fleet):
    hosts, scans = fleet
    response = get(client, auditor)
    attention = {r.host.name: r for r in response.context["attention"]}
    assert set(attention) == {"gamma"}
    assert attention["gamma"].failure == scans["gamma-failed"] and attention["gamma"].overdue
    now = timezone.now()
    gaps = collection_gaps((now - 30 * DAY, now))
    assert [g.host_id for g in gaps] == [hosts["gamma"].pk]
    body = response.content.decode()
    assert "last scan failed" in body and "connection refused" in body and "Collection gaps, last 30 days" in body
    # The latest scans, newest first, with their state.
    assert [s.pk for s, *_ in response.context["scans"]] == [scans[k].pk for k in
                                                             ("gamma-failed", "alpha", "beta", "alpha-old", "gamma")]


# --- as of ------------------------------------------------------------------------------------

def test_it_shows_the_posture_as_it_was_without_an_exception_approved_later(client, auditor, fleet):
    hosts, scans = fleet
    now = timezone.now()
    exception(PIDS, approved=now - 2 * HOUR, expires=now + 30 * DAY)  # every running container, every host
    earlier = now - 36 * HOUR  # after beta's scan, before alpha's fix

    current = get(client, auditor)
    past = get(client, auditor, at=earlier.isoformat())
    assert past.status_code == 200
    body = past.content.decode()
    assert "Viewing posture as of" in body and 'href="/">Back to now</a>' in body
    # Then: alpha's older scan is current, the exception (approved later) excepts nothing.
    rows = {r.host.name: r for r in past.context["rows"]}
    assert rows["alpha"].current == scans["alpha-old"] and rows["gamma"].failure is None
    then = Counter(r.severity for r in findings(at=earlier, status="fail"))
    assert {s: n for s, n, _ in past.context["severities"] if n} == dict(then)
    assert past.context["failing"] > current.context["failing"]
    assert not findings(at=earlier, status="excepted").exists() and findings(status="excepted").exists()
    for slug in SLUGS:
        assert marked(body, "data-score")[slug] == percent(rollups([slug], at=earlier)[slug].score)
    # Scans up to then only; the trend ends on that day; links carry the moment along.
    assert scans["gamma-failed"].pk not in [s.pk for s, *_ in past.context["scans"]]
    assert past.context["trend_chart"]["days"][-1] == timezone.localdate(earlier).isoformat()
    assert f"at={earlier.isoformat().replace('+', '%2B').replace(':', '%3A')}" in body
    assert f'value="{timezone.localtime(earlier):%Y-%m-%dT%H:%M}"' in body


def test_it_reads_the_pickers_local_value(client, auditor, fleet):
    hosts, scans = fleet
    earlier = timezone.localtime(timezone.now() - 36 * HOUR)
    response = get(client, auditor, at=f"{earlier:%Y-%m-%dT%H:%M}")
    assert response.status_code == 200
    assert {r.host.name: r.current for r in response.context["rows"]}["alpha"] == scans["alpha-old"]


@pytest.mark.parametrize("params, message", [
    ({"at": "yesterday"}, "&#x27;yesterday&#x27; is not a valid ISO 8601 date-time"),
    ({"at": "2026-02-30T10:00"}, "is not a valid ISO 8601 date-time"),
    ({"at": "2999-01-01T00:00"}, "is in the future"),
    ({"days": "7"}, "Select a valid choice. 7 is not one of the available choices."),
    ({"when": "2026-01-01"}, "when: unknown parameter; accepted: at, days"),
])
def test_it_answers_bad_parameters_with_a_400_saying_why(client, auditor, fleet, params, message):
    response = get(client, auditor, **params)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body and "This overview cannot be shown" in body and 'type="datetime-local"' in body


def test_it_escapes_hostile_host_names(client, auditor):
    evil = '<script>alert("x")</script>'
    host = DockerHost.objects.create(name=evil, url="unix:///x.sock")
    scanned(host, SNAPSHOT, timezone.now() - HOUR)
    body = get(client, auditor).content.decode()
    assert evil not in body and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


# --- performance ------------------------------------------------------------------------------

#: Session, user, roles (3), per-host rollups (4; the fleet's are their sums), hosts and
#: their scans (2), failing by severity (1), the trend (3: one per framework), collection
#: gaps (2), latest scans (1), roles again for the layout's navigation (1), and now (no ``at``)
#: the read model's freshness check before the rollups and before failing by severity (2): 19,
#: whatever the fleet's size (21 when the fleet's rollups were queried apart).
MAX_QUERIES = 19


def queries_for(client: Client, user, n_hosts: int, prefix: str, **params) -> int:
    now = timezone.now()
    for i in range(n_hosts):
        host = DockerHost.objects.create(name=f"{prefix}{i:02}", url="unix:///x.sock", scan_interval_minutes=60)
        scanned(host, SNAPSHOT if i % 2 else without(SNAPSHOT, "rec-privileged"), now - (3 + i % 3) * HOUR)
        ScanRun.objects.create(host=host, state=ScanState.ERRORED, error="boom", queued_at=now - HOUR,
                               finished_at=now - HOUR)
    exception(PIDS, "rec-s*", approved=now - DAY)
    client.force_login(user)
    client.get("/")  # warm the per-process caches (check -> controls mapping)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/", params).status_code == 200
    return len(captured)


@pytest.mark.parametrize("params", [{}, {"at": "now-2h"}, {"days": "365"}])
def test_it_costs_the_same_queries_for_2_and_10_hosts(auditor, params, django_assert_max_num_queries):
    if params.get("at") == "now-2h":
        params = {"at": (timezone.now() - 2 * HOUR).isoformat()}
    small = queries_for(Client(), auditor, 2, "a", **params)
    big = queries_for(Client(), auditor, 8, "b", **params)  # 2 + 8 = 10 hosts
    assert small == big <= MAX_QUERIES
    client = Client()
    client.force_login(auditor)
    with django_assert_max_num_queries(MAX_QUERIES):
        client.get("/", params)

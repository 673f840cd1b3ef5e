"""The read model of posture now (posture/models/current.py, posture/jobs/current.py): a read
now answers exactly what the stored results answer at the same moment (rows, verdicts,
failing since, order), and stays so as scans replace results, exceptions are approved,
revoked or lapse, attestations arrive, hosts are archived or renamed, and the catalog's
severities change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.paginator import Paginator
from django.utils import timezone

from posture.jobs import current
from posture.models import Attestation, Check, CurrentFinding, CurrentState, DockerHost
from posture.queries.verdicts import findings, verdict_counts
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import PIDS, PRIV, exception, renamed, scan_at, without

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = timedelta(days=1)
KEY = ("result_id", "scan_id", "host_id", "host_name", "check_id", "resource_type", "resource", "status", "verdict",
       "exception_id", "attestation_id", "severity", "failing_since", "detail")
QUERIES = [{}, {"status": "fail"}, {"status": ["excepted", "pass"]}, {"severity": ["high", "critical"]},
           {"framework": "cis-docker-1.8.0", "control": "5.5"}, {"resource_type": "container", "status": "fail"},
           {"host": "beta"}, {"check": PIDS}]


def rows(qs) -> list[tuple]:
    return [tuple(getattr(r, k) for k in KEY) for r in qs]


def assert_same(**filters) -> None:
    """Now (read model) == the stored results at this moment: every row, value and position."""
    for ordering in (None, ["host", "-severity"], ["-failing_since"]):
        assert rows(findings(ordering=ordering, **filters)) == rows(
            findings(at=timezone.now(), ordering=ordering, **filters)), (filters, ordering)
    assert verdict_counts(findings(**filters)) == verdict_counts(findings(at=timezone.now(), **filters))


@pytest.fixture
def fleet():
    alpha, beta, gamma = (DockerHost.objects.create(name=n, url=f"unix:///{n}.sock") for n in ("alpha", "beta", "gamma"))
    scan_at(alpha, SNAPSHOT, NOW - 3 * DAY)
    scan_at(alpha, without(SNAPSHOT, "rec-privileged"), NOW - 2 * DAY)
    scan_at(beta, SNAPSHOT, NOW - 2 * DAY)
    scan_at(gamma, renamed(SNAPSHOT, ["g-1", "g-2", "g-3"]), NOW - DAY)
    exception(PIDS, "rec-*", approved=NOW - 4 * DAY, expires=NOW + 30 * DAY)
    exception(PRIV, "", host=beta, approved=NOW - 4 * DAY, expires=NOW + 30 * DAY)
    manual = Check.objects.filter(automated=False).values_list("id", flat=True).first()
    Attestation.objects.create(check_id=manual, statement="reviewed", attested_at=NOW - 5 * DAY,
                               valid_until=NOW + 60 * DAY)
    return alpha, beta, gamma


@pytest.mark.parametrize("filters", QUERIES)
def test_now_answers_what_the_stored_results_answer(fleet, filters):
    assert_same(**filters)


def test_it_follows_scans_that_replace_results_and_writes_nothing_for_an_unchanged_scan(fleet):
    alpha, beta, _ = fleet
    assert_same()
    scan_at(beta, without(SNAPSHOT, "rec-privileged", "rec-pids"), NOW - DAY / 2)
    assert not findings(host="beta", resource="rec-privileged").exists()
    assert_same()
    before = set(CurrentFinding.objects.filter(host=alpha).values_list("pk", flat=True))
    scan_at(alpha, without(SNAPSHOT, "rec-privileged"), NOW - DAY / 4)  # the same verdicts again
    assert set(CurrentFinding.objects.filter(host=alpha).values_list("pk", flat=True)) == before
    assert {r.scan_id for r in findings(host="alpha")} == {alpha.scans.order_by("-finished_at").first().pk}
    assert_same()


def test_exceptions_and_attestations_apply_as_they_change_and_lapse(fleet):
    alpha, beta, _ = fleet
    assert_same(status="fail")
    late = exception(PIDS, "", host=alpha, approved=NOW - DAY, expires=timezone.now() + timedelta(minutes=5))
    assert_same()  # a new approval: applied on the next read
    assert findings(host="alpha", check=PIDS, status="excepted").exists()
    late.revoked_at, late.state = timezone.now(), "revoked"
    late.save()
    assert_same()
    with time_machine.travel(timezone.now() + 40 * DAY, tick=False):  # the other exceptions lapse by the clock
        assert not findings(status="excepted").exists()
        assert_same()
    Attestation.objects.all().delete()
    assert_same()


def test_archived_hosts_drop_out_and_a_rename_shows(fleet):
    alpha, beta, gamma = fleet
    DockerHost.objects.filter(pk=gamma.pk).update(archived_at=timezone.now(), enabled=False)
    assert not findings(host="gamma").exists()
    assert_same()
    DockerHost.objects.filter(pk=beta.pk).update(name="beta-renamed")
    assert {r.host_name for r in findings(check=PIDS)} == {"alpha", "beta-renamed"}
    assert_same()


def test_a_missing_state_rebuilds_and_a_severity_change_is_followed(fleet):
    CurrentState.objects.all().delete()
    CurrentFinding.objects.all().delete()
    assert_same()  # rebuilt on read
    Check.objects.filter(pk=PIDS).update(severity="critical")
    current.invalidate()  # what sync_catalogs does when a severity changed
    assert_same(severity="critical")
    assert findings(check=PIDS).first().severity == "critical"


def test_a_page_now_costs_the_same_queries_for_more_hosts(fleet, django_assert_max_num_queries,
                                                         django_assert_num_queries):
    findings().count()  # brings the exceptions applied up to date
    with django_assert_max_num_queries(3) as counted:  # the state with its digest, COUNT, page
        page = Paginator(findings(status="fail"), 5).page(2)
        assert len(page.object_list) == 5
    for i in range(6):
        scan_at(DockerHost.objects.create(name=f"more-{i}", url="unix:///m.sock"), SNAPSHOT, NOW - DAY)
    findings().count()
    with django_assert_num_queries(len(counted.captured_queries)):
        assert len(Paginator(findings(status="fail"), 5).page(2).object_list) == 5


def test_rollups_now_answer_what_the_stored_results_answer(fleet):
    from posture.queries import rollups

    frameworks = ["cis-docker-1.8.0", "cis-docker-1.6.0", "soc2-2017"]

    def shape(by_framework):
        return {f: ({k: v for k, v in r.summary().items() if k != "at"}, r.controls) for f, r in by_framework.items()}

    now, stored = rollups.rollups(frameworks), rollups.rollups(frameworks, at=timezone.now())
    assert shape(now) == shape(stored)
    assert now["cis-docker-1.8.0"].pair_tally.get("excepted")  # the exceptions of the fixture do move counts
    per_host = rollups.host_rollups(frameworks)
    assert {h: shape(r) for h, r in per_host.items()} == {
        h: shape(r) for h, r in rollups.host_rollups(frameworks, at=timezone.now()).items()}


def test_postgresql_runs_without_jit_unless_the_url_asks(tmp_path):
    """JIT compiling costs more than the read side's short indexed queries take."""
    import os
    import subprocess
    import sys

    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW jit")
        assert cur.fetchone()[0] == "off"
    url = os.environ["DATABASE_URL"] + "?options=-c%20jit%3Don"
    out = subprocess.run([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = "
                          "'posture.settings'; django.setup(); from django.conf import settings; "
                          "print(settings.DATABASES['default']['OPTIONS'])"],
                         cwd=settings.BASE_DIR, env={**os.environ, "DATABASE_URL": url, "POSTURE_VAR_DIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=60)
    assert "jit=on" in out.stdout and "jit=off" not in out.stdout, out.stderr

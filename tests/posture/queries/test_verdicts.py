"""Verdicts read in SQL (posture/queries/verdicts.py): each host's current scan at T, the
exceptions and attestations in force at T, failing since, filters, ordering and pagination
in the database, and query counts that do not grow with hosts or results."""

from __future__ import annotations

import copy
import fnmatch
from datetime import datetime, timedelta

import pytest
from django.core.paginator import Paginator
from django.db import connection
from django.utils import timezone

from posture.jobs.evaluate import check_controls, evaluate_scan
from posture.models import Attestation, Check, ControlException, DockerHost, ExceptionState, ScanRun
from posture.queries.verdicts import (
    ROW_COLUMNS,
    ROWS_WORK_MEM,
    SEVERITY_ORDER,
    STATUS_ORDER,
    finding_rows,
    findings,
    verdict_counts,
    verdict_moment,
)
from tests.posture.conftest import SNAPSHOT, stored_scan

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 3, 2, 12, 0))
DAY = timedelta(days=1)
PRIV = "container.privileged_disabled"
PIDS = "container.pids_limited"  # fails on every running container of SNAPSHOT


def scan_at(host: DockerHost, snapshot: dict, when: datetime) -> ScanRun:
    """A succeeded scan of ``snapshot`` that finished at ``when``, evaluated (in order)."""
    scan = stored_scan(host, snapshot)
    ScanRun.objects.filter(pk=scan.pk).update(started_at=when, finished_at=when)
    scan.refresh_from_db()
    evaluate_scan(scan)
    return scan


def without(snapshot: dict, *names: str) -> dict:
    snap = copy.deepcopy(snapshot)
    snap["containers"] = [c for c in snap["containers"] if c["name"] not in names]
    return snap


def renamed(snapshot: dict, names: list[str]) -> dict:
    snap = copy.deepcopy(snapshot)
    for container, name in zip(snap["containers"], names, strict=False):
        container["name"] = name
    return snap


def exception(check: str, pattern: str = "", host: DockerHost | None = None, *, approved: datetime = T0 - DAY,
              expires: datetime = T0 + 3000 * DAY, revoked: datetime | None = None) -> ControlException:
    return ControlException.objects.create(
        check_id=check, host=host, resource_pattern=pattern, justification="accepted risk", expires_at=expires,
        state=ExceptionState.REVOKED if revoked else ExceptionState.APPROVED, decided_at=approved, revoked_at=revoked)


def verdict(at: datetime, host: DockerHost, check: str = PRIV, resource: str = "rec-privileged"):
    return findings([host], at, check=check, resource=resource).get()


@pytest.fixture
def hosts():
    return [DockerHost.objects.create(name=name, url=f"unix:///{name}.sock") for name in ("alpha", "beta")]


def test_it_reads_each_hosts_current_scan_at_any_moment(hosts):
    alpha, beta = hosts
    first = scan_at(alpha, SNAPSHOT, T0)
    fixed = scan_at(alpha, without(SNAPSHOT, "rec-privileged"), T0 + DAY)
    other = scan_at(beta, SNAPSHOT, T0 + DAY / 2)
    failing = findings(check=PRIV, status="fail")
    # Now: alpha's fix is current, beta still runs the privileged container.
    assert [(r.host_name, r.scan_id, r.resource) for r in failing] == [("beta", other.pk, "rec-privileged")]
    # Before alpha's fix, both failed; before beta's first scan, only alpha had verdicts.
    at_noon = findings(at=T0 + DAY * 0.75, check=PRIV, status="fail")
    assert [(r.host_name, r.scan_id) for r in at_noon] == [("alpha", first.pk), ("beta", other.pk)]
    assert [r.host_id for r in findings(at=T0 + timedelta(hours=1), check=PRIV, status="fail")] == [alpha.pk]
    assert not findings(at=T0 - timedelta(seconds=1)).exists()
    # Given scans instead of hosts: a past scan is read as it is, whatever is current.
    assert [r.scan_id for r in findings(scans=[first], check=PRIV, status="fail")] == [first.pk]
    assert findings([beta], check=PRIV).count() == len(SNAPSHOT["containers"])
    assert {r.scanned_at for r in findings([alpha])} == {fixed.finished_at}


def test_it_leaves_archived_hosts_out_unless_asked(hosts):
    alpha, beta = hosts
    scan_at(alpha, SNAPSHOT, T0)
    scan_at(beta, SNAPSHOT, T0)
    DockerHost.objects.filter(pk=beta.pk).update(archived_at=T0 + DAY, enabled=False)
    assert {r.host_name for r in findings(check=PRIV)} == {"alpha"}
    assert {r.host_name for r in findings(DockerHost.objects.all(), check=PRIV)} == {"alpha", "beta"}


def test_it_applies_the_exceptions_in_force_at_the_moment_read(hosts):
    """Approved after the scan, expiring, revoked: each moment sees what was in force then."""
    alpha, beta = hosts
    scan_at(alpha, SNAPSHOT, T0)
    scan_at(beta, SNAPSHOT, T0)
    later = exception(PRIV, "rec-priv*", alpha, approved=T0 + DAY, expires=T0 + 5 * DAY)
    revoked = exception(PIDS, "rec-sshd", None, approved=T0 + DAY, revoked=T0 + 3 * DAY)
    # Before approval: a plain failure.
    before = verdict(T0 + DAY / 2, alpha)
    assert (before.verdict, before.status, before.exception_id) == ("fail", "fail", None)
    # While approved: excepted, naming the exception; the stored status stays.
    during = verdict(T0 + 2 * DAY, alpha)
    assert (during.verdict, during.status, during.exception_id) == ("excepted", "fail", later.pk)
    # Scoped to alpha: beta's same failure is untouched. Expired: a failure again.
    assert verdict(T0 + 2 * DAY, beta).verdict == "fail"
    assert verdict(T0 + 5 * DAY, alpha).verdict == "fail"  # expires_at is exclusive
    # A revoked exception held from approval to revocation, for every host.
    for host in hosts:
        assert verdict(T0 + 2 * DAY, host, PIDS, "rec-sshd").exception_id == revoked.pk
        assert verdict(T0 + 3 * DAY, host, PIDS, "rec-sshd").verdict == "fail"
        assert verdict(T0 + 2 * DAY, host, PIDS, "rec-default").verdict == "fail"  # another resource
    # A passing result is never "excepted".
    exception(PRIV, "*", None)
    assert verdict(T0 + 2 * DAY, alpha, PRIV, "rec-hardened").verdict == "pass"


def test_it_names_the_lowest_exception_when_several_match(hosts):
    scan_at(hosts[0], SNAPSHOT, T0)
    first, _second = exception(PRIV, "rec-*"), exception(PRIV, "*privileged")
    assert verdict(T0 + DAY, hosts[0]).exception_id == first.pk
    assert findings(at=T0 + DAY, status="excepted").count() == 1


TRICKY_NAMES = ["web-1", "web-10", "Web-1", "db.1", "a[b]c", "line\nbreak", "back\\slash", "ünï*code"]
PATTERNS = ["web-?", "web-*", "[!w]*", "db.1", "db?1", "a[[]b]c", "a[b]c", "*\n*", "line?break", "[a-c]*",
            "[z-a]*", "*", "", "web-[0-9]", "back\\slash", "back[\\]slash", "ünï[*]code", "*[!]", "[]]", "[!]a]*",
            "*1", "W*", "[^w]*", ".*", "web-1$", "[", "a[", "*-*"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_it_matches_exception_patterns_in_sql_exactly_as_matches(hosts, pattern):
    """Both ways: every row SQL excepts is one ``ControlException.matches`` (and fnmatch)
    accepts, and every failing row they accept is excepted in SQL."""
    alpha, beta = hosts
    scan_at(alpha, renamed(SNAPSHOT, TRICKY_NAMES), T0)
    scan_at(beta, renamed(SNAPSHOT, TRICKY_NAMES), T0)
    exc = exception(PIDS, pattern, alpha)
    rows = list(findings(DockerHost.objects.all(), T0 + DAY, check=PIDS, resource_type="container"))
    failing = [r for r in rows if r.status == "fail"]
    assert len(failing) >= 6
    sql = {(r.host_id, r.resource) for r in rows if r.verdict == "excepted"}
    python = {(r.host_id, r.resource) for r in failing if exc.matches(r.host_id, PIDS, r.resource)}
    assert sql == python
    assert python == {(alpha.pk, r.resource) for r in failing
                      if r.host_id == alpha.pk and fnmatch.fnmatchcase(r.resource, pattern or "*")}


def test_it_turns_manual_into_pass_only_while_an_attestation_is_valid(hosts, operator):
    alpha, beta = hosts
    scan_at(alpha, SNAPSHOT, T0)
    scan_at(beta, SNAPSHOT, T0)
    check, resource = "manual.host_os_hardened", "host"
    att = Attestation.objects.create(check_id=check, host=alpha, statement="CIS Debian L1", attested_by=operator,
                                     attested_at=T0 + DAY, valid_until=T0 + 3 * DAY)
    assert verdict(T0 + DAY / 2, alpha, check, resource).verdict == "manual"
    during = verdict(T0 + DAY, alpha, check, resource)
    assert (during.verdict, during.status, during.attestation_id) == ("pass", "manual", att.pk)
    assert verdict(T0 + DAY, beta, check, resource).verdict == "manual"  # attested for alpha only
    assert verdict(T0 + 3 * DAY, alpha, check, resource).verdict == "manual"  # valid_until is exclusive
    glob = Attestation.objects.create(check_id=check, statement="fleet-wide", attested_at=T0, valid_until=T0 + 9 * DAY)
    assert verdict(T0 + 4 * DAY, beta, check, resource).attestation_id == glob.pk
    # Attestations satisfy manual results only, never a failure.
    Attestation.objects.create(check_id=PRIV, statement="no", attested_at=T0, valid_until=T0 + 9 * DAY)
    assert verdict(T0 + DAY, alpha).verdict == "fail"


def test_it_says_since_when_a_failure_has_lasted_at_any_moment(hosts):
    """Fails at T0 and T0+1d, fixed at T0+2d, fails again at T0+3d."""
    alpha = hosts[0]
    scans = [scan_at(alpha, snap, T0 + i * DAY) for i, snap in
             enumerate([SNAPSHOT, SNAPSHOT, without(SNAPSHOT, "rec-privileged"), SNAPSHOT])]
    assert verdict(T0 + 4 * DAY, alpha).failing_since == T0 + 3 * DAY  # the open window
    assert verdict(T0 + DAY, alpha).failing_since == T0  # the window closed later, at T0+2d
    assert findings(scans=[scans[1]], check=PRIV, resource="rec-privileged").get().failing_since == T0
    assert not findings([alpha], T0 + 2 * DAY, check=PRIV, resource="rec-privileged").exists()
    assert verdict(T0 + 4 * DAY, alpha, PRIV, "rec-hardened").failing_since is None  # passing
    # New since: failures whose window opened at or after the moment.
    assert findings(new_since=T0 + 3 * DAY, check=PRIV).count() == 1
    assert findings(at=T0 + DAY, new_since=T0 + DAY / 2, check=PRIV).count() == 0
    assert findings(at=T0 + DAY, new_since=T0, check=PRIV).count() == 1


def test_it_filters_by_framework_control_host_resource_check_status_and_severity_in_sql(hosts):
    alpha, beta = hosts
    scan_at(alpha, SNAPSHOT, T0)
    scan_at(beta, without(SNAPSHOT, "rec-privileged", "rec-sshd"), T0)
    exception(PIDS, "rec-default", beta)
    at = T0 + DAY
    every = list(findings(at=at))
    severity = dict(Check.objects.values_list("id", "severity"))
    mapping = check_controls()

    def expect(pred) -> list[tuple]:
        return sorted((r.host_id, r.check_id, r.resource_type, r.resource) for r in every if pred(r))

    def got(**filters) -> list[tuple]:
        rows = findings(at=at, **filters)
        assert rows.count() == len(list(rows))
        return sorted((r.host_id, r.check_id, r.resource_type, r.resource) for r in rows)

    # Hand-checked: CIS 5.5 fails on alpha's privileged container only.
    assert got(framework="cis-docker-1.8.0", control="5.5", status="fail") == [
        (alpha.pk, PRIV, "container", "rec-privileged")]
    # A check supporting two controls of a framework lists each result once.
    assert got(framework="soc2-2017", check=PRIV) == expect(lambda r: r.check_id == PRIV)
    assert got(framework="soc2-2017") == expect(lambda r: any(s == "soc2-2017" for s, _ in mapping[r.check_id]))
    assert got(framework="cis-docker-1.6.0", control="2.7") == expect(
        lambda r: ("cis-docker-1.6.0", "2.7") in mapping[r.check_id])
    assert got(host="beta") == got(host=str(beta.pk)) == expect(lambda r: r.host_id == beta.pk)
    assert got(resource_type=["image", "daemon"]) == expect(lambda r: r.resource_type in ("image", "daemon"))
    assert got(resource="rec-sshd") == expect(lambda r: r.resource == "rec-sshd")
    assert got(resource_contains="REC-S") == expect(lambda r: "rec-s" in r.resource)
    assert got(status=["excepted"]) == [(beta.pk, PIDS, "container", "rec-default")]
    assert got(status=["fail", "error"]) == expect(lambda r: r.verdict in ("fail", "error"))
    assert got(status="pass") == expect(lambda r: r.verdict == "pass")
    assert got(severity=["critical", "high"]) == expect(lambda r: severity[r.check_id] in ("critical", "high"))
    assert got(severity="critical", host="alpha", status="fail") == expect(
        lambda r: severity[r.check_id] == "critical" and r.host_id == alpha.pk and r.verdict == "fail")


def test_it_orders_with_a_stable_tiebreak_and_paginates_in_the_database(hosts, django_assert_num_queries):
    for host in hosts:
        scan_at(host, SNAPSHOT, T0)
    exception(PIDS, "rec-s*")
    qs = findings(at=T0 + DAY)
    rows = list(qs)
    ranks = [(STATUS_ORDER.index(r.verdict), SEVERITY_ORDER.index(r.severity), r.check_id, r.host_name,
              r.resource_type, r.resource) for r in rows]
    assert ranks == sorted(ranks)  # default: worst status, worst severity, check, host, resource
    assert len({(r.scan_id, r.id) for r in rows}) == len(rows)
    pages = Paginator(findings(at=T0 + DAY), 37)
    with django_assert_num_queries(2):  # COUNT, then one LIMIT/OFFSET page
        page = pages.page(3)
        assert len(page.object_list) == 37
    walked = [(r.scan_id, r.id) for n in pages.page_range for r in pages.page(n).object_list]
    assert walked == [(r.scan_id, r.id) for r in rows]
    since = list(findings(at=T0 + DAY, ordering=["-failing_since", "host"], status="fail"))
    assert [r.host_name for r in since] == sorted(r.host_name for r in since)
    by_resource = [(r.resource_type, r.resource) for r in findings(at=T0 + DAY, ordering=["-resource"])]
    assert by_resource == sorted(by_resource, reverse=True)
    with pytest.raises(ValueError, match="unknown ordering"):
        findings(ordering=["colour"])


def test_it_keeps_the_findings_of_a_check_retired_from_the_catalog(hosts):
    scan_at(hosts[0], SNAPSHOT, T0)
    before = findings(at=T0 + DAY).count()
    Check.objects.filter(pk=PRIV).delete()  # load_catalog after the check left the code
    rows = findings(at=T0 + DAY, check=PRIV)
    assert findings(at=T0 + DAY).count() == before
    assert {(r.severity, r.title) for r in rows} == {(None, None)} and rows.count() == len(SNAPSHOT["containers"])


def test_it_reads_a_past_scan_as_of_its_own_time_by_default(hosts):
    alpha = hosts[0]
    old = scan_at(alpha, SNAPSHOT, T0)
    new = scan_at(alpha, SNAPSHOT, T0 + DAY)
    assert verdict_moment(old) == T0
    assert timezone.now() - verdict_moment(new) < timedelta(minutes=5)


def test_it_counts_verdicts_after_exceptions(hosts):
    scan = scan_at(hosts[0], SNAPSHOT, T0)
    stored = scan.evaluations.get().result_set.counts
    exception(PIDS, "rec-*")
    counts = verdict_counts(findings(at=T0 + DAY))
    assert counts["excepted"] == 7 and counts["fail"] == stored["fail"] - 7
    assert sum(counts.values()) == sum(stored.values()) and list(counts) == [s for s in STATUS_ORDER if s in counts]


@pytest.mark.parametrize("n_hosts", [2, 20])
def test_it_answers_for_a_fleet_in_the_same_number_of_queries(n_hosts, django_assert_num_queries):
    """2 or 20 hosts, with exceptions and attestations in force: a page and its count are
    two queries, the counts per verdict one."""
    for i in range(n_hosts):
        scan_at(DockerHost.objects.create(name=f"h{i:02}", url="unix:///x.sock"), SNAPSHOT, T0)
    exception(PIDS, "rec-s*")
    Attestation.objects.create(check_id="manual.host_os_hardened", statement="ok", attested_at=T0,
                               valid_until=T0 + 9 * DAY)
    with django_assert_num_queries(3):
        page = Paginator(findings(at=T0 + DAY, status=["fail", "excepted"], severity="high"), 5).page(2)
        assert len(page.object_list) == 5
        counts = verdict_counts(findings(at=T0 + DAY))
    assert counts["excepted"] == 2 * n_hosts


def test_its_export_rows_are_the_querysets_rows(hosts, operator, django_assert_num_queries):
    """``finding_rows`` (one set-based query on PostgreSQL, tuples from a server-side cursor)
    answers exactly ``findings(...).values_list(*ROW_COLUMNS)``: the lowest of several
    exceptions, host-scoped, revoked and expired ones, attestations for a host or every host,
    failing since from the open window or from one closed later, a retired check, several
    scans of a host, every ordering and the stored-column filters."""
    alpha, beta = hosts
    fixed = without(SNAPSHOT, "rec-privileged")
    scans = [scan_at(alpha, snap, T0 + i * DAY) for i, snap in enumerate([SNAPSHOT, SNAPSHOT, fixed, SNAPSHOT])]
    scans.append(scan_at(beta, renamed(SNAPSHOT, TRICKY_NAMES), T0 + DAY / 2))
    exception(PIDS, "rec-*", alpha), exception(PIDS, "*", None), exception(PRIV, "rec-priv*", beta)
    exception(PIDS, "[!r]*", beta, approved=T0 + DAY, revoked=T0 + 2 * DAY)
    exception(PRIV, "*", None, approved=T0, expires=T0 + 2 * DAY)
    check = "manual.host_os_hardened"
    Attestation.objects.create(check_id=check, host=alpha, statement="L1", attested_by=operator,
                               attested_at=T0 + DAY, valid_until=T0 + 3 * DAY)
    Attestation.objects.create(check_id=check, statement="fleet", attested_at=T0, valid_until=T0 + 9 * DAY)
    Check.objects.filter(pk="container.memory_limited").delete()  # retired: no title, no severity
    cases = [dict(), dict(framework="cis-docker-1.8.0"), dict(ordering=("host", "check", "resource")),
             dict(ordering=["-failing_since", "severity"]), dict(ordering=["status", "-resource"]),
             dict(host="beta", resource_type="container", severity=["high", "medium"]),
             dict(check=PRIV, resource_contains="PRIV"), dict(framework="cis-docker-1.8.0", control="5.5")]
    for at in (T0 + DAY * 1.5, T0 + 5 * DAY):
        for kwargs in cases:
            expected = list(findings(scans=scans, at=at, **kwargs).values_list(*ROW_COLUMNS))
            with django_assert_num_queries(3):  # work_mem raised, the rows, work_mem back
                got = list(finding_rows(scans, at, chunk=7, **kwargs))
            assert got == expected, kwargs
    rows = list(finding_rows(ScanRun.objects.filter(host=alpha), T0 + DAY * 1.5))  # scans as a queryset
    assert {r[9] for r in rows} >= {"fail", "excepted", "pass"}
    # Scans 0 and 1 fail in the window closed by scan 2; scan 3 in the window it opened.
    assert {r[12] for r in rows if r[3] == PRIV and r[7] == "rec-privileged"} == {T0, T0 + 3 * DAY}
    with connection.cursor() as cursor:  # the sort's work_mem was the export's only
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] != ROWS_WORK_MEM
    with pytest.raises(ValueError, match="stored columns"):
        next(finding_rows(scans, T0, status="fail"))

"""Per-host summaries (posture/queries/hosts.py) and a host's resources with their failing
checks (posture/queries/groups.py ``resources_with_failures``): the same numbers as the
rollups and the findings, after the exceptions in force at T, in a fixed number of queries."""

from __future__ import annotations

import pytest

from posture.models import DockerHost
from posture.queries.groups import resources_with_failures
from posture.queries.hosts import host_summaries
from posture.queries.rollups import host_rollups
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import DAY, PIDS, PRIV, T0, exception, scan_at, without

pytestmark = pytest.mark.django_db
CIS = "cis-docker-1.8.0"


@pytest.fixture
def fleet():
    hosts = [DockerHost.objects.create(name=n, url=f"unix:///{n}.sock") for n in ("alpha", "beta", "gamma")]
    scan_at(hosts[0], SNAPSHOT, T0)
    scan_at(hosts[1], without(SNAPSHOT, "rec-privileged", "rec-sshd"), T0)
    return hosts  # gamma: never scanned


def test_it_summarises_each_host_as_its_rollup_and_its_failing_findings_say(fleet):
    alpha, beta, gamma = fleet
    exception(PRIV, "rec-privileged", alpha, approved=T0 + DAY)
    exception(PIDS, "rec-s*", approved=T0 + DAY)
    for at in (T0 + DAY / 2, T0 + 2 * DAY):  # before and after the exceptions
        summaries = host_summaries(fleet, at)
        assert set(summaries) == {alpha.pk, beta.pk}  # never scanned: no summary, never a pass
        for host in (alpha, beta):
            mine = summaries[host.pk]
            rollup = host_rollups([CIS], [host], at)[host.pk][CIS]
            assert (mine.passing, mine.failing, mine.excepted) == (rollup.pair_tally.get("pass", 0),
                                                                   rollup.pair_tally.get("fail", 0),
                                                                   rollup.pair_tally.get("excepted", 0))
            assert (mine.score, mine.coverage) == (rollup.score, rollup.coverage)
            assert mine.failing_findings == findings([host], at, status="fail").count()
    assert host_summaries(fleet, T0 + 2 * DAY)[alpha.pk].excepted >= 1  # 5.5: its only failure excepted


@pytest.mark.parametrize("n_hosts", [2, 12])
def test_it_summarises_any_number_of_hosts_in_a_fixed_number_of_queries(n_hosts, django_assert_num_queries):
    hosts = [DockerHost.objects.create(name=f"h{i:02}", url="unix:///x.sock") for i in range(n_hosts)]
    for host in hosts:
        scan_at(host, SNAPSHOT, T0)
    exception(PIDS, "rec-s*")
    with django_assert_num_queries(7):  # the key, the result sets' control counts (read once per process) ...
        assert len(host_summaries(hosts, T0 + DAY)) == n_hosts
    with django_assert_num_queries(3):  # ... then the rollups from the cache, after their key (2), and the failing results
        assert len(host_summaries(hosts, T0 + DAY)) == n_hosts



def test_it_summarises_hosts_now_from_the_read_model_and_its_cached_answer(fleet, django_assert_num_queries):
    """Now (no moment) is read as the overview reads it: the read model, whose cache key a
    second page view shares (a moment of "now" passed explicitly would be a new key each
    time, computed again and cached for nobody)."""
    alpha, beta, _gamma = fleet
    summaries = host_summaries(fleet)
    for host in (alpha, beta):
        rollup = host_rollups([CIS], [host])[host.pk][CIS]
        assert (summaries[host.pk].tally, summaries[host.pk].score) == (rollup.pair_tally, rollup.score)
    with django_assert_num_queries(3):  # the read model's key (2), then the failing findings
        assert host_summaries(fleet) == summaries

def test_it_lists_every_resource_with_its_failing_checks_after_exceptions(fleet):
    alpha = fleet[0]
    exception(PRIV, "rec-privileged", alpha, approved=T0 + DAY)
    for at in (T0 + DAY / 2, T0 + 2 * DAY):
        groups = {(g.resource_type, g.resource): g for g in resources_with_failures(findings([alpha], at))}
        every = findings([alpha], at)
        assert set(groups) == set(every.values_list("resource_type", "resource"))
        failing = {(r.resource_type, r.resource, r.check_id, r.pk) for r in findings([alpha], at, status="fail")}
        listed = {(g.resource_type, g.resource, c.check_id, c.result_id) for g in groups.values() for c in g.failing}
        assert listed == failing
        privileged = groups[("container", "rec-privileged")]
        assert (PRIV in {c.check_id for c in privileged.failing}) == (at < T0 + DAY)
        assert privileged.counts.get("excepted", 0) == (0 if at < T0 + DAY else 1)
        assert sum(privileged.counts.values()) == privileged.total == every.filter(resource="rec-privileged").count()
    check = next(c for g in resources_with_failures(findings([alpha], T0)) for c in g.failing if c.check_id == PRIV)
    assert ("cis-docker-1.8.0", "5.5") in check.controls


def test_it_reads_a_hosts_resources_in_two_queries(fleet, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert len(resources_with_failures(findings([fleet[0]], T0 + DAY))) > 8

"""Control rollups (posture/queries/rollups.py): per host and fleet-wide at T, from the
result sets' control counts adjusted for the exceptions and attestations in force at T;
the same statuses as the findings behind them and as the daily posture rows."""

from __future__ import annotations

from collections import defaultdict

import pytest

from posture.jobs.evaluate import check_controls
from posture.jobs.history import day_of, rebuild_history
from posture.models import Attestation, Control, DailyPosture, DockerHost
from posture.queries.rollups import (
    control_status,
    coverage,
    fleet_and_hosts,
    host_rollups,
    rollup,
    rollups,
    score,
)
from posture.queries.verdicts import findings
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import DAY, PIDS, PRIV, T0, exception, scan_at, without

pytestmark = pytest.mark.django_db

FRAMEWORKS = ("cis-docker-1.8.0", "cis-docker-1.6.0", "soc2-2017")


@pytest.fixture
def fleet():
    """alpha: SNAPSHOT (8 containers, rec-privileged among them); beta: without the
    privileged and sshd containers; gamma: SNAPSHOT again."""
    hosts = [DockerHost.objects.create(name=n, url=f"unix:///{n}.sock") for n in ("alpha", "beta", "gamma")]
    scan_at(hosts[0], SNAPSHOT, T0)
    scan_at(hosts[1], without(SNAPSHOT, "rec-privileged", "rec-sshd"), T0)
    scan_at(hosts[2], SNAPSHOT, T0)
    return hosts


def test_it_defines_status_score_and_coverage_once():
    assert control_status({"pass": 3, "manual": 1, "excepted": 2}) == "manual"
    assert control_status({"not_applicable": 2}) == "not_applicable"
    assert control_status({}) == control_status(None) == "not_assessed"
    tally = {"pass": 3, "fail": 1, "excepted": 1, "manual": 1, "not_assessed": 1, "not_applicable": 2}
    assert score(tally) == 3 / 4  # excepted is neither passing nor failing
    assert coverage(tally) == 5 / 7  # assessed (pass, fail, excepted) / all but not_applicable
    assert score({"manual": 2}) is None and coverage({"not_applicable": 1}) is None


def test_it_rolls_one_host_up_by_hand(fleet):
    alpha = fleet[0]
    cis = rollup("cis-docker-1.8.0", [alpha], T0 + DAY)
    five_five = cis.by_ref["5.5"]  # privileged: fails on rec-privileged, passes on the 7 others
    assert (five_five.status, five_five.counts, five_five.hosts) == ("fail", {"fail": 1, "pass": 7}, {"fail": 1})
    assert five_five.title and five_five.supportable and five_five.hosts_failing == 1
    assert cis.by_ref["1.2.1"].status == "manual"  # a manual recommendation nobody attested
    assert len(cis.controls) == 118 and cis.hosts == 1
    assert sum(cis.tally.values()) == 118 and cis.tally == cis.pair_tally
    soc2 = rollup("soc2-2017", [alpha], T0 + DAY).by_ref
    assert soc2["CC1.1"].status == "not_assessed" and soc2["CC1.1"].counts == {} and not soc2["CC1.1"].supportable


def test_it_sums_the_fleet_and_counts_the_hosts_failing_each_control(fleet):
    cis = rollup("cis-docker-1.8.0", at=T0 + DAY)
    five_five = cis.by_ref["5.5"]
    assert five_five.counts == {"fail": 2, "pass": 7 + 6 + 7}
    assert five_five.hosts == {"fail": 2, "pass": 1} and five_five.hosts_failing == 2
    assert cis.hosts == 3 and sum(cis.pair_tally.values()) == 3 * 118
    per_host = host_rollups(["cis-docker-1.8.0"], at=T0 + DAY)
    assert sorted(per_host) == sorted(h.pk for h in fleet)
    assert per_host[fleet[1].pk]["cis-docker-1.8.0"].by_ref["5.5"].status == "pass"
    # The fleet's score is over (host, control) pairs: the sum of the hosts' tallies.
    summed: dict[str, int] = defaultdict(int)
    for by_framework in per_host.values():
        for status, n in by_framework["cis-docker-1.8.0"].tally.items():
            summed[status] += n
    assert dict(summed) == cis.pair_tally and cis.score == score(summed) and cis.coverage == coverage(summed)
    # Before any scan there is nothing, not a pass.
    empty = rollup("cis-docker-1.8.0", at=T0 - DAY)
    assert empty.hosts == 0 and empty.score is None and empty.by_ref["5.5"].status == "not_assessed"


def test_it_applies_the_exceptions_and_attestations_in_force_at_the_moment(fleet):
    alpha = fleet[0]
    exception(PRIV, "rec-priv*", alpha, approved=T0 + DAY, expires=T0 + 3 * DAY)
    Attestation.objects.create(check_id="manual.host_os_hardened", host=alpha, statement="hardened",
                               attested_at=T0 + DAY, valid_until=T0 + 2 * DAY)

    def alpha_at(at, ref):
        return rollup("cis-docker-1.8.0", [alpha], at).by_ref[ref]

    assert alpha_at(T0, "5.5").counts == {"fail": 1, "pass": 7}
    during = alpha_at(T0 + DAY, "5.5")
    assert (during.status, during.counts) == ("excepted", {"excepted": 1, "pass": 7})
    assert alpha_at(T0 + 3 * DAY, "5.5").status == "fail"  # expired
    assert alpha_at(T0 + DAY, "1.2.1").status == "pass" and alpha_at(T0 + 2 * DAY, "1.2.1").status == "manual"
    fleet_wide = rollup("cis-docker-1.8.0", at=T0 + DAY).by_ref["5.5"]
    assert fleet_wide.counts == {"fail": 1, "excepted": 1, "pass": 20} and fleet_wide.hosts == {
        "fail": 1, "excepted": 1, "pass": 1}
    # The same control in every framework the check supports.
    assert rollup("cis-docker-1.6.0", [alpha], T0 + DAY).by_ref["5.5"].status == "excepted"
    assert rollup("soc2-2017", [alpha], T0 + DAY).by_ref["CC6.8"].counts.get("excepted") == 1


def test_it_agrees_with_the_findings_behind_every_control(fleet):
    """Counts from control_counts + adjustments equal the findings read in SQL, control by
    control, in every framework."""
    exception(PIDS, "rec-s*", approved=T0)
    exception(PRIV, "", fleet[2], approved=T0)
    Attestation.objects.create(check_id="manual.content_trust", statement="ok", attested_at=T0,
                               valid_until=T0 + 9 * DAY)
    at = T0 + DAY
    expected: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for check_id, verdict in findings(at=at).values_list("check_id", "verdict"):
        for slug, ref in check_controls()[check_id]:
            expected[(slug, ref)][verdict] += 1
    for slug, result in rollups(FRAMEWORKS, at=at).items():
        for row in result.controls:
            assert row.counts == dict(expected.get((slug, row.ref), {})), (slug, row.ref)
            assert row.status == control_status(row.counts)


def test_it_agrees_with_the_daily_posture_written_at_evaluation(fleet):
    """DailyPosture rows hold the controls per status of each host's day, with what was in
    force when the scan finished: the rollup at that moment says the same."""
    exception(PIDS, "*", fleet[1], approved=T0 - DAY)
    Attestation.objects.create(check_id="manual.host_os_hardened", statement="ok", attested_at=T0 - DAY,
                               valid_until=T0 + 9 * DAY)
    for host in fleet:  # rebuild: the rows above did not exist when the scans were evaluated
        rebuild_history(host)
    per_host = host_rollups(FRAMEWORKS, at=T0)
    rows = DailyPosture.objects.filter(day=day_of(T0))
    assert rows.count() == len(fleet) * len(FRAMEWORKS)
    assert rows.get(host=fleet[1], framework="cis-docker-1.8.0").controls_excepted == 1  # 5.29
    for row in rows:
        tally = per_host[row.host_id][row.framework].tally
        assert {s: getattr(row, f"controls_{s}") for s in tally} == tally
        assert sum(getattr(row, f) for f in dir(row) if f.startswith("controls_")) == Control.objects.filter(
            framework__slug=row.framework).count()


def test_the_overview_reads_the_fleet_and_each_hosts_tally_from_one_computation(fleet):
    """``fleet_and_hosts`` (the overview's figures) equals ``rollups`` and ``host_rollups``'
    tallies of the same fleet and moment, with exceptions for one host and for every host and
    an attestation for every host in force; with no host scanned the controls are listed."""
    exception(PRIV, "rec-priv*", fleet[0], approved=T0 - DAY)
    exception(PIDS, "rec-s*", None, approved=T0 - DAY)
    Attestation.objects.create(check_id="manual.host_os_hardened", statement="ok", attested_at=T0 - DAY,
                               valid_until=T0 + 9 * DAY)
    whole, tallies = fleet_and_hosts(FRAMEWORKS, at=T0 + DAY)
    assert whole == rollups(FRAMEWORKS, at=T0 + DAY)
    assert tallies == {h: {f: r.tally for f, r in per.items()}
                       for h, per in host_rollups(FRAMEWORKS, at=T0 + DAY).items()}
    assert whole["cis-docker-1.8.0"].by_ref["5.29"].counts.get("excepted", 0) >= 2  # on alpha and gamma
    before, none = fleet_and_hosts(["soc2-2017"], at=T0 - 9 * DAY)
    assert none == {} and before["soc2-2017"].controls and before["soc2-2017"].hosts == 0


def test_it_rolls_up_given_scans_instead_of_current_ones(fleet):
    alpha = fleet[0]
    old = alpha.scans.get()
    scan_at(alpha, without(SNAPSHOT, "rec-privileged"), T0 + DAY)
    assert rollup("cis-docker-1.8.0", [alpha], T0 + 2 * DAY).by_ref["5.5"].status == "pass"
    assert rollup("cis-docker-1.8.0", scans=[old], at=T0 + 2 * DAY).by_ref["5.5"].status == "fail"


@pytest.mark.parametrize("n_hosts", [2, 20])
def test_it_rolls_a_fleet_up_in_the_same_number_of_queries(n_hosts, django_assert_num_queries):
    for i in range(n_hosts):
        scan_at(DockerHost.objects.create(name=f"h{i:02}", url="unix:///x.sock"),
                SNAPSHOT if i % 2 else without(SNAPSHOT, "rec-privileged"), T0)
    exception(PIDS, "rec-s*")
    Attestation.objects.create(check_id="manual.host_os_hardened", statement="ok", attested_at=T0,
                               valid_until=T0 + 9 * DAY)
    # The key (the scans' evaluations, the exceptions' digest), the result sets' control
    # counts (read once: query 1b), the exceptions and attestations applied, the controls.
    with django_assert_num_queries(6):
        result = rollups(FRAMEWORKS, at=T0 + DAY)
    with django_assert_num_queries(5):  # ... the counts then decoded from the process's cache
        per_host = host_rollups(["soc2-2017"], at=T0 + DAY)
    assert result["cis-docker-1.8.0"].by_ref["5.5"].hosts_failing == n_hosts // 2 and len(per_host) == n_hosts
    assert result["cis-docker-1.8.0"].by_ref["5.29"].counts["excepted"] == 2 * n_hosts
    with django_assert_num_queries(5):
        rollup("soc2-2017", at=T0 + DAY)
    with django_assert_num_queries(2):  # the same question again: its key, then the cached answer
        assert rollups(FRAMEWORKS, at=T0 + DAY) == result

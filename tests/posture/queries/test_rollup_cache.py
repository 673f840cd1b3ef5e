"""The cached rollups (posture/queries/rollups.py ``read`` / ``cached``): a question asked
again costs its key only, and an answer is never stale. Every change that can move posture
(an evaluation, an exception approved or lapsing, a reevaluation with other verdicts) gives
a new key, and the answer then equals one computed without the cache."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import date, timedelta

import pytest
import time_machine
from django.utils import timezone

from posture.jobs import evaluate as evaluate_jobs
from posture.jobs import exceptions as exception_jobs
from posture.jobs.ingest import load_snapshot
from posture.models import DockerHost, ScanRun
from posture.queries import rollups as rollup_queries
from posture.queries.rollups import fleet_and_hosts, rollups
from posture.queries.summary import failing
from tests.posture.conftest import SNAPSHOT
from tests.posture.queries.test_verdicts import PIDS, PRIV, scan_at, without
from tests.support.seed import SeedSpec, extend, seed

pytestmark = pytest.mark.django_db

FRAMEWORKS = ("cis-docker-1.8.0", "soc2-2017")
DAY = timedelta(days=1)


@contextlib.contextmanager
def uncached():
    """Answers computed afresh: the cache neither read nor written."""
    saved = rollup_queries.cached
    rollup_queries.cached = lambda kind, parts, state, compute, **_: compute()
    try:
        yield
    finally:
        rollup_queries.cached = saved


def shape(answer) -> tuple:
    """A fleet_and_hosts answer without the moment it was read at (now changes each call)."""
    fleet, per_host = answer
    return ({f: (r.controls, r.tally, r.pair_tally, r.hosts) for f, r in fleet.items()}, per_host)


def assert_fresh(**kwargs) -> tuple:
    """The cached answer (asked twice: the second from the cache) equals a computed one."""
    cached = shape(fleet_and_hosts(FRAMEWORKS, **kwargs))
    assert shape(fleet_and_hosts(FRAMEWORKS, **kwargs)) == cached
    with uncached():
        assert shape(fleet_and_hosts(FRAMEWORKS, **kwargs)) == cached
    return cached


@pytest.fixture
def fleet():
    now = timezone.now()
    hosts = [DockerHost.objects.create(name=n, url=f"unix:///{n}.sock") for n in ("alpha", "beta")]
    scan_at(hosts[0], SNAPSHOT, now - 3 * DAY)
    scan_at(hosts[1], without(SNAPSHOT, "rec-sshd"), now - 2 * DAY)
    return hosts


def test_a_question_asked_again_costs_its_key_only(fleet, django_assert_num_queries):
    first = shape(fleet_and_hosts(FRAMEWORKS))
    with django_assert_num_queries(2):  # the read model's freshness, its current scans
        assert shape(fleet_and_hosts(FRAMEWORKS)) == first
    at = timezone.now() - DAY
    before = rollups(FRAMEWORKS, at=at)
    with django_assert_num_queries(2):  # the scans' evaluations then, the exceptions' digest
        assert rollups(FRAMEWORKS, at=at) == before


def test_an_evaluation_replaces_the_cached_answer(fleet):
    alpha = fleet[0]
    before = assert_fresh()
    failing_before = failing(None, None).rows
    scan_at(alpha, without(SNAPSHOT, "rec-privileged"), timezone.now() - DAY)  # recorded: sync_host
    after = assert_fresh()
    assert after != before
    assert after[0]["cis-docker-1.8.0"][0][0].framework == "cis-docker-1.8.0"
    with uncached():
        fresh = failing(None, None).rows
    assert failing(None, None).rows == fresh != failing_before


def test_a_seeded_day_of_scans_gives_a_new_key_and_the_fresh_answer(db):
    """On a seeded fleet (tests/support/seed.py): a day more of scans, one container
    redeployed on every host."""
    spec = SeedSpec(hosts=2, containers=4, images=2, days=4, seed=5, end=date.today() - 3 * DAY,
                    failed_scans=0, probe_failures=0, exceptions=2, attestations=1)
    seed(spec)
    assert_fresh()
    key = rollup_queries.read().key
    extend(spec, day=spec.days, changed=True)
    assert rollup_queries.read().key != key
    assert_fresh()
    assert_fresh(at=timezone.now() - 2 * DAY)


def test_an_approval_and_a_lapse_replace_the_cached_answer(fleet, operator, admin):
    before = assert_fresh()
    exc = exception_jobs.propose(operator, check_id=PRIV, justification="accepted", expires_at=timezone.now() + 5 * DAY,
                                 resource_pattern="rec-priv*")
    assert assert_fresh() == before  # proposed: nothing applies yet
    exception_jobs.decide(admin, exc, approve=True)
    approved = assert_fresh()
    assert approved != before
    assert approved[0]["cis-docker-1.8.0"][1].get("excepted", 0) > before[0]["cis-docker-1.8.0"][1].get("excepted", 0)
    with time_machine.travel(timezone.now() + 6 * DAY, tick=False):  # it lapses by the clock alone
        assert assert_fresh() == before


def test_a_reevaluation_with_other_verdicts_replaces_a_cached_moment(fleet, monkeypatch):
    alpha = fleet[0]
    at = timezone.now() - DAY
    before = rollups(FRAMEWORKS, at=at)
    failing_before = failing(None, at).rows
    # A check improved (a new engine): the stored evidence now reads as without the privileged container.
    scan = ScanRun.objects.get(host=alpha)
    improved = without(load_snapshot(scan), "rec-privileged")
    monkeypatch.setattr(evaluate_jobs, "engine_version", lambda: "improved")
    evaluate_jobs.evaluate_scan(scan, snapshot=improved)
    after = rollups(FRAMEWORKS, at=at)
    assert after != before
    assert after["cis-docker-1.8.0"].by_ref["5.5"].hosts_failing < before["cis-docker-1.8.0"].by_ref["5.5"].hosts_failing
    with uncached():
        assert rollups(FRAMEWORKS, at=at) == after
        fresh_failing = failing(None, at).rows
    assert failing(None, at).rows == fresh_failing != failing_before
    assert dataclasses.replace(after["soc2-2017"]) == after["soc2-2017"]


def test_a_cached_answer_now_says_the_moment_it_is_read_at(fleet):
    first = rollups(FRAMEWORKS)["soc2-2017"].at
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        assert rollups(FRAMEWORKS)["soc2-2017"].at > first


def test_an_exception_for_another_check_still_reads_the_same(fleet, operator, admin):
    """Sanity of the key: an unrelated edit changes it, and the answer is recomputed equal."""
    before = assert_fresh()
    exc = exception_jobs.propose(operator, check_id=PIDS, justification="accepted", expires_at=timezone.now() + DAY,
                                 resource_pattern="no-such-container")
    exception_jobs.decide(admin, exc, approve=True)
    assert assert_fresh() == before


def test_a_moment_of_the_last_minute_is_not_cached_an_older_one_is(fleet):
    """"Now" asked with an explicit moment would write a key no later read shares."""
    now = timezone.now()
    assert rollup_queries.read(at=now).cacheable is False
    assert rollup_queries.read(at=now - 2 * rollup_queries.RECENT).cacheable is True
    assert rollup_queries.read().cacheable is True

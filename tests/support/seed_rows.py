"""The rows a seeded history needs besides its scans: hosts, the people who act, exceptions
and attestations, each dated when it happened and with the audit events production records.
Written before the scans, so every evaluation sees the exceptions and attestations that were
in force when its scan finished (each only ever applies inside its own period)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from tests.support import seed_docs as docs
from tests.support.seed import Event, SeedSpec, day_start, host_name, probe_enabled


def people():
    from django.contrib.auth.models import Group, User

    def person(username: str, group: str) -> User:
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.groups.add(Group.objects.get_or_create(name=group)[0])
        return user

    return person("seed-operator", "operator"), person("seed-admin", "admin")


def _dated(event, at: datetime, actor, **detail) -> None:
    """An audit event recorded as it was when it happened."""
    import time_machine

    from posture.models.audit import record

    with time_machine.travel(at, tick=False):
        record(event[0], event[1], actor=actor, **detail)


def _episodes(spec: SeedSpec, events: list[Event]) -> list[tuple[int, str, str, int, int]]:
    """(host, container name, fault, first day, last day) of every faulty deployment."""
    out, current = [], {}
    for e in sorted((e for e in events if e.kind in ("deploy", "remove")), key=lambda e: (e.host, e.day)):
        key = (e.host, e.name)
        if key in current:
            fault, since = current.pop(key)
            out.append((e.host, e.name, fault, since, e.day - 1))
        if e.kind == "deploy" and e.detail[1]:
            current[key] = (e.detail[1], e.day)
    out += [(h, n, fault, since, spec.days - 1) for (h, n), (fault, since) in current.items()]
    return sorted(out, key=lambda t: (t[3], t[0], t[1]))


def write_exceptions(spec: SeedSpec, events: list[Event], host_ids: dict[int, int], operator, approver
                     ) -> dict[int, dict[str, Any]]:
    """Exceptions accepting real seeded failures for a while: approved a day or two after a
    fault appeared, expiring 5 to 60 days later (some inside the period), one revoked early,
    one fleet-wide on a pattern. Written as the workflow writes them, dated in the past."""
    import time_machine

    from posture.models import ControlException, ExceptionState

    rng = random.Random(f"{spec.seed}:exceptions")
    episodes = _episodes(spec, events)
    end = day_start(spec, spec.days) - timedelta(minutes=1)
    made: dict[int, dict[str, Any]] = {}
    for n in range(spec.exceptions):
        if episodes and n % 5 != 4:
            host, name, fault, first, _last = episodes[rng.randrange(len(episodes))]
            check_id = rng.choice(sorted(docs.FAULTS[fault].fails))
            host_id, pattern = host_ids[host], rng.choice([name, name.rsplit("-", 1)[0] + "-*"])
            proposed = day_start(spec, first) + timedelta(hours=rng.randrange(8, 18))
        else:  # a fleet-wide acceptance of a template's known failure (no limits on batch jobs)
            check_id, host_id, pattern = docs.MEMORY, None, "app-0*"
            proposed = day_start(spec, rng.randrange(max(1, spec.days // 2))) + timedelta(hours=10)
        decided = min(proposed + timedelta(hours=rng.randrange(1, 48)), end)
        expires = decided + timedelta(days=rng.randrange(5, 61))
        revoked = decided + (expires - decided) / 2 if n == 1 else None
        with time_machine.travel(proposed, tick=False):
            exc = ControlException.objects.create(
                check_id=check_id, host_id=host_id, resource_pattern=pattern, expires_at=expires,
                justification=f"Seeded: accepted while the owning team redeploys ({check_id}).",
                state=ExceptionState.REVOKED if revoked else ExceptionState.APPROVED, proposed_by=operator,
                decided_by=approver, decided_at=decided, revoked_by=operator if revoked else None,
                revoked_at=revoked)
        target = f"exception #{exc.pk}"
        _dated(("exception.proposed", target), proposed, operator, check=check_id, pattern=pattern,
               expires_at=expires.isoformat())
        _dated(("exception.approved", target), decided, approver, check=check_id)
        if revoked:
            _dated(("exception.revoked", target), revoked, operator, check=check_id)
        made[exc.pk] = {"check_id": check_id, "host_id": host_id, "pattern": pattern, "decided_at": decided,
                        "expires_at": expires, "revoked_at": revoked}
    return made


def write_attestations(spec: SeedSpec, host_ids: dict[int, int], operator) -> dict[int, dict[str, Any]]:
    """Attestations of manual recommendations: every other one short-lived (it expires
    inside the period and the check is ``manual`` again), the others valid 60 to 180 days;
    every other one scoped to a host."""
    from posture.models import Attestation
    from scanners import registry

    rng = random.Random(f"{spec.seed}:attestations")
    manual = sorted(s.id for s in registry.all_checks() if s.kind.value == "manual")
    made: dict[int, dict[str, Any]] = {}
    for n in range(spec.attestations):
        check_id = manual[rng.randrange(len(manual))]
        host_id = host_ids[rng.randrange(len(host_ids))] if n % 2 and host_ids else None
        first = rng.randrange(max(1, spec.days // 2)) if n % 2 == 0 else rng.randrange(max(1, spec.days - 1))
        attested = day_start(spec, first) + timedelta(hours=rng.randrange(8, 18))
        span = rng.randrange(3, max(4, spec.days // 2)) if n % 2 == 0 else rng.randrange(60, 181)
        valid = attested + timedelta(days=span)
        att = Attestation.objects.create(check_id=check_id, host_id=host_id, attested_by=operator,
                                         statement=f"Seeded: reviewed {check_id} against the hardening runbook.",
                                         attested_at=attested, valid_until=valid)
        _dated(("attestation.created", f"attestation #{att.pk}"), attested, operator, check=check_id,
               valid_until=valid.isoformat())
        made[att.pk] = {"check_id": check_id, "host_id": host_id, "attested_at": attested, "valid_until": valid}
    return made


def create_hosts(spec: SeedSpec, operator) -> dict[int, int]:
    import time_machine

    from posture.models import DockerHost

    ids = {}
    for index in range(spec.hosts):
        name = host_name(spec, index)
        created = day_start(spec, 0) - timedelta(hours=2)
        with time_machine.travel(created, tick=False):
            host = DockerHost.objects.create(name=name, url=f"ssh://docker@{name}.fleet.example",
                                             probe_enabled=probe_enabled(spec, index),
                                             scan_interval_minutes=spec.interval_minutes)
        _dated(("host.created", name), created, operator, url=host.url)
        ids[index] = host.pk
    return ids

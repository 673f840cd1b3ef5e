"""Running one scan: claim, collect with a heartbeat, store, finish. Plain functions, called
by the Celery task, the ``scan`` command and tests alike.

Guarantees:
- A scan is claimed with one conditional UPDATE (queued, or running with a heartbeat older
  than the lease), which bumps ``attempts``. Every later write is fenced on that attempt, so
  a redelivered message, a retry or a zombie worker can never finish a scan twice.
- The partial unique index ``one_running_scan_per_host`` makes a second concurrent claim for
  the same host fail: scans of one host never overlap.
- A failed scan stores nothing and leaves the previous succeeded scan as current posture.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from posture.choices import FINISHED_STATES, ScanState, Trigger
from posture.jobs import ingest
from posture.models import DockerHost, ScanRun
from posture.models.audit import record
from posture.queries.scans import current_scan
from scanners.client import open_client
from scanners.collect import collect
from scanners.errors import ResponseTooLarge, ScanError, ScanTimeout
from scanners.snapshot import SCANNER_VERSION
from scanners.text import one_line

log = logging.getLogger(__name__)

LOG_LINES = 30  # progress lines kept on a scan row
#: An intermediate progress counter ("12:00:01 inspecting containers 35/50"), from the collectors.
_COUNTER = re.compile(r"^\S+ inspecting \w+ (\d+)/(\d+)$")
_SOFT_LIMIT = "scan exceeded its time limit ({}s, POSTURE_SCAN_TIMEOUT): stopped by the worker's soft time limit"


class Outcome(enum.Enum):
    FINISHED = "finished"  # this call ran the scan to an end state
    ALREADY_DONE = "already_done"  # someone else finished it: nothing to do
    BUSY = "busy"  # held by a live worker, or another scan of the host is running: retry later
    LOST = "lost"  # our lease was taken over mid-scan; the other worker finishes it
    MISSING = "missing"


@dataclass
class Result:
    outcome: Outcome
    scan: ScanRun | None = None
    retry_after: float = 0.0


class LeaseLost(Exception):
    """Another worker took the scan over (our heartbeat had lapsed)."""


class ScanRefused(Exception):
    """The host cannot be scanned (archived, or deleted meanwhile): nothing was queued."""


def request_scan(host: DockerHost, trigger: str = Trigger.MANUAL, *, actor=None,
                 actor_label: str = "") -> tuple[ScanRun, bool]:
    """The scan to run for a host now: the one already queued or running, else a new one.

    Returns (scan, created). The host row is locked so two requests at once queue one scan.
    A new scan is audited (``scan.requested``: who, how) and moves the host's ``next_scan_at``
    to now + its interval, in the same transaction: the schedule counts from the last scan
    asked for, so beat does not queue a second scan of the host seconds after a manual one.
    Every way to ask for a scan (API, ``scan``, start-up, "Scan now") comes through here."""
    with transaction.atomic():
        locked = DockerHost.objects.select_for_update().filter(pk=host.pk).first()
        if locked is None:
            raise ScanRefused(f"host {host.name!r} no longer exists")
        if locked.archived_at is not None:
            raise ScanRefused(f"host {locked.name!r} is archived; unarchive it to scan it")
        active = ScanRun.objects.filter(host=locked, state__in=[ScanState.QUEUED, ScanState.RUNNING]).order_by("id").first()
        if active:
            return active, False
        scan = ScanRun.objects.create(host=locked, trigger=trigger)
        host.next_scan_at = timezone.now() + timedelta(minutes=locked.scan_interval_minutes)
        DockerHost.objects.filter(pk=locked.pk).update(next_scan_at=host.next_scan_at)
        record("scan.requested", locked.name, actor=actor, actor_label=actor_label, scan=scan.pk, trigger=str(trigger))
        return scan, True


def queue_scan(host: DockerHost, trigger: str, actor=None, *, actor_label: str = "") -> tuple[ScanRun, bool]:
    """Queue a scan of ``host`` for the workers: ``request_scan`` (host lock, reuse of a scan
    already queued, audit event, next_scan_at moved), then the Celery task, sent once the
    row is committed. Returns (scan, created). Used by the API, the start-up command and the
    dashboard; ``manage.py scan`` runs its scan in-process through ``scan_now`` instead."""
    from posture.tasks import send_scan  # posture.tasks imports this module

    with transaction.atomic():
        scan, created = request_scan(host, trigger, actor=actor, actor_label=actor_label)
        if created:
            send_scan(scan.pk)
    return scan, created


def release_abandoned(host_id: int, now=None) -> int:
    """End running scans of a host whose worker stopped heartbeating (killed, interrupted):
    they hold the host's one running slot. Nothing was stored for them; a redelivered
    message for one finds it finished and does nothing."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.POSTURE_SCAN_LEASE)
    return ScanRun.objects.filter(host_id=host_id, state=ScanState.RUNNING, heartbeat_at__lt=cutoff).update(
        state=ScanState.ERRORED,
        finished_at=now,
        error="abandoned: its worker stopped without finishing it (killed or interrupted); a new scan replaced it",
    )


def claim(scan_id: int, worker: str, *, _retry: bool = True) -> Result:
    now = timezone.now()
    lease_cutoff = now - timedelta(seconds=settings.POSTURE_SCAN_LEASE)
    try:
        with transaction.atomic():
            updated = (
                ScanRun.objects.filter(pk=scan_id)
                .filter(Q(state=ScanState.QUEUED) | Q(state=ScanState.RUNNING, heartbeat_at__lt=lease_cutoff))
                .update(
                    state=ScanState.RUNNING,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=F("attempts") + 1,
                    worker=worker[:200],
                )
            )
    except IntegrityError:
        # Another scan of this host is running (one_running_scan_per_host). If its worker is
        # gone, free the slot and try once more; else come back later.
        scan = ScanRun.objects.filter(pk=scan_id).first()
        if _retry and scan is not None and release_abandoned(scan.host_id, now):
            return claim(scan_id, worker, _retry=False)
        return Result(Outcome.BUSY, scan, settings.POSTURE_SCAN_LEASE / 2)
    scan = ScanRun.objects.select_related("host").filter(pk=scan_id).first()
    if scan is None:
        return Result(Outcome.MISSING)
    if updated:
        return Result(Outcome.FINISHED, scan)  # claimed; caller runs it
    if scan.state in FINISHED_STATES:
        return Result(Outcome.ALREADY_DONE, scan)
    return Result(Outcome.BUSY, scan, settings.POSTURE_SCAN_LEASE / 2)


class Heartbeat:
    """Keeps a claimed scan's lease alive from a background thread and records progress.

    If the fenced update matches no row, the lease was taken over: ``check()`` raises."""

    def __init__(self, scan: ScanRun, echo: Callable[[str], None] | None = None):
        self.echo = echo
        self.scan_id = scan.pk
        self.attempt = scan.attempts
        self.lines: list[str] = []
        self.lost = False
        self._stop = threading.Event()
        self._dirty = False
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-scan-{scan.pk}", daemon=True)
        self.interval = max(0.5, settings.POSTURE_SCAN_LEASE / 4)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def progress(self, message: str) -> None:
        stamp = timezone.now().strftime("%H:%M:%S")
        self.lines.append(f"{stamp} {message}")
        del self.lines[:-LOG_LINES]
        if self.echo:
            self.echo(message)
        self._dirty = True
        self.check()

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"scan #{self.scan_id}: lease taken over by another worker")

    def beat(self) -> None:
        fields: dict = {"heartbeat_at": timezone.now()}
        if self._dirty:
            fields["log"] = list(self.lines)
            self._dirty = False
        alive = ScanRun.objects.filter(pk=self.scan_id, state=ScanState.RUNNING, attempts=self.attempt).update(**fields)
        if not alive:
            self.lost = True

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.beat()
                except Exception:  # a DB hiccup must not kill the scan; the next beat retries
                    log.warning("heartbeat of scan #%s failed", self.scan_id, exc_info=True)
                    close_old_connections()
                if self.lost:
                    return
        finally:
            connection.close()


def _finish(scan: ScanRun, state: str, *, error: str = "", lines: list[str] | None = None, **fields) -> bool:
    """Fenced final write. False when the scan is no longer ours."""
    now = timezone.now()
    values = {"state": state, "finished_at": now, "heartbeat_at": now, "error": error[:2000], **fields}
    if lines is not None:
        values["log"] = lines[-LOG_LINES:]
    return bool(
        ScanRun.objects.filter(pk=scan.pk, state=ScanState.RUNNING, attempts=scan.attempts).update(**values)
    )


def kept_log(lines: list[str]) -> list[str]:
    """What a *succeeded* scan keeps of its progress lines, forever: every line but the
    intermediate counters ("inspecting containers 35/50"), so the log still says where it
    connected and when each phase ended (timing), while a daily scan of a large host stores
    a few lines instead of 30. Counts and warnings have their own fields; the evidence and
    verdicts do not depend on the log. A failed or errored scan keeps every line (at most
    ``LOG_LINES``): that is when an operator reads them."""
    kept = []
    for line in lines:
        counter = _COUNTER.match(line)
        if counter is None or counter.group(1) == counter.group(2):
            kept.append(line)
    return kept[-LOG_LINES:]


def _store_success(scan: ScanRun, snapshot, lines: list[str]) -> bool:
    stored = ingest.store_snapshot(snapshot)
    with transaction.atomic():
        previous = current_scan(scan.host_id)  # this scan is still running: never itself
        finished_at = timezone.now()
        chain = ingest.chain_digest(
            previous.chain_digest if previous else ingest.CHAIN_GENESIS,
            scan.pk,
            scan.host_id,
            finished_at.isoformat(),
            stored.evidence_set.digest,
        )
        counts = {
            "images": len(snapshot.get("images", [])),
            "containers": len(snapshot.get("containers", [])),
            "running": sum(1 for c in snapshot.get("containers", []) if c["inspect"].get("State", {}).get("Running")),
            "host_probe": snapshot.get("host") is not None,
            "new_payloads": stored.new_payloads,
            "new_bytes": stored.new_bytes,
        }
        updated = ScanRun.objects.filter(pk=scan.pk, state=ScanState.RUNNING, attempts=scan.attempts).update(
            state=ScanState.SUCCEEDED,
            finished_at=finished_at,
            heartbeat_at=finished_at,
            evidence_set=stored.evidence_set,
            previous=previous,
            chain_digest=chain,
            counts=counts,
            warnings=snapshot.get("warnings", []),
            scanner_version=snapshot.get("scanner_version", SCANNER_VERSION),
            log=kept_log(lines),
            error="",
        )
        if not updated:
            transaction.set_rollback(True)
        return bool(updated)


def execute_scan(scan_id: int, *, worker: str, echo: Callable[[str], None] | None = None) -> Result:
    """Claim and run one scan to an end state. Safe to call any number of times per scan.

    ``echo`` also receives each progress line (the ``scan`` command prints them with -v 2)."""
    result = claim(scan_id, worker)
    if result.outcome is not Outcome.FINISHED:
        return result
    scan = result.scan
    host = scan.host
    # The deadline bounds every Docker call of the scan, the connection and ping included,
    # whatever the host sends (scanners.limits); Celery's time limits are only a backstop.
    deadline = time.monotonic() + settings.POSTURE_SCAN_TIMEOUT
    probe_image = settings.POSTURE_PROBE_IMAGE if host.probe_enabled else None
    cfg = replace(host.host_config(), max_response_bytes=settings.POSTURE_MAX_RESPONSE_BYTES)
    with Heartbeat(scan, echo) as hb:
        try:
            hb.progress(f"attempt {scan.attempts} on {worker}: connecting to {host.url}")
            with open_client(cfg, deadline=deadline) as client:
                snapshot = collect(client, probe_image=probe_image, deadline=deadline, progress=hb.progress)
            hb.check()
            hb.progress(
                f"collected {len(snapshot['images'])} images, {len(snapshot['containers'])} containers; storing"
            )
            ok = _store_success(scan, snapshot, hb.lines)
        except LeaseLost:
            return Result(Outcome.LOST, scan)
        except ScanError as exc:
            if isinstance(exc.__cause__, SoftTimeLimitExceeded):  # the worker's backstop fired in a Docker call
                ok = _finish(scan, ScanState.FAILED, error=_SOFT_LIMIT.format(settings.POSTURE_SCAN_TIMEOUT),
                             lines=hb.lines)
            else:
                hb.lines.append(f"failed: {exc}")
                ok = _finish(scan, ScanState.FAILED, error=str(exc) + _limit_hint(exc), lines=hb.lines)
        except SoftTimeLimitExceeded:
            ok = _finish(scan, ScanState.FAILED, error=_SOFT_LIMIT.format(settings.POSTURE_SCAN_TIMEOUT), lines=hb.lines)
        except KeyboardInterrupt:
            _finish(scan, ScanState.FAILED, error="interrupted before it finished", lines=hb.lines)
            raise
        except Exception as exc:  # a bug in posture: keep the reason, never the half-scan
            log.exception("scan #%s errored", scan.pk)
            ok = _finish(scan, ScanState.ERRORED, error=f"internal error: {type(exc).__name__}: {one_line(exc)}",
                         lines=hb.lines)
    if not ok:
        return Result(Outcome.LOST, scan)
    scan.refresh_from_db()
    if scan.state == ScanState.SUCCEEDED:
        _evaluate(scan)
    return Result(Outcome.FINISHED, scan)


def scan_now(host: DockerHost, *, worker: str, trigger: str = Trigger.CLI,
             echo: Callable[[str], None] | None = None) -> Result:
    """Scan ``host`` in this process now (the ``scan`` command), or say who holds it.

    A scan that could not run because another scan of the host holds its one running slot
    is not the host's failure, and is never recorded as one: a scan already queued for the
    host is run instead of queuing a second; when another scan is running, nothing is
    created and the result is ``BUSY`` with that running scan (None if it ended meanwhile).
    A scan whose worker died no longer blocks (``release_abandoned``)."""
    release_abandoned(host.pk)
    scan, created = request_scan(host, trigger, actor_label="cli")
    if scan.state == ScanState.RUNNING:
        return Result(Outcome.BUSY, scan)
    result = execute_scan(scan.pk, worker=worker, echo=echo)
    if result.outcome is Outcome.BUSY:
        if created:  # ours, and it never ran (lost the race for the running slot): not a scan
            ScanRun.objects.filter(pk=scan.pk, state=ScanState.QUEUED, attempts=0).delete()
        running = ScanRun.objects.filter(host_id=host.pk, state=ScanState.RUNNING).order_by("id").first()
        return Result(Outcome.BUSY, running, result.retry_after)
    return result


def _limit_hint(exc: ScanError) -> str:
    """Name the setting behind a limit the host ran into, so an operator knows the knob."""
    if isinstance(exc, ScanTimeout):
        return (f" (limits: POSTURE_SCAN_TIMEOUT={settings.POSTURE_SCAN_TIMEOUT}s per scan, "
                f"POSTURE_DOCKER_TIMEOUT={settings.POSTURE_DOCKER_TIMEOUT}s per Docker call)")
    if isinstance(exc, ResponseTooLarge):
        return f" (POSTURE_MAX_RESPONSE_BYTES={settings.POSTURE_MAX_RESPONSE_BYTES})"
    return ""


def _evaluate(scan: ScanRun) -> None:
    """Score the stored evidence. Evidence is already safe: if scoring breaks (a bug), the
    scan stays succeeded, says so in its log, and ``manage.py reevaluate`` can score it later."""
    from posture.jobs.evaluate import evaluate_scan

    try:
        evaluate_scan(scan)
    except Exception as exc:
        log.exception("evaluation of scan #%s failed", scan.pk)
        line = f"evaluation failed: {type(exc).__name__}: {one_line(exc, 200)}"
        ScanRun.objects.filter(pk=scan.pk).update(log=[*scan.log, line][-LOG_LINES:])
        scan.refresh_from_db()

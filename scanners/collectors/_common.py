"""Shared plumbing for the collectors: deadlines, error mapping, the inspect thread pool.

Every Docker call goes through :func:`call`, which names the step for
:mod:`scanners.limits`: the client's guard then bounds the call's total time by the scan
deadline (and the per-call timeout) and its answer's size, whatever the host sends, and a
failure says "... time limit ... while reading docker info".

Why a pool: a host with 200 containers needs 200 ``inspect`` round trips; done one at a
time over TLS that is the slowest part of a scan. A few threads share docker-py's pooled
connections (requests' pool is thread-safe for this use) and cut wall time by ~the pool size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import docker.errors

from scanners.errors import ScanError, ScanTimeout, classify
from scanners.limits import api_call
from scanners.snapshot import Warning_

Progress = Callable[[str], None]
T = TypeVar("T")

#: Inspect calls in flight at once: enough to hide latency, few enough to be polite.
DEFAULT_WORKERS = 8


def _noop(_msg: str) -> None:
    pass


def check_deadline(deadline: float | None, doing: str) -> None:
    """Raise :class:`ScanTimeout` once ``time.monotonic()`` has passed ``deadline``."""
    if deadline is not None and time.monotonic() > deadline:
        raise ScanTimeout(f"scan time limit reached (deadline exceeded) while {doing}")


def call(fn: Callable[..., T], *args: Any, doing: str, deadline: float | None = None, **kw: Any) -> T:
    """One Docker API call, bounded by ``deadline`` and named ``doing`` for the client's
    guard, with errors mapped for the middle of a scan.

    ``docker.errors.NotFound`` passes through untouched: callers decide if a 404 is a
    warning (resource removed meanwhile) or an error.
    """
    check_deadline(deadline, doing)
    try:
        with api_call(doing, deadline):
            return fn(*args, **kw)
    except docker.errors.NotFound:
        raise
    except ScanError:
        raise
    except Exception as exc:
        err = classify(exc, during_scan=True)
        raise type(err)(f"{err.reason} ({doing})") from exc


def inspect_all(
    ids: Iterable[str],
    fn: Callable[[str], T],
    *,
    kind: str,
    deadline: float | None,
    progress: Progress | None,
    workers: int = DEFAULT_WORKERS,
) -> tuple[dict[str, T], list[Warning_]]:
    """Run ``fn(id)`` for every id in a small thread pool.

    A 404 (the resource was removed between list and inspect) becomes a warning, any other
    failure aborts the whole run with a classified :class:`ScanError`. ``progress`` is only
    ever called from the calling thread.
    """
    ids = list(dict.fromkeys(ids))
    progress = progress or _noop
    total = len(ids)
    step = max(1, total // 10)
    results: dict[str, T] = {}
    warnings: list[Warning_] = []
    progress(f"inspecting {kind}s 0/{total}")
    if not ids:
        return results, warnings

    def task(rid: str) -> T:
        return call(fn, rid, doing=f"inspecting {kind} {rid[:12]}", deadline=deadline)

    pool = ThreadPoolExecutor(max_workers=min(workers, total), thread_name_prefix=f"inspect-{kind}")
    try:
        pending: dict[Future[T], str] = {pool.submit(task, rid): rid for rid in ids}
        done_count = 0
        while pending:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            if not done:
                raise ScanTimeout(f"scan time limit reached (deadline exceeded) while inspecting {kind}s")
            for fut in done:
                rid = pending.pop(fut)
                try:
                    results[rid] = fut.result()
                except docker.errors.NotFound:
                    warnings.append(
                        {
                            "resource_type": kind,
                            "resource": rid,
                            "message": "removed between list and inspect",
                        }
                    )
                done_count += 1
                if done_count % step == 0 or done_count == total:
                    progress(f"inspecting {kind}s {done_count}/{total}")
    finally:
        # On error, do not wait for calls in flight: each is bounded by the per-call timeout.
        pool.shutdown(wait=False, cancel_futures=True)
    return results, warnings

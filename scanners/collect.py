"""Collect one snapshot of one Docker host: the entry point of the collection side.

    from scanners.client import HostConfig, open_client
    from scanners.collect import collect

    with open_client(HostConfig(url="unix:///var/run/docker.sock")) as client:
        snapshot = collect(client, probe_image=None, deadline=time.monotonic() + 600,
                           progress=print)

The result follows the contract in :mod:`scanners.snapshot` and is:

* **redacted** — environment values dropped (names kept with ``looks_secret``), ENV/ARG
  values in image history and proxy credentials in ``docker info`` replaced by
  ``<redacted>`` (:mod:`scanners.redact`);
* **sanitized** — storable in PostgreSQL JSONB: no NUL, valid UTF-8, no string longer than
  ``MAX_STRING_BYTES`` (:mod:`scanners.sanitize`);
* **deterministic** — an unchanged host gives identical evidence on every scan (volatile
  counters dropped, images sorted by id, containers by name, set-like lists sorted), which
  content-addressed storage relies on.

``progress`` receives short messages ("inspecting containers 40/200") from the calling
thread, so a worker can heartbeat and log. ``deadline`` is a ``time.monotonic()`` value;
once passed, :class:`~scanners.errors.ScanTimeout` is raised. Every failure is a
:class:`~scanners.errors.ScanError` subclass with a one-line reason; a container or image
removed while the scan runs is only a warning in ``snapshot["warnings"]``.

The host probe (``probe_image`` set) runs after containers are listed, so its own
short-lived container never appears in the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

import docker

from scanners.collectors._common import check_deadline
from scanners.collectors.containers import collect_containers
from scanners.collectors.daemon import collect_daemon
from scanners.collectors.images import collect_images
from scanners.collectors.probe import failed_probe_evidence, run_probe
from scanners.errors import ProbeFailed
from scanners.sanitize import sanitize
from scanners.snapshot import SCANNER_VERSION, Snapshot

__all__ = ["collect"]


def collect(
    client: docker.DockerClient,
    *,
    probe_image: str | None = None,
    deadline: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Snapshot:
    """Collect the snapshot of the host behind ``client`` (see the module docstring)."""
    say = progress or (lambda _msg: None)
    api = client.api

    say("reading daemon info")
    daemon = collect_daemon(api, deadline=deadline)
    say("listing images")
    images, image_warnings = collect_images(api, deadline=deadline, progress=say)
    say("listing containers")
    containers, container_warnings = collect_containers(api, deadline=deadline, progress=say)
    host = None
    probe_warnings: list = []
    if probe_image:
        try:
            host = run_probe(api, image=probe_image, info=daemon["info"], deadline=deadline, progress=say)
        except ProbeFailed as exc:
            # The daemon answers; only the probe could not run. Keep the scan, and let every
            # host check say "error: host probe failed: <reason>" (never a pass).
            say(f"probe failed: {exc.reason}")
            host = failed_probe_evidence(probe_image, daemon["info"], exc.reason)
            probe_warnings.append({"resource_type": "host", "resource": "probe", "message": exc.reason})
    check_deadline(deadline, "finishing the scan")

    snapshot: Snapshot = sanitize(
        {
            "scanner_version": SCANNER_VERSION,
            "daemon": daemon,
            "images": images,
            "containers": containers,
            "host": host,
            "warnings": image_warnings + container_warnings + probe_warnings,
        }
    )
    # Sort again after sanitizing: replacing NUL or cutting a name can change the order.
    snapshot["images"].sort(key=lambda i: i["id"])
    snapshot["containers"].sort(key=lambda c: (c["name"], c["id"]))
    snapshot["warnings"].sort(key=lambda w: (w["resource_type"], w["resource"], w["message"]))
    say(f"collected {len(images)} images, {len(containers)} containers")
    return snapshot

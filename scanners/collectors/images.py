"""Images: ``inspect`` and ``history`` of every top-level image, secrets redacted.

Only top-level images (``all=False``): intermediate build layers of the classic builder are
not something anyone runs, and listing them multiplies scan size. Env values (which
include build-time ``ContainerConfig.Env``) and ``ENV``/``ARG`` values wherever Docker
repeats them (history ``CreatedBy``, the classic builder's ``ContainerConfig.Cmd``,
``OnBuild``) are removed here, before anything leaves the collector.
"""

from __future__ import annotations

from typing import Any

from docker.api import APIClient

from scanners.collectors._common import DEFAULT_WORKERS, Progress, call, inspect_all
from scanners.collectors.shapes import guarded
from scanners.errors import MalformedAnswer
from scanners.redact import known_names, redact_config, redact_history
from scanners.snapshot import ImageEvidence, Warning_

__all__ = ["collect_images", "image_evidence"]

_NO_TAG = "<none>:<none>"


def image_evidence(inspect: dict[str, Any], history: list[dict[str, Any]]) -> ImageEvidence:
    """Build one ImageEvidence from raw API documents (pure: used on recorded JSON in tests)."""
    inspect = dict(inspect)
    names = known_names(
        *((inspect.get(key) or {}).get("Env") for key in ("Config", "ContainerConfig")), history=history
    )
    for key in ("Config", "ContainerConfig"):
        if key in inspect:
            inspect[key] = redact_config(inspect[key], names)
    for key in ("RepoTags", "RepoDigests"):
        if isinstance(inspect.get(key), list):
            inspect[key] = sorted(inspect[key])
    tags = sorted(t for t in inspect.get("RepoTags") or [] if t != _NO_TAG)
    return {
        "id": inspect["Id"],
        "tags": tags,
        "inspect": inspect,
        "history": redact_history(history, names),
    }


def collect_images(
    api: APIClient,
    *,
    deadline: float | None = None,
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> tuple[list[ImageEvidence], list[Warning_]]:
    """All top-level images sorted by id, plus warnings for images removed meanwhile."""
    summaries = call(
        guarded, api.images, all=False, shape="image_list", path="/images/json", doing="listing images", deadline=deadline
    )
    ids = sorted({s["Id"] for s in summaries})

    def fetch(image_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        # Only the calls and their shape checks run inside the pool: anything that breaks
        # in image_evidence afterwards is our bug, and must not be reported as the host's.
        path = f"/images/{image_id[:19]}/json"
        inspect = guarded(api.inspect_image, image_id, shape="image", path=path)
        if inspect["Id"] != image_id:
            raise MalformedAnswer(path, "its Id is not the image that was asked for")
        history = guarded(api.history, image_id, shape="history", path=f"/images/{image_id[:19]}/history")
        return inspect, history

    found, warnings = inspect_all(ids, fetch, kind="image", deadline=deadline, progress=progress, workers=workers)
    return [image_evidence(*found[i]) for i in ids if i in found], warnings

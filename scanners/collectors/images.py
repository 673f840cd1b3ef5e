"""Images: ``inspect`` and ``history`` of every top-level image, secrets redacted.

Only top-level images (``all=False``): intermediate build layers of the classic builder are
not something anyone runs, and listing them multiplies scan size. Env values (which
include build-time ``ContainerConfig.Env``) and ``ENV``/``ARG`` values baked into history
are removed here, before anything leaves the collector.
"""

from __future__ import annotations

from typing import Any

from docker.api import APIClient

from scanners.collectors._common import DEFAULT_WORKERS, Progress, call, inspect_all
from scanners.redact import redact_config, redact_history
from scanners.snapshot import ImageEvidence, Warning_

__all__ = ["collect_images", "image_evidence"]

_NO_TAG = "<none>:<none>"


def image_evidence(inspect: dict[str, Any], history: list[dict[str, Any]]) -> ImageEvidence:
    """Build one ImageEvidence from raw API documents (pure: used on recorded JSON in tests)."""
    inspect = dict(inspect)
    for key in ("Config", "ContainerConfig"):
        if key in inspect:
            inspect[key] = redact_config(inspect[key])
    for key in ("RepoTags", "RepoDigests"):
        if isinstance(inspect.get(key), list):
            inspect[key] = sorted(inspect[key])
    tags = sorted(t for t in inspect.get("RepoTags") or [] if t != _NO_TAG)
    return {
        "id": inspect["Id"],
        "tags": tags,
        "inspect": inspect,
        "history": redact_history(history),
    }


def collect_images(
    api: APIClient,
    *,
    deadline: float | None = None,
    progress: Progress | None = None,
    workers: int = DEFAULT_WORKERS,
) -> tuple[list[ImageEvidence], list[Warning_]]:
    """All top-level images sorted by id, plus warnings for images removed meanwhile."""
    summaries = call(api.images, all=False, doing="listing images", deadline=deadline)
    ids = sorted({s["Id"] for s in summaries})

    def fetch(image_id: str) -> ImageEvidence:
        inspect = api.inspect_image(image_id)
        history = api.history(image_id)
        return image_evidence(inspect, history)

    found, warnings = inspect_all(ids, fetch, kind="image", deadline=deadline, progress=progress, workers=workers)
    return [found[i] for i in ids if i in found], warnings

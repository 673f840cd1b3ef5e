"""Every enum of the app, in one place."""

from django.db import models


class ScanState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # The host did not let us collect: unreachable, not Docker, TLS refused, daemon lost,
    # timed out. An operational problem on the host side; the reason says which.
    FAILED = "failed", "Failed"
    # Something broke inside posture itself (a bug). The reason and log say where.
    ERRORED = "errored", "Errored"


FINISHED_STATES = (ScanState.SUCCEEDED, ScanState.FAILED, ScanState.ERRORED)


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual (web)"
    API = "api", "API"
    CLI = "cli", "Command line"

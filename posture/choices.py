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


class ResultStatus(models.TextChoices):
    """A verdict as read: the checks' statuses plus ``excepted`` (applied when read).

    Declared worst first: a control is as bad as the worst result behind it. ``error`` and
    ``not_assessed`` rank above ``manual`` because nobody can attest them away: the evidence
    itself is missing. Scores count pass / (pass + fail); coverage is assessed / applicable."""

    FAIL = "fail", "Fail"
    ERROR = "error", "Error"
    NOT_ASSESSED = "not_assessed", "Not assessed"
    MANUAL = "manual", "Manual"
    EXCEPTED = "excepted", "Excepted"
    PASS = "pass", "Pass"
    NOT_APPLICABLE = "not_applicable", "Not applicable"

    @classmethod
    def order(cls, *, read_time: bool = True) -> tuple[str, ...]:
        """Statuses worst first; ``read_time=False`` leaves out ``excepted`` (never stored)."""
        return tuple(s.value for s in cls if read_time or s is not cls.EXCEPTED)

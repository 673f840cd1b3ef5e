"""Exceptions (accepted risks) and attestations (manual recommendations), both time-bound.

An exception is proposed by an operator and approved by an admin other than the person who
proposed it (posture/jobs/exceptions.py). While approved and not
expired it turns a matching ``fail`` into ``excepted`` (never hides it: the failure and the
exception are both shown). It stops applying by itself at ``expires_at``, or when revoked
(``revoked_at``; the approval time stays, so "posture at T" before the revocation still
applies it). ``resource_regex`` is the pattern as an anchored regex, derived on save, so SQL
matches exactly what ``matches`` (and ``fnmatch``) would: see posture/patterns.py.

Resource patterns match container/image *names*, which whoever runs containers chooses:
scope exceptions to a host and a narrow pattern, or someone who can start a container with
a matching name inherits the exception.

An attestation is a person's signed statement that a manual recommendation is met, valid
until a date; when it expires the control is ``manual`` again. Its optional file (evidence
such as a hardening report) is stored under MEDIA_ROOT, which no URL serves: readers fetch
it through the authenticated /api/v1/attestations/{id}/file/, and uploads are limited to an
allow-list of types and a size (posture/uploads.py)."""

from __future__ import annotations

import re

from django.conf import settings
from django.db import models
from django.db.models import Q

from posture.patterns import shell_pattern_regex


class ExceptionState(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"


class ControlException(models.Model):
    check_id = models.CharField(max_length=100, db_index=True)
    host = models.ForeignKey("posture.DockerHost", null=True, blank=True, on_delete=models.CASCADE,
                             help_text="empty: every host")
    resource_pattern = models.CharField(max_length=300, blank=True,
                                        help_text="shell-style pattern on the resource name (e.g. web-*); empty: all")
    justification = models.TextField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=ExceptionState.choices, default=ExceptionState.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="in force until then, if it was approved")
    resource_regex = models.TextField(blank=True, editable=False,
                                      help_text="resource_pattern as an anchored regex (derived on save)")

    class Meta:
        ordering = ["-proposed_at"]

    def __str__(self) -> str:
        return f"exception {self.check_id} {self.resource_pattern or '*'} ({self.state})"

    def save(self, *args, **kwargs) -> None:
        self.resource_regex = shell_pattern_regex(self.resource_pattern)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "resource_pattern" in update_fields:
            kwargs["update_fields"] = {*update_fields, "resource_regex"}
        super().save(*args, **kwargs)

    def matches(self, host_id: int, check_id: str, resource: str) -> bool:
        """The same test SQL makes with ``resource__regex=resource_regex``."""
        return (
            self.check_id == check_id
            and (self.host_id is None or self.host_id == host_id)
            and re.search(shell_pattern_regex(self.resource_pattern), resource) is not None
        )

    @classmethod
    def active_q(cls, at) -> Q:
        """In force at ``at``: approved at or before it, not expired and not yet revoked then.
        A revoked exception keeps its approval time, so history before the revocation holds."""
        return (Q(state__in=[ExceptionState.APPROVED, ExceptionState.REVOKED], decided_at__lte=at, expires_at__gt=at)
                & (Q(revoked_at__isnull=True) | Q(revoked_at__gt=at)))

    def in_force(self, at) -> bool:
        """``active_q`` for one loaded row (history rebuilds filter preloaded rows by time)."""
        return (self.state in (ExceptionState.APPROVED, ExceptionState.REVOKED) and self.decided_at is not None
                and self.decided_at <= at < self.expires_at and (self.revoked_at is None or self.revoked_at > at))


class Attestation(models.Model):
    check_id = models.CharField(max_length=100, db_index=True, help_text="the manual check it satisfies")
    host = models.ForeignKey("posture.DockerHost", null=True, blank=True, on_delete=models.CASCADE,
                             help_text="empty: every host")
    statement = models.TextField()
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    attested_at = models.DateTimeField()
    valid_until = models.DateTimeField()
    file = models.FileField(upload_to="attestations/%Y/", blank=True)

    class Meta:
        ordering = ["-attested_at"]

    def __str__(self) -> str:
        return f"attestation {self.check_id} until {self.valid_until:%Y-%m-%d}"

    @classmethod
    def active_q(cls, at) -> Q:
        return Q(attested_at__lte=at, valid_until__gt=at)

    def in_force(self, at) -> bool:
        return self.attested_at <= at < self.valid_until

"""AuditEvent: who did what, append-only (auditors read it)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True, help_text="'cli', 'system' or the username")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


def record(action: str, target: str = "", *, actor=None, actor_label: str = "", **detail) -> AuditEvent:
    """Append one audit event."""
    label = actor_label or (getattr(actor, "username", "") if actor else "system")
    return AuditEvent.objects.create(actor=actor, actor_label=label, action=action, target=target, detail=detail)

"""Roles: admin (superuser: everything), operator (hosts, scans, exceptions), auditor (read
and export only). Operators and auditors are Django groups of those names."""

from __future__ import annotations

OPERATOR = "operator"
AUDITOR = "auditor"


def role_of(user) -> str | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return "admin"
    names = {g.name for g in user.groups.all()}
    if OPERATOR in names:
        return OPERATOR
    if AUDITOR in names:
        return AUDITOR
    return None


def can_read(user) -> bool:
    return role_of(user) is not None


def can_operate(user) -> bool:
    return role_of(user) in ("admin", OPERATOR)

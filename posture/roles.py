"""Roles: admin (superuser: everything), operator (hosts, scans, exceptions), auditor (read
and export only, including the audit trail). Operators and auditors are Django groups of
those names; an account may be in both.

Every refusal names the role the account has and what the action needs (``refusal``), so a
person told "no" knows whom to ask for what, instead of a generic "no posture role"."""

from __future__ import annotations

from collections.abc import Iterable

ADMIN = "admin"
OPERATOR = "operator"
AUDITOR = "auditor"

#: Who may change hosts, scans, exceptions and attestations.
OPERATE = (OPERATOR, ADMIN)
#: Who may decide (approve or reject) an exception.
DECIDE = (ADMIN,)
#: Who reads the audit trail: the people who oversee what operators did (the model's
#: docstring: "auditors read it"); operators' own role covers hosts, scans and exceptions.
READ_AUDIT = (AUDITOR, ADMIN)

NO_ROLE = "your account has no posture role: ask an admin to add you to the operator or auditor group"


def roles_of(user) -> frozenset[str]:
    """Every role the account holds (a superuser holds all of them)."""
    if not user or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({ADMIN, OPERATOR, AUDITOR})
    return frozenset(g.name for g in user.groups.all() if g.name in (OPERATOR, AUDITOR))


def role_of(user) -> str | None:
    """The account's main role, the one named in messages: admin, then operator, then auditor."""
    held = roles_of(user)
    return next((r for r in (ADMIN, OPERATOR, AUDITOR) if r in held), None)


def has_any(user, needs: Iterable[str]) -> bool:
    return not roles_of(user).isdisjoint(needs)


def can_read(user) -> bool:
    return bool(roles_of(user))


def can_operate(user) -> bool:
    return has_any(user, OPERATE)


def can_read_audit(user) -> bool:
    return has_any(user, READ_AUDIT)


def _either(needs: Iterable[str]) -> str:
    names = list(needs)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def refusal(user, doing: str, needs: Iterable[str]) -> str:
    """Why ``user`` may not do ``doing`` (e.g. "proposing exceptions"), naming the role it
    has and the roles the action needs."""
    held = roles_of(user)
    if not held:
        return NO_ROLE
    needed = _either(needs)
    if held == {AUDITOR}:
        return f"the auditor role is read-only: {doing} needs the {needed} role"
    return f"the {role_of(user)} role does not allow {doing}: it needs the {needed} role"


def context(request) -> dict:
    """Template context processor: ``posture_roles``, the roles of the user (computed only
    when a template asks), so the navigation offers only pages the user may open."""
    from django.utils.functional import SimpleLazyObject

    return {"posture_roles": SimpleLazyObject(lambda: roles_of(getattr(request, "user", None)))}

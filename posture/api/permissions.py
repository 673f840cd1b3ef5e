"""API permissions: one table says which roles each action needs and how to name it, so a
refusal tells the caller what their role lacks ("the auditor role is read-only: proposing
exceptions needs the operator or admin role") rather than a generic 403."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from posture import roles

ANY_ROLE = (roles.ADMIN, roles.OPERATOR, roles.AUDITOR)

#: (route basename, view action) -> (what the action is called, roles that may do it).
#: Writes not listed need the operator or admin role; reads not listed need any role.
RULES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("host", "create"): ("registering hosts", roles.OPERATE),
    ("host", "update"): ("changing hosts", roles.OPERATE),
    ("host", "partial_update"): ("changing hosts", roles.OPERATE),
    ("host", "destroy"): ("archiving hosts", roles.OPERATE),
    ("host", "archive"): ("archiving hosts", roles.OPERATE),
    ("host", "unarchive"): ("unarchiving hosts", roles.OPERATE),
    ("scan", "create"): ("queueing scans", roles.OPERATE),
    ("exception", "create"): ("proposing exceptions", roles.OPERATE),
    ("exception", "approve"): ("approving exceptions", roles.DECIDE),
    ("exception", "reject"): ("rejecting exceptions", roles.DECIDE),
    ("exception", "revoke"): ("revoking exceptions", roles.OPERATE),
    ("attestation", "create"): ("recording attestations", roles.OPERATE),
    # Every role may hold tokens (a token acts with its owner's roles, an auditor's reads only);
    # whose token may be revoked is decided by posture.jobs.tokens.revoke_token.
    ("token", "create"): ("creating API tokens", ANY_ROLE),
    ("token", "destroy"): ("revoking API tokens", ANY_ROLE),
    ("token", "revoke"): ("revoking API tokens", ANY_ROLE),
    # Auditor: read and export. Requesting a report and checking a package change no evidence.
    ("report", "create"): ("requesting reports", ANY_ROLE),
    ("report", "verify"): ("verifying evidence packages", ANY_ROLE),
}
#: Route basenames whose every action (reads included) needs particular roles.
ROUTE_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "audit-event": ("reading the audit trail", roles.READ_AUDIT),
}


def _rule(request, view) -> tuple[str, tuple[str, ...]] | None:
    basename = getattr(view, "basename", None) or ""
    if basename in ROUTE_RULES:
        return ROUTE_RULES[basename]
    action = getattr(view, "action", None) or request.method.lower()
    if (basename, action) in RULES:
        return RULES[(basename, action)]
    if request.method in SAFE_METHODS:
        return None
    noun = basename.replace("-", " ") or "data"
    return (f"changing {noun}s", roles.OPERATE)


class RolePermission(BasePermission):
    """Any role reads; writes (and the audit trail) need the roles in ``RULES``. A refusal
    names the caller's role and what the action needs."""

    message = roles.NO_ROLE

    def has_permission(self, request, view) -> bool:
        held = roles.roles_of(request.user)  # one query, reused below
        if not held:
            self.message = roles.NO_ROLE
            return False
        rule = _rule(request, view)
        if rule is None:
            return True
        doing, needs = rule
        if not held.isdisjoint(needs):
            return True
        self.message = roles.refusal(request.user, doing, needs)
        return False

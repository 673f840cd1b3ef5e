from rest_framework.permissions import SAFE_METHODS, BasePermission

from posture import roles


class RolePermission(BasePermission):
    """Any role reads; admin and operator change (hosts, scans). Others get 403."""

    message = "your account has no posture role (admin, operator or auditor)"

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return roles.can_read(request.user)
        return roles.can_operate(request.user)

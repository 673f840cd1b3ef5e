"""Checks: pure functions that judge collected evidence (see base.py for the contract).

Public API: ``check`` (decorator), ``CheckSpec``, ``Finding``, ``Scope``, ``Severity``,
``Status``, ``Kind``; the registry is ``scanners.registry`` and the runner
``scanners.runner.run_checks``.
"""

from scanners.checks.base import CheckSpec, Finding, Kind, Scope, Severity, Status, check

__all__ = ["CheckSpec", "Finding", "Kind", "Scope", "Severity", "Status", "check"]

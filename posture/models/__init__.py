"""Models, split by domain (see DESIGN.md §4)."""

from .audit import AuditEvent
from .evidence import Evidence, EvidenceSet, EvidenceSetItem
from .hosts import DockerHost
from .scans import ScanRun

__all__ = ["AuditEvent", "DockerHost", "Evidence", "EvidenceSet", "EvidenceSetItem", "ScanRun"]

"""Models, split by domain (see DESIGN.md §4)."""

from .audit import AuditEvent
from .catalog import Check, Control, Framework
from .current import CurrentFinding, CurrentScan, CurrentState
from .evidence import Evidence, EvidenceSet, EvidenceSetItem
from .exceptions import Attestation, ControlException, ExceptionState
from .history import DailyPosture, FailureWindow
from .hosts import DockerHost
from .reports import Report, ReportKind, ReportState
from .results import CheckResult, Evaluation, ResultChunk, ResultSet, ResultSetChunk
from .scans import ScanRun
from .tokens import ApiToken

__all__ = [
    "ApiToken", "Attestation", "AuditEvent", "Check", "CheckResult", "Control", "ControlException", "CurrentFinding",
    "CurrentScan", "CurrentState", "DailyPosture",
    "DockerHost", "Evaluation", "Evidence", "EvidenceSet", "EvidenceSetItem", "ExceptionState", "FailureWindow",
    "Framework", "Report", "ReportKind", "ReportState", "ResultChunk", "ResultSet", "ResultSetChunk", "ScanRun",
]

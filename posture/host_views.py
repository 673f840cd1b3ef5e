"""The host pages: list, add and edit (with a connection test), detail with daemon facts and
scan history, archive/unarchive, and "Scan now" with live progress.

Writes go through the write side only: ``save_host`` (the one validation), ``archive_host``
/ ``unarchive_host`` and ``queue_scan`` (the one way to ask for a scan). Reading the latest
and current scans goes through ``posture.queries.scans``. Every POST carries a CSRF token;
operators and admins write, auditors read (write pages and buttons answer 403 and are not
shown), accounts without a role get 403.

Progressive JS (static/posture/hosts.js) adds live updates without a page load: "Scan now"
and "Test connection" are ordinary form POSTs that answer JSON when the request asks for it
(``Accept: application/json``) and a page or redirect otherwise, and the progress panel
polls ``scan-status/``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from posture import roles
from posture.api.filters import strict_filterset
from posture.choices import FINISHED_STATES, ScanState, Trigger
from posture.filtersets import HostFilterSet, MomentField
from posture.host_forms import HostForm
from posture.jobs.connection import ConnectionReport, check_connection
from posture.jobs.hosts import archive_host, save_host, unarchive_host
from posture.jobs.scans import ScanRefused, queue_scan
from posture.models import DockerHost, EvidenceSetItem, ScanRun
from posture.models.hosts import validate_docker_url
from posture.queries.groups import FailingCheck, ResourceGroup, resources_with_failures
from posture.queries.hosts import HostSummary, host_summaries
from posture.queries.scans import current_scan, current_scan_id
from posture.queries.verdicts import SEVERITY_ORDER, findings
from posture.views import PAGE_SIZE, reader_required, role_required
from scanners.client import HostConfig
from scanners.snapshot import KIND_DAEMON_INFO, KIND_DAEMON_VERSION

HISTORY_PAGE_SIZE = 20
#: The framework whose controls the host list and host page count (pass, fail, score).
SUMMARY_FRAMEWORK = "cis-docker-1.8.0"
operator_required = role_required("changing hosts", roles.OPERATE)
scanner_required = role_required("scanning hosts", roles.OPERATE)


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def is_overdue(host: DockerHost, current: ScanRun | None, now: datetime) -> bool:
    """An enabled host whose last succeeded scan (or, never scanned, its registration) is
    older than twice its interval: its evidence is stale, a collection gap is open."""
    if not host.enabled or host.archived:
        return False
    since = current.finished_at if current is not None else host.created_at
    return since < now - timedelta(minutes=2 * host.scan_interval_minutes)


def host_state(host: DockerHost) -> str:
    return "archived" if host.archived else "enabled" if host.enabled else "disabled"


@dataclass
class HostRow:
    host: DockerHost
    state: str
    latest: ScanRun | None
    current: ScanRun | None
    failure: ScanRun | None  # the last finished scan, when it failed or errored
    overdue: bool
    summary: HostSummary | None  # controls passing and failing, score and coverage (current scan)


def _scan_subquery(**filters: Any) -> Subquery:
    return Subquery(ScanRun.objects.filter(host_id=OuterRef("pk"), **filters)
                    .order_by("-finished_at", "-id").values("id")[:1])


def _labelled(filterset):
    """Choice filters read "any" when empty ("archived" has a default instead: its own first choice)."""
    for name, field in filterset.form.fields.items():
        if hasattr(field, "empty_label"):  # django-filter's choice fields add it when choices are set
            field.empty_label = None if name == "archived" else "any"
            field.choices = [(k, v) for k, v in field.choices if k != ""]
    return filterset


@reader_required
@require_safe
def hosts_page(request: HttpRequest) -> HttpResponse:
    """Hosts, filtered as the API filters them (``HostFilterSet``), with their state, latest
    scan, next scan, overdue flag, last failure, and the CIS 1.8.0 controls passing and failing
    on their current scan with the score and its coverage. A fixed number of queries whatever
    the number of hosts: count, the page of hosts, their scans, and the summaries of the
    page's hosts (``posture.queries.hosts.host_summaries``, five)."""
    base = DockerHost.objects.order_by("name", "pk").annotate(
        latest_id=Subquery(ScanRun.objects.filter(host_id=OuterRef("pk")).order_by("-id").values("id")[:1]),
        current_id=current_scan_id("pk"),
        finished_id=_scan_subquery(state__in=FINISHED_STATES),
    )
    filterset = strict_filterset(HostFilterSet, request.GET, base, extra=("page",))
    context: dict[str, Any] = {"filterset": _labelled(filterset), "valid": filterset.is_valid(),
                               "framework": SUMMARY_FRAMEWORK, "filtered": bool(set(request.GET) - {"page"})}
    if not context["valid"]:
        return render(request, "posture/hosts.html", context, status=400)
    page = Paginator(filterset.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    ids = {i for h in page for i in (h.latest_id, h.current_id, h.finished_id) if i}
    scans = {s.pk: s for s in ScanRun.objects.filter(pk__in=ids).defer("log", "warnings")} if ids else {}
    with_scan = [h.pk for h in page if h.current_id]
    summaries = host_summaries(with_scan, framework=SUMMARY_FRAMEWORK) if with_scan else {}
    now = timezone.now()
    rows = []
    for h in page:
        current, finished = scans.get(h.current_id), scans.get(h.finished_id)
        failure = finished if finished is not None and finished.state != ScanState.SUCCEEDED else None
        rows.append(HostRow(h, host_state(h), scans.get(h.latest_id), current, failure, is_overdue(h, current, now),
                            summaries.get(h.pk)))
    context.update(rows=rows, page=page, archived=filterset.form.cleaned_data.get("archived") or "false")
    return render(request, "posture/hosts.html", context)


# --- detail -------------------------------------------------------------------------------

def _str(value: Any, limit: int = 300) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def daemon_facts(scan: ScanRun | None) -> dict[str, Any] | None:
    """The daemon as the scan saw it (``docker info``/``docker version`` evidence). Values
    come from the host, so each is taken only when it has the expected type; templates
    escape them."""
    if scan is None or not scan.evidence_set_id:
        return None
    docs = dict(EvidenceSetItem.objects.filter(evidence_set_id=scan.evidence_set_id,
                                               kind__in=(KIND_DAEMON_INFO, KIND_DAEMON_VERSION))
                .values_list("kind", "evidence__payload"))
    info = docs.get(KIND_DAEMON_INFO) if isinstance(docs.get(KIND_DAEMON_INFO), dict) else {}
    version = docs.get(KIND_DAEMON_VERSION) if isinstance(docs.get(KIND_DAEMON_VERSION), dict) else {}
    options = info.get("SecurityOptions")
    swarm = info.get("Swarm") if isinstance(info.get("Swarm"), dict) else {}
    return {
        "server_version": _str(version.get("Version")),
        "api_version": _str(version.get("ApiVersion")),
        "os": _str(info.get("OperatingSystem")),
        "os_type": _str(info.get("OSType")), "arch": _str(info.get("Architecture")),
        "kernel": _str(info.get("KernelVersion")),
        "storage_driver": _str(info.get("Driver")),
        "logging_driver": _str(info.get("LoggingDriver")),
        "cgroup": " ".join(filter(None, (_str(info.get("CgroupDriver")),
                                        f"v{_str(info.get('CgroupVersion'))}" if _str(info.get("CgroupVersion")) else ""))),
        "security_options": [_str(o) for o in options if isinstance(o, str)] if isinstance(options, list) else [],
        "containers": _int(info.get("Containers")), "running": _int(info.get("ContainersRunning")),
        "paused": _int(info.get("ContainersPaused")), "stopped": _int(info.get("ContainersStopped")),
        "images": _int(info.get("Images")),
        "root_dir": _str(info.get("DockerRootDir")),
        "live_restore": info.get("LiveRestoreEnabled") if isinstance(info.get("LiveRestoreEnabled"), bool) else None,
        "swarm": _str(swarm.get("LocalNodeState")),
        "cpus": _int(info.get("NCPU")), "memory": _int(info.get("MemTotal")),
        "name": _str(info.get("Name")),
    }


def scan_json(scan: ScanRun) -> dict[str, Any]:
    """A scan's progress for the live panel (strings are the host's: the script shows them as text)."""
    def iso(t: datetime | None) -> str | None:
        return t.isoformat() if t else None

    return {
        "id": scan.pk, "state": scan.state, "state_label": scan.get_state_display(),
        "finished": scan.state in FINISHED_STATES, "trigger": scan.get_trigger_display(),
        "queued_at": iso(scan.queued_at), "started_at": iso(scan.started_at), "finished_at": iso(scan.finished_at),
        "error": scan.error, "log": list(scan.log or [])[-30:], "counts": scan.counts or {},
        "url": reverse("scan-page", args=[scan.pk]),
        "status_url": reverse("host-scan-status", args=[scan.host_id]) + f"?scan={scan.pk}",
    }


def _watched_scan(host: DockerHost, wanted: str | None) -> ScanRun | None:
    """The scan the progress panel follows: the one asked for (``?scan=``), else one queued or running."""
    if wanted and wanted.isdigit() and len(wanted) < 19:
        scan = host.scans.filter(pk=int(wanted)).first()
        if scan is not None:
            return scan
    return host.scans.filter(state__in=[ScanState.QUEUED, ScanState.RUNNING]).order_by("-id").first()


class HostPageForm(forms.Form):
    """The host page's parameters: ``at`` (ISO 8601, the host as it was then), ``page`` (of the
    scan history) and ``scan`` (the scan the progress panel follows)."""

    at = MomentField(required=False, label="As of")
    page = forms.CharField(required=False)
    scan = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        for name in sorted(set(self.data) - set(self.fields)):
            self.add_error(None, f"{name[:40]}: unknown parameter; accepted: {', '.join(self.fields)}")
        return super().clean()


#: A resource's failing checks are listed unfolded up to this many (else folded, with a summary line).
UNFOLDED_CHECKS = 3
#: How resource types are sectioned on the host page, in order.
RESOURCE_SECTIONS = (("daemon", "Daemon and host", ("daemon", "host")), ("images", "Images", ("image",)),
                     ("containers", "Containers", ("container",)))


@dataclass
class FailingLink:
    check: FailingCheck
    ref: str | None  # the CIS 1.8.0 control the evidence link opens
    evidence_url: str | None
    findings_url: str


@dataclass
class ResourceRow:
    group: ResourceGroup
    failing: list[FailingLink]
    findings_url: str
    failing_url: str

    @property
    def severities(self) -> list[tuple[str, int]]:
        """(severity, failing checks) worst first: the line shown while the list is folded."""
        counts = Counter(f.check.severity or "unrated" for f in self.failing)
        return [(s, counts[s]) for s in (*SEVERITY_ORDER, "unrated") if counts.get(s)]


def resource_sections(host: DockerHost, groups: list[ResourceGroup], at: datetime | None) -> list[dict[str, Any]]:
    """The host's resources by section, each with links to its findings (all, failing, one
    check) and, per failing check, to the deciding evidence on the control's page. A
    resource's query string is encoded once, not once per failing check."""
    stamp = "&" + urlencode({"at": at.isoformat()}) if at else ""
    findings_page = reverse("findings-page")
    control_pages: dict[str, str] = {}  # ref -> URL (reversed once per control, not per link)

    def link(base: str, check: FailingCheck) -> FailingLink:
        ref = next((r for slug, r in check.controls if slug == SUMMARY_FRAMEWORK), None)
        if ref and ref not in control_pages:
            control_pages[ref] = reverse("control-page", args=[SUMMARY_FRAMEWORK, ref])
        evidence = f"{control_pages[ref]}?evidence={check.scan_id}-{check.result_id}{stamp}#evidence" if ref else None
        return FailingLink(check, ref, evidence, f"{base}&{urlencode({'check': check.check_id})}{stamp}")

    def row(group: ResourceGroup) -> ResourceRow:
        base = findings_page + "?" + urlencode({"host": host.pk, "resource_type": group.resource_type,
                                                "resource": group.resource})
        return ResourceRow(group, [link(base, c) for c in group.failing], base + stamp, f"{base}&status=fail{stamp}")

    out = []
    for key, label, types in RESOURCE_SECTIONS:
        rows = [row(g) for g in groups if g.resource_type in types]
        out.append({"key": key, "label": label, "rows": rows,
                    "failing": sum(1 for r in rows if r.failing)})
    return out


@reader_required
@require_safe
def host_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A host now or as of ``?at=``: its schedule, the daemon's facts, its CIS 1.8.0 summary,
    its daemon, images and containers each with their failing checks (links to the findings
    of that resource and to the evidence), and its scan history. Read through the query layer
    in a fixed number of queries whatever the number of resources or scans."""
    host = get_object_or_404(DockerHost, pk=pk)
    form = HostPageForm(request.GET)
    if not form.is_valid():
        errors = [f"{n}: {m}" if n != "__all__" else m for n, ms in form.errors.items() for m in ms]
        return render(request, "posture/host_detail.html", {"host": host, "state": host_state(host),
                                                            "errors": errors}, status=400)
    at: datetime | None = form.cleaned_data["at"]
    moment = at or timezone.now()
    current = current_scan(host, at)
    scans = host.scans.order_by("-id").defer("log", "warnings")
    if at is not None:
        scans = scans.filter(queued_at__lte=at)
    page = Paginator(scans, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    summary = host_summaries([host.pk], at, SUMMARY_FRAMEWORK).get(host.pk) if current else None
    groups = resources_with_failures(findings([host], moment)) if current else []
    return render(request, "posture/host_detail.html", {
        "host": host, "state": host_state(host), "current": current, "facts": daemon_facts(current),
        "page": page, "watch": None if at else _watched_scan(host, request.GET.get("scan")),
        "overdue": is_overdue(host, current, moment), "at": at, "unfolded": UNFOLDED_CHECKS, "summary": summary, "framework": SUMMARY_FRAMEWORK,
        "sections": resource_sections(host, groups, at),
        "failing_url": reverse("findings-page") + "?" + urlencode({"host": host.pk, "status": "fail",
                                                                    **({"at": at.isoformat()} if at else {})}),
    })


@reader_required
@require_safe
def scan_status(request: HttpRequest, pk: int) -> JsonResponse:
    """JSON for the live panel: ``?scan=ID`` (a scan of this host), else the host's latest
    scan (``"scan": null`` for a host never scanned)."""
    host = get_object_or_404(DockerHost, pk=pk)
    wanted = request.GET.get("scan")
    if wanted is not None and not (wanted.isdigit() and len(wanted) < 19):
        return JsonResponse({"error": "scan must be a scan id (a whole number)"}, status=400)
    scans = host.scans.all()
    scan = scans.filter(pk=int(wanted)).first() if wanted else scans.order_by("-id").first()
    if scan is None and wanted:
        return JsonResponse({"error": f"host {host.name} has no scan #{wanted}"}, status=404)
    response = JsonResponse({"host": host.pk, "scan": scan_json(scan) if scan else None})
    response["Cache-Control"] = "no-store"
    return response


# --- writes -------------------------------------------------------------------------------

@require_POST
@scanner_required
def scan_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a scan (or find the one already queued or running) and follow it."""
    host = get_object_or_404(DockerHost, pk=pk)
    try:
        scan, created = queue_scan(host, Trigger.MANUAL, request.user)
    except ScanRefused as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc)}, status=409)
        messages.error(request, str(exc))
        return redirect("host-page", pk=host.pk)
    if wants_json(request):
        return JsonResponse({"created": created, "scan": scan_json(scan)}, status=201 if created else 200)
    messages.success(request, f"Scan #{scan.pk} queued." if created else
                     f"Scan #{scan.pk} was already {scan.get_state_display().lower()}: following it.")
    return redirect(reverse("host-page", args=[host.pk]) + f"?scan={scan.pk}#scan-progress")


@require_POST
@operator_required
def archive_page(request: HttpRequest, pk: int) -> HttpResponse:
    host, changed = archive_host(get_object_or_404(DockerHost, pk=pk), actor=request.user)
    if changed:
        messages.success(request, f"Host {host.name} archived: it is no longer scanned; its history is kept.")
    return redirect("host-page", pk=host.pk)


@require_POST
@operator_required
def unarchive_page(request: HttpRequest, pk: int) -> HttpResponse:
    host, changed = unarchive_host(get_object_or_404(DockerHost, pk=pk), actor=request.user)
    if changed:
        messages.success(request, f"Host {host.name} unarchived. It stays disabled: edit it and tick "
                                  "“Enabled” to scan it on schedule again.")
    return redirect("host-page", pk=host.pk)


def run_connection_test(form: HostForm, changes: dict[str, Any]) -> ConnectionReport:
    """Test the form's values (saved or not); a URL that cannot be a Docker URL is reported
    without connecting."""
    url = changes.get("url") or ""
    try:
        validate_docker_url(url)
    except ValidationError as exc:
        return ConnectionReport(ok=False, url=url[:200], seconds=0.0, error_kind="configuration",
                                error="; ".join(exc.messages), hint="Check the URL.")
    return check_connection(HostConfig(url=url, **form.tls_for_test(changes)))


def _host_form(request: HttpRequest, host: DockerHost | None) -> HttpResponse:
    form = HostForm(request.POST or None, request.FILES or None, host=host)
    report: ConnectionReport | None = None
    status = 200
    if request.method == "POST":
        testing = request.POST.get("action") == "test"
        changes = None
        if form.is_valid():
            try:
                changes = form.changes()
            except ValidationError:
                pass
        if changes is not None and testing:
            report = run_connection_test(form, changes)
            if not wants_json(request):
                # Keep uploaded PEMs for the save that follows (a browser never refills a file field).
                data = request.POST.copy()
                for field in ("tls_ca", "tls_cert", "tls_key"):
                    if changes.get(field) and request.FILES.get(f"{field}_file"):
                        data[field] = changes[field]
                form = HostForm(data, host=host)
                form.is_valid()
        elif changes is not None:
            try:
                saved = save_host(host, changes, actor=request.user)
            except ValidationError as exc:
                form.show(exc)
            else:
                messages.success(request, f"Host {saved.name} {'saved' if host else 'added'}.")
                return redirect("host-page", pk=saved.pk)
        status = 400 if form.errors else 200
        if testing and wants_json(request):
            return JsonResponse({"report": report.as_json() if report else None,
                                 "errors": {f: [str(m) for m in errs] for f, errs in form.errors.items()}},
                                status=status)
    return render(request, "posture/host_form.html", {"form": form, "host": host, "report": report}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def host_add_page(request: HttpRequest) -> HttpResponse:
    return _host_form(request, None)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def host_edit_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _host_form(request, get_object_or_404(DockerHost, pk=pk))

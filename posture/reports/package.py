"""The evidence package: one zip an auditor can check offline and against posture.

Contents (all at the top level, so ``unzip`` then ``sha256sum -c SHA256SUMS`` works):

- ``report.pdf``: the PDF audit report of the same framework, period and scope
  (posture/reports/pdf.py);
- one CSV per export kind (posture/reports/csv.py), each streamed into the zip;
- ``manifest.json``: format, posture and scanner versions, framework (slug, name, version),
  period, scope (host names), generated at and by, every file's sha256, size and row count,
  and each host's **chain head** at the period's end (its last succeeded scan then: id,
  finish time, chain digest): the hash chain (posture.jobs.ingest.chain_digest) makes every
  earlier scan and payload of that host depend on it;
- ``SHA256SUMS``: every other file's sha256 in ``sha256sum``'s format (manifest.json
  included).

``verify_package`` checks a package: the files against the manifest and SHA256SUMS, and the
manifest's chain heads against the database (the scan still there, its digest the same, its
host's chain intact). Each problem is one line naming the file, host or scan."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from django.conf import settings
from django.utils import timezone

from posture.jobs.ingest import verify_chain
from posture.models import DockerHost, Framework, ScanRun
from posture.queries.exports import chain_heads
from posture.reports import csv as exports
from scanners.snapshot import SCANNER_VERSION

FORMAT = "posture-evidence-package-v1"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
#: Names a package may hold; anything else (or a path) is reported, never extracted.
PDF_NAME = "report.pdf"
ALLOWED = {MANIFEST, SUMS, PDF_NAME, *(k.filename for k in exports.KINDS.values())}


def posture_version() -> str:
    try:
        return importlib.metadata.version("posture")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(settings.BASE_DIR) / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


class _Hashing:
    """Counts and hashes what passes through to ``out``."""

    def __init__(self, out: IO[bytes]):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.out.write(data)


def build_package(spec: exports.ExportSpec, out: IO[bytes], *, generated_by: str = "",
                  kinds: Iterable[str] | None = None, extra: dict[str, bytes] | None = None,
                  pdf: bool = True, progress: Callable[[str, int], None] | None = None) -> dict:
    """Write the package to ``out`` (a binary file); return its manifest. ``pdf``: render the
    PDF report (posture/reports/pdf.py) into it as ``report.pdf``; ``extra``: more files by
    name. ``progress(kind, rows)``: each CSV's rows so far, then ``("report.pdf", 0)``."""
    spec.check()
    extra = dict(extra or {})
    if pdf and PDF_NAME not in extra:
        from posture.reports import pdf as report_pdf

        if progress:
            progress(PDF_NAME, 0)
        extra[PDF_NAME] = report_pdf.render(spec, generated_by=generated_by)
    start, end = spec.period
    framework = Framework.objects.get(slug=spec.framework)
    files: dict[str, dict] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for kind in kinds or exports.KINDS:
            name = exports.KINDS[kind].filename
            rows = 0

            def counted(n: int, kind=kind) -> None:
                nonlocal rows
                rows = n
                if progress:
                    progress(kind, n)

            with zf.open(name, "w", force_zip64=True) as entry:
                sink = _Hashing(entry)
                for chunk in exports.stream(kind, spec, progress=counted):
                    sink.write(chunk)
            files[name] = {"sha256": sink.sha.hexdigest(), "size": sink.size, "rows": rows,
                           "about": exports.KINDS[kind].about}
        for name, data in extra.items():
            zf.writestr(name, data)
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        manifest = {
            "format": FORMAT,
            "posture_version": posture_version(),
            "scanner_version": SCANNER_VERSION,
            "framework": {"slug": framework.slug, "name": framework.name, "version": framework.version},
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "scope": {"hosts": spec.host_names(), "all_hosts": spec.hosts is None},
            "generated_at": timezone.now().isoformat(),
            "generated_by": generated_by,
            "files": files,
            "chain_heads": chain_heads(end, spec.host_ids()),
            "verify": "unzip, then: sha256sum -c SHA256SUMS; against posture: manage.py verify --export FILE",
        }
        text = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        zf.writestr(MANIFEST, text)
        sums = {**{n: f["sha256"] for n, f in files.items()}, MANIFEST: hashlib.sha256(text).hexdigest()}
        zf.writestr(SUMS, "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
    return manifest


# --- verification ---------------------------------------------------------------------------

@dataclass
class PackageCheck:
    problems: list[str]
    files: int = 0
    hosts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _file_digest(zf: zipfile.ZipFile, name: str) -> str:
    sha = hashlib.sha256()
    with zf.open(name) as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            sha.update(block)
    return sha.hexdigest()


def verify_package(source: str | Path | IO[bytes]) -> PackageCheck:
    """Check a package's files against its manifest and SHA256SUMS, and the manifest's
    chain heads against the database. Never raises on a bad package: every problem is a
    line of the answer."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        return PackageCheck([f"not a readable zip: {exc}"])
    with zf:
        names = zf.namelist()
        if MANIFEST not in names:
            return PackageCheck([f"{MANIFEST} is missing: not a posture evidence package"])
        try:
            manifest = json.loads(zf.read(MANIFEST))
            files = manifest["files"]
            heads = manifest["chain_heads"]
            assert isinstance(files, dict) and isinstance(heads, dict)
        except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
            return PackageCheck([f"{MANIFEST} is not a valid manifest (format {FORMAT})"])
        problems: list[str] = []
        for name in names:
            if name not in ALLOWED:
                problems.append(f"{name[:200]!r}: unexpected file in the package")
        actual: dict[str, str] = {}
        for name, entry in sorted(files.items()):
            if name not in names:
                problems.append(f"{name}: listed in the manifest but missing from the package")
                continue
            actual[name] = _file_digest(zf, name)
            if not isinstance(entry, dict) or actual[name] != entry.get("sha256"):
                problems.append(f"{name}: sha256 {actual[name]} does not match the manifest: the file was altered")
        for name in names:
            if name in ALLOWED and name not in files and name not in (MANIFEST, SUMS):
                problems.append(f"{name}: in the package but not in the manifest")
        problems += _check_sums(zf, names, actual)
        problems += _check_heads(heads)
        return PackageCheck(problems, files=len(files), hosts=len(heads))


def _check_sums(zf: zipfile.ZipFile, names: list[str], actual: dict[str, str]) -> list[str]:
    if SUMS not in names:
        return [f"{SUMS} is missing"]
    problems = []
    listed = {}
    for line in zf.read(SUMS).decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    if MANIFEST in names:
        actual = {**actual, MANIFEST: _file_digest(zf, MANIFEST)}
    for name, digest in sorted(actual.items()):
        if listed.get(name) != digest:
            problems.append(f"{name}: sha256 does not match {SUMS}: the file or {SUMS} was altered")
    return problems


def _check_heads(heads: dict) -> list[str]:
    """Every chain head of the manifest against the database."""
    problems = []
    hosts = dict(DockerHost.objects.filter(name__in=list(heads)).values_list("name", "pk"))
    for name, head in sorted(heads.items()):
        shown = str(name)[:100]
        if name not in hosts:
            problems.append(f"host {shown}: not in this database")
            continue
        scan_id = head.get("scan") if isinstance(head, dict) else None
        scan = ScanRun.objects.filter(pk=scan_id, host_id=hosts[name]).first() if isinstance(scan_id, int) else None
        if scan is None:
            problems.append(f"host {shown}: chain head scan #{scan_id} is not in this database")
        elif scan.chain_digest != head.get("chain_digest"):
            problems.append(f"host {shown}: chain head scan #{scan_id} digest differs from the database "
                            f"(package {str(head.get('chain_digest'))[:16]}, database {scan.chain_digest[:16]})")
        for problem in verify_chain(hosts[name]):
            problems.append(f"host {shown}: {problem}")
    return problems

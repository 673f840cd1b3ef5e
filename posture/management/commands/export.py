"""manage.py export: a CSV, the PDF report or an evidence package of an audit period, for scripts.

    manage.py export --framework cis-docker-1.8.0 --from 2026-01-01 --to 2026-04-01 \
        [--hosts web1,web2] --format zip --out q1.zip       (every CSV and report.pdf)
    manage.py export ... --format pdf --out q1.pdf
    manage.py export ... --format csv --kind findings --out findings.csv   (--out - : stdout)

Dates are ISO 8601 (a date alone is midnight in the server's time zone); ``--to`` is
exclusive. Progress goes to stderr; the file's sha256 is printed on stdout at the end."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from posture.filtersets import parse_moment
from posture.reports import csv as exports
from posture.reports import pdf
from posture.reports.package import PDF_NAME, build_package


class Command(BaseCommand):
    help = "Export CSV evidence, the PDF report or a verifiable evidence package (zip) for a framework and period."

    def add_arguments(self, parser):
        parser.add_argument("--framework", required=True, help="framework slug, e.g. cis-docker-1.8.0")
        parser.add_argument("--from", dest="start", required=True, help="period start (ISO 8601, inclusive)")
        parser.add_argument("--to", dest="end", required=True, help="period end (ISO 8601, exclusive)")
        parser.add_argument("--hosts", default=None, help="comma-separated host names (default: every host)")
        parser.add_argument("--format", choices=["csv", "pdf", "zip"], default="zip")
        parser.add_argument("--kind", choices=list(exports.KINDS), default=None, help="which CSV (--format csv)")
        parser.add_argument("--bom", action="store_true", help="start the CSV with a UTF-8 byte order mark")
        parser.add_argument("--out", required=True, help="output file ('-': stdout, CSV only)")

    def handle(self, *args, framework, start, end, hosts, format, kind, bom, out, **opts):
        try:
            period = (parse_moment(start), parse_moment(end))
        except Exception as exc:  # parse_moment's ValidationError or ValueError: one clear line
            raise CommandError(f"bad date: {getattr(exc, 'messages', [exc])[0]}") from None
        names = tuple(h.strip() for h in hosts.split(",") if h.strip()) if hosts is not None else None
        spec = exports.ExportSpec(framework, *period, names)
        try:
            spec.check()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if format == "csv" and kind is None:
            raise CommandError(f"--format csv needs --kind, one of: {', '.join(exports.KINDS)}")
        if format != "csv" and (kind or out == "-"):
            raise CommandError(f"--kind and --out - are for --format csv (not {format})")

        def note(text: str) -> None:
            self.stderr.write(text)
            self.stderr.flush()

        if out == "-":
            exports.write(kind, spec, sys.stdout.buffer, bom=bom, progress=lambda n: note(f"{kind}: {n} rows"))
            return
        target = Path(out)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as handle:
                if format == "csv":
                    exports.write(kind, spec, handle, bom=bom, progress=lambda n: note(f"{kind}: {n} rows"))
                elif format == "pdf":
                    pdf.write(spec, handle, generated_by="manage.py export",
                              progress=lambda percent, text: note(f"report.pdf: {text}"))
                else:
                    build_package(spec, handle, generated_by="manage.py export",
                                  progress=lambda k, n: note(k if k == PDF_NAME else f"{k}.csv: {n} rows"))
            partial.replace(target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
        with open(target, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        self.stdout.write(f"{digest}  {target}")

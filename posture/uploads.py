"""Attestation files: which uploads are accepted, and with which content type they are served.

An upload's name and declared content type are chosen by whoever sends it, so neither is
trusted: the file's first bytes must match one of a short allow-list (PDF, PNG, JPEG, plain
text, CSV) *and* its extension must name that same type, and it must not exceed
POSTURE_ATTESTATION_MAX_BYTES. Serving takes the type from the same allow-list, never from
the upload, and falls back to application/octet-stream (files stored before these checks).

Five fixed signatures need no dependency: PDF, PNG and JPEG start with magic bytes; text has
none, so it is accepted only as UTF-8 with no control characters and no leading markup (an
HTML page renamed .txt is refused rather than trusted to the browser's sniffing)."""

from __future__ import annotations

import codecs
import logging
import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    label: str
    content_type: str
    extensions: tuple[str, ...]
    magic: bytes = b""  # empty: a text kind, checked by decoding


KINDS = (
    Kind("PDF", "application/pdf", (".pdf",), b"%PDF-"),
    Kind("PNG", "image/png", (".png",), b"\x89PNG\r\n\x1a\n"),
    Kind("JPEG", "image/jpeg", (".jpg", ".jpeg"), b"\xff\xd8\xff"),
    Kind("plain text", "text/plain; charset=utf-8", (".txt",)),
    Kind("CSV", "text/csv; charset=utf-8", (".csv",)),
)
ACCEPTED = "attach a PDF, PNG, JPEG, plain text (.txt) or CSV file"
FALLBACK_TYPE = "application/octet-stream"
_TEXT_CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r\f"} | {"\x7f"}


def _kind_by_extension(name: str) -> Kind | None:
    ext = os.path.splitext(name)[1].lower()
    return next((k for k in KINDS if ext in k.extensions), None)


def _kind_by_magic(head: bytes) -> Kind | None:
    return next((k for k in KINDS if k.magic and head.startswith(k.magic)), None)


def _text_problem(chunks, *, complete: bool = True) -> str | None:
    """Why these bytes are not plain UTF-8 text, or None when they are. ``complete=False``:
    the bytes are only the start of a file (a character may be cut at the end)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen_content = False
    try:
        for chunk in chunks:
            text = decoder.decode(chunk)
            if not seen_content:
                stripped = text.lstrip("\ufeff \t\r\n\f")
                if stripped:
                    seen_content = True
                    if stripped.startswith("<"):
                        return "it starts with markup (HTML or XML), which is not accepted as text"
            if any(ch in _TEXT_CONTROL for ch in text):
                return "it holds binary data (control characters)"
        if complete:
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    return None


def _shown(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "..."


def validate_attestation_file(upload) -> Kind:
    """Check an uploaded file before anything is stored; raise ValidationError saying why
    it is refused. Returns the recognised kind."""
    limit = settings.POSTURE_ATTESTATION_MAX_BYTES
    name = os.path.basename(upload.name or "")
    if upload.size > limit:
        raise ValidationError(
            f"the file is {upload.size} bytes; attestation files may be at most {limit} bytes")
    if upload.size == 0:
        raise ValidationError("the file is empty")
    by_name = _kind_by_extension(name)
    if by_name is None:
        ext = os.path.splitext(name)[1] or "(none)"
        raise ValidationError(f"{_shown(name)!r}: files with the extension {_shown(ext)} are not accepted; {ACCEPTED}")
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    by_magic = _kind_by_magic(head)
    if by_name.magic:
        if by_magic is not by_name:
            raise ValidationError(f"{_shown(name)!r} is not a {by_name.label} file (its content does not start "
                                  f"as one does); {ACCEPTED}")
    else:
        if by_magic is not None:
            raise ValidationError(f"{_shown(name)!r} holds a {by_magic.label} file, not {by_name.label}: "
                                  f"name it {by_magic.extensions[0]}")
        problem = _text_problem(upload.chunks())
        upload.seek(0)
        if problem:
            raise ValidationError(f"{_shown(name)!r} is not {by_name.label}: {problem}; {ACCEPTED}")
    return by_name


def served_content_type(name: str, head: bytes) -> str:
    """The content type to serve a stored file with: an allow-listed type its name and first
    bytes agree on, else application/octet-stream."""
    by_name = _kind_by_extension(name)
    if by_name is None:
        return FALLBACK_TYPE
    if by_name.magic:
        return by_name.content_type if _kind_by_magic(head) is by_name else FALLBACK_TYPE
    if _kind_by_magic(head) is None and _text_problem([head], complete=False) is None:
        return by_name.content_type
    return FALLBACK_TYPE


def attestation_file_response(att) -> FileResponse:
    """Serve an attestation's file as a download: attachment, allow-listed content type,
    nosniff, never cached by shared caches. The caller has checked the reader's role."""
    if not att.file:
        raise Http404(f"attestation #{att.pk} has no file")
    try:
        handle = att.file.open("rb")
    except FileNotFoundError:
        log.error("attestation #%s: stored file %s is missing", att.pk, att.file.name)
        raise Http404(f"the file of attestation #{att.pk} is missing from storage") from None
    head = handle.read(8192)
    handle.seek(0)
    name = os.path.basename(att.file.name)
    response = FileResponse(handle, as_attachment=True, filename=name,
                            content_type=served_content_type(name, head))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response

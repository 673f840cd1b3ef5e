"""Attestation files: only allow-listed types (by their first bytes, not their names) up to
a size are stored, outside any public URL; readers download them through an authenticated
view as attachments with an allow-listed type and nosniff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from posture.models import Attestation
from tests.posture.conftest import api_error
from tests.posture.test_api import client_for

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def upload(user, name: str, content: bytes, **extra):
    payload = {"check_id": "manual.host_os_hardened", "statement": "CIS Debian L1 applied",
               "valid_until": (timezone.now() + timedelta(days=90)).isoformat(),
               "file": SimpleUploadedFile(name, content, content_type="application/pdf")}
    return client_for(user).post("/api/v1/attestations/", payload, format="multipart", **extra)


@pytest.mark.parametrize("name, content, served_type", [
    ("hardening.pdf", PDF, "application/pdf"),
    ("screenshot.png", PNG, "image/png"),
    ("photo.JPG", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64, "image/jpeg"),
    ("notes.txt", "Hardened per CIS L1 — signed\n".encode(), "text/plain; charset=utf-8"),
    ("inventory.csv", b"host,os\nh1,debian\n", "text/csv; charset=utf-8"),
])
def test_it_serves_an_allowed_file_to_readers_as_an_attachment(personas, name, content, served_type):
    created = upload(personas["operator"], name, content)
    assert created.status_code == 201, created.content
    att = Attestation.objects.get()
    url = created.json()["file"]
    assert url == f"http://testserver/api/v1/attestations/{att.pk}/file/"
    response = client_for(personas["auditor"]).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == served_type
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("who, status", [(None, 401), ("outsider", 403), ("auditor", 200), ("operator", 200),
                                         ("admin", 200)])
def test_it_lets_only_readers_download(personas, who, status):
    upload(personas["operator"], "hardening.pdf", PDF)
    att = Attestation.objects.get()
    response = client_for(personas.get(who)).get(f"/api/v1/attestations/{att.pk}/file/", HTTP_ACCEPT="application/pdf")
    assert response.status_code == status
    if who == "outsider":
        assert "no posture role" in api_error(response)["message"]


def test_it_answers_404_for_an_attestation_without_a_file(personas):
    payload = {"check_id": "manual.host_os_hardened", "statement": "done",
               "valid_until": (timezone.now() + timedelta(days=1)).isoformat()}
    created = client_for(personas["operator"]).post("/api/v1/attestations/", payload, format="json").json()
    assert created["file"] is None
    response = client_for(personas["auditor"]).get(f"/api/v1/attestations/{created['id']}/file/")
    assert response.status_code == 404 and "has no file" in api_error(response)["message"]


@pytest.mark.parametrize("name, content, message", [
    ("setup.exe", b"MZ\x90\x00" + b"\x00" * 60, "files with the extension .exe are not accepted"),
    ("report.pdf", b"<!doctype html><script>alert(1)</script>", "'report.pdf' is not a PDF file"),
    ("report.pdf", b"MZ\x90\x00" + b"\x00" * 60, "'report.pdf' is not a PDF file"),
    ("page.html", b"<html></html>", "files with the extension .html are not accepted"),
    ("notes.txt", b"<html><script>alert(1)</script></html>", "starts with markup"),
    ("notes.txt", b"\x00\x01binary\xff", "is not plain text"),
    ("notes.txt", PDF, "holds a PDF file, not plain text: name it .pdf"),
    ("image.png", PDF, "'image.png' is not a PNG file"),
    ("noextension", b"hello", "extension (none) are not accepted"),
    ("empty.txt", b"", "file is empty"),
])
def test_it_refuses_a_disallowed_or_disguised_file(personas, media, name, content, message):
    response = upload(personas["operator"], name, content)
    assert response.status_code == 400 and message in response.content.decode(), response.content
    assert not Attestation.objects.exists() and stored_files(media) == []


def test_it_refuses_an_oversized_file_and_stores_nothing(personas, media, settings):
    settings.POSTURE_ATTESTATION_MAX_BYTES = 1000
    response = upload(personas["operator"], "big.pdf", PDF + b"0" * 1000)
    assert response.status_code == 400
    assert f"the file is {len(PDF) + 1000} bytes; attestation files may be at most 1000 bytes" in response.content.decode()
    assert not Attestation.objects.exists() and stored_files(media) == []


def test_it_refuses_an_oversized_body_before_reading_it(personas, media, settings):
    settings.POSTURE_ATTESTATION_MAX_BYTES = 1000
    response = upload(personas["operator"], "big.pdf", PDF + b"0" * 200_000)
    assert response.status_code == 400 and "attestation files may be at most 1000 bytes" in response.content.decode()
    assert not Attestation.objects.exists() and stored_files(media) == []


def test_it_defaults_to_ten_megabytes(settings):
    assert settings.POSTURE_ATTESTATION_MAX_BYTES == 10 * 1024 * 1024


def test_it_serves_files_from_before_the_checks_as_plain_bytes(personas, media):
    """A file stored before the allow-list (any type) is still served, but never as HTML."""
    att = Attestation.objects.create(check_id="manual.host_os_hardened", statement="old", attested_at=timezone.now(),
                                     valid_until=timezone.now() + timedelta(days=1),
                                     file=SimpleUploadedFile("old.html", b"<script>alert(1)</script>"))
    response = client_for(personas["auditor"]).get(f"/api/v1/attestations/{att.pk}/file/")
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_it_links_files_from_the_attestations_page(client, personas):
    upload(personas["operator"], "hardening.pdf", PDF)
    att = Attestation.objects.get()
    client.force_login(personas["auditor"])
    body = client.get("/attestations/").content.decode()
    assert f'href="/attestations/{att.pk}/file/"' in body and "CIS Debian L1 applied" in body
    response = client.get(f"/attestations/{att.pk}/file/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Disposition"].startswith("attachment;")
    client.force_login(personas["outsider"])
    assert client.get(f"/attestations/{att.pk}/file/").status_code == 403
    client.logout()
    assert client.get(f"/attestations/{att.pk}/file/").status_code == 302


def test_it_keeps_files_out_of_any_public_url(personas, settings, client):
    upload(personas["operator"], "hardening.pdf", PDF)
    name = Attestation.objects.get().file.name
    assert not settings.MEDIA_URL.strip("/")  # no media URL is served
    for guess in (f"/{name}", f"/media/{name}", f"/static/{name}"):
        assert client.get(guess).status_code == 404

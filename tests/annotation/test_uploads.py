"""Uploads bounded before and while they are read: an anonymous or expert
multipart POST of 24 MB is refused from its Content-Length and writes nothing to
the temporary folder; an operator's upload that runs past MAX_UPLOAD_MB is
stopped at the limit while it streams."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from annotation.uploads import LimitedUploadHandler
from tests.factories import AdminFactory, ExpertFactory

pytestmark = pytest.mark.django_db

BIG = 24 * 1024 * 1024


@pytest.fixture
def spool(settings, tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # anything parsed goes to disk
    return folder


def _multipart(size: int) -> bytes:
    return encode_multipart(
        BOUNDARY,
        {"patient_code": "P-1", "file": _Named(b"\0" * size, "big.mp4")},
    )


class _Named(io.BytesIO):
    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def _post(client: Client, path: str, body: bytes):
    return client.generic("POST", path, body, content_type=MULTIPART_CONTENT)


@pytest.mark.parametrize("who", ["anonymous", "expert"])
@pytest.mark.parametrize("where", ["login", "recording_upload", "api-votes"])
def test_a_big_body_from_someone_who_may_not_upload_is_refused_unread(
    who, where, spool
):
    client = Client(enforce_csrf_checks=True)
    if who == "expert":
        client.force_login(ExpertFactory())
    response = _post(client, reverse(where), _multipart(BIG))
    assert response.status_code in (403, 413)
    assert response.status_code == (403 if where == "recording_upload" else 413)
    assert list(spool.iterdir()) == []


def test_a_big_api_body_gets_a_json_413(spool):
    client = Client()
    client.force_login(ExpertFactory())
    response = client.generic(
        "POST", "/api/votes/", b"{" + b" " * BIG + b"}", content_type="application/json"
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_an_operator_upload_past_the_limit_is_stopped_while_streaming(settings, spool):
    """A body longer than its declared length cannot get past the gate, so the
    handler is fed directly: it stops once the limit is passed."""
    settings.MAX_UPLOAD_MB = 1
    from django.test import RequestFactory

    request = RequestFactory().post(reverse("recording_upload"))
    request.user = AdminFactory()
    handler = LimitedUploadHandler(request)
    handler.handle_raw_input(None, {}, None, b"", "utf-8")
    chunk = b"\0" * (64 * 1024)
    from django.core.files.uploadhandler import StopUpload

    fed = 0
    with pytest.raises(StopUpload):
        for _ in range(100):
            handler.receive_data_chunk(chunk, fed)
            fed += len(chunk)
    assert handler.stopped
    assert fed <= 1024 * 1024 + 64 * 1024  # stopped at the limit, not at the end
    # An expert's limit is the small-body one.
    request.user = ExpertFactory()
    handler = LimitedUploadHandler(request)
    handler.handle_raw_input(None, {}, None, b"", "utf-8")
    assert handler.limit == settings.DATA_UPLOAD_MAX_MEMORY_SIZE

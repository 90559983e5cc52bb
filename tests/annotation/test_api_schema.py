import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_openapi_schema_is_valid_and_lists_every_operation():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    for path in [
        "/api/clips/next/",
        "/api/clips/{clip_id}/",
        "/api/votes/",
        "/api/votes/{vote_id}/",
        "/api/repeat-votes/{vote_id}/",
        "/api/distributions/",
    ]:
        assert f"{path}:" in schema, path


def test_swagger_docs_page_renders_for_a_signed_in_user(admin_client_api):
    response = admin_client_api.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()

import io
import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
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
        "/api/votes/{vote_ref}/",
        "/api/distributions/",
    ]:
        assert f"{path}:" in schema, path


def test_swagger_docs_page_renders_for_a_signed_in_user(admin_client_api):
    response = admin_client_api.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_swagger_docs_page_loads_nothing_from_another_host(admin_client_api):
    """Labs may be offline: Swagger UI's scripts, styles and favicon come from this
    server (drf-spectacular-sidecar), never from a CDN."""
    response = admin_client_api.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    # The bundle is also named inside inline script strings in some versions.
    urls += re.findall(r"""["']((?:https?:)?//[^"']+)["']""", html)
    external = sorted({url for url in urls if re.match(r"(?i)(https?:)?//", url)})
    assert not external, (
        "The API docs page loads assets from another host: "
        f"{external}. Install drf-spectacular-sidecar, add 'drf_spectacular_sidecar' "
        "to INSTALLED_APPS and set SWAGGER_UI_DIST/SWAGGER_UI_FAVICON_HREF/"
        "REDOC_DIST to 'SIDECAR' in SPECTACULAR_SETTINGS."
    )
    assets = [url for url in urls if url.startswith(settings.STATIC_URL)]
    assert any(url.endswith(".js") for url in assets), urls
    for url in assets:
        path = url[len(settings.STATIC_URL) :].split("?")[0]
        assert finders.find(path), f"{url} is referenced but no static file has it"

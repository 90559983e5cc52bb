"""Server-rendered pages: who sees what, templates, and blind grading in the HTML."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from annotation import services
from tests.factories import AdminFactory

pytestmark = pytest.mark.django_db

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
# Overrides of third-party templates extend those packages' own bases.
THIRD_PARTY_DIRS = {"admin", "rest_framework", "drf_spectacular"}
PAGE_TEMPLATES = sorted(
    path.relative_to(TEMPLATES_DIR).as_posix()
    for path in TEMPLATES_DIR.rglob("*.html")
    if path.name != "base.html"
    and path.relative_to(TEMPLATES_DIR).parts[0] not in THIRD_PARTY_DIRS
    and not path.name.startswith("_")  # partials are included, not rendered
)


@pytest.fixture
def expert(db):
    return services.expert_create(
        username="grader", password="grader-pass-123", code="EXP-0100"
    )


@pytest.fixture
def admin_user(db):
    return services.admin_create(username="boss", password="boss-pass-123")


def tiny_mp4() -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for i in range(3):
            image = np.full((16, 16, 3), 40 * i, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


@pytest.fixture
def clip(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    patient = services.patient_get_or_create(code="PAT-1")
    return services.clip_create(
        patient=patient,
        frames=np.zeros((3, 16, 16, 3), dtype=np.uint8),
        fps=10.0,
        track=[[0, 0]] * 3,
        speed=1.0,
        speed_unit="px/s",
        kinematics={},
        video_bytes=tiny_mp4(),
    )


def test_grading_page_redirects_anonymous_visitor_to_login(client):
    response = client.get(reverse("grade"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/grade/" in response["Location"]


def test_home_redirects_anonymous_visitor_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_form_signs_expert_in_and_lands_on_grading_page(client, expert):
    response = client.post(
        reverse("login"),
        {"username": "grader", "password": "grader-pass-123"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("grade")
    assert response.status_code == 200
    assert b'id="grader"' in response.content


def test_login_with_wrong_password_shows_an_error(client, expert):
    response = client.post(
        reverse("login"), {"username": "grader", "password": "wrong"}
    )
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert b"correct username and password" in response.content


def test_home_sends_expert_to_grading_page(client, expert):
    client.force_login(expert)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("grade")


def test_home_sends_an_operator_to_the_recordings_after_sign_in(client):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from annotation.roles import OPERATORS_GROUP

    operator = get_user_model().objects.create_user(
        username="op", password="op-pass-123456"
    )
    operator.groups.add(Group.objects.get_or_create(name=OPERATORS_GROUP)[0])
    response = client.post(
        reverse("login"), {"username": "op", "password": "op-pass-123456"}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("recording_list")


def test_home_sends_admin_to_admin_landing_page(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin_home")


def test_admin_landing_page_links_django_admin_and_api_docs(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin_home"))
    assert response.status_code == 200
    assert b'href="/admin/"' in response.content
    assert b'href="/api/docs/"' in response.content


def test_expert_gets_403_on_admin_landing_page(client, expert):
    client.force_login(expert)
    response = client.get(reverse("admin_home"))
    assert response.status_code == 403
    assert b"for administrators" in response.content


def test_user_without_role_gets_clear_403_on_home(client, django_user_model):
    user = django_user_model.objects.create_user(username="nobody", password="x")
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert b"no role" in response.content


def test_expert_sees_grading_page_with_controls_and_keyboard_help(client, expert):
    client.force_login(expert)
    response = client.get(reverse("grade"))
    assert response.status_code == 200
    html = response.content.decode()
    for grade in "ABCDE":
        assert f'data-grade="{grade}"' in html
    assert 'id="progress-text"' in html
    assert "EXP-0100" in html  # the expert's pseudonymous code
    assert 'id="video"' in html
    assert "Keyboard" in html and "<kbd>Space</kbd>" in html
    assert 'data-next-url="/api/clips/next/"' in html
    assert 'data-votes-url="/api/votes/"' in html
    assert "js/grade.js" in html
    # The page's JavaScript reads the CSRF token from this cookie.
    assert "csrftoken" in response.cookies


def test_admin_gets_403_page_on_grading_page(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("grade"))
    assert response.status_code == 403
    assert b"Only experts grade clips" in response.content
    assert b'id="grader"' not in response.content


def test_grading_page_html_carries_no_panel_data(client, expert, clip):
    other = services.expert_create(username="other", password="other-pass-123")
    services.vote_create(expert=other, clip=clip, grade="B")
    client.force_login(expert)
    html = client.get(reverse("grade")).content.decode().lower()
    for leak in ("distribution", "n_votes", "probs", "latent_quality", "panel grades"):
        assert leak not in html
    assert f"/media/clips/{clip.pk}/" not in html  # clips arrive through the API


def test_the_core_pages_are_among_the_checked_templates():
    for name in ("registration/login.html", "annotation/grade.html", "403.html"):
        assert name in PAGE_TEMPLATES


@pytest.mark.parametrize("name", PAGE_TEMPLATES)
def test_page_templates_extend_base(name):
    first = (TEMPLATES_DIR / name).read_text().lstrip().splitlines()[0]
    assert first.startswith('{% extends "base.html" %}'), name


def test_error_page_renders_without_a_request():
    # The 500 handler renders with no request and no user: base.html must cope.
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html


def _offer(expert) -> str:
    """Hand the clip to the expert; the URL the expert watches it by."""
    from annotation import selectors
    from tests.factories import handle

    [assignment] = selectors.clip_next_for_expert(expert=expert, count=1, holder="t")
    return reverse("presentation_video", args=[handle(expert, assignment.clip)])


def test_clip_video_is_served_to_expert_as_mp4(client, expert, clip):
    from tests.factories import handle

    client.force_login(expert)
    # Never handed to this expert: as if it did not exist.
    url = reverse("presentation_video", args=[handle(expert, clip)])
    assert client.get(url).status_code == 404
    assert _offer(expert) == url
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp4"
    body = b"".join(response.streaming_content)
    assert body[4:8] == b"ftyp"
    # Experts never watch by clip id (they are never given one).
    assert client.get(reverse("clip_video", args=[clip.pk])).status_code == 403


def test_a_withdrawn_clip_video_is_refused_to_experts_not_admins(client, expert, clip):
    url = _offer(expert)
    clip.is_active = False
    clip.save(update_fields=["is_active"])
    client.force_login(expert)
    assert client.get(url).status_code == 404
    client.force_login(AdminFactory())
    assert client.get(reverse("clip_video", args=[clip.pk])).status_code == 200


def test_an_operator_watches_clips_by_id(client, clip, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user(username="op", password="x")
    user.groups.add(Group.objects.get(name="operators"))
    client.force_login(user)
    assert client.get(reverse("clip_video", args=[clip.pk])).status_code == 200


def test_clip_video_requires_login(client, clip):
    response = client.get(reverse("clip_video", args=[clip.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_clip_video_of_unknown_clip_or_handle_is_404(client, expert):
    client.force_login(AdminFactory())
    assert client.get(reverse("clip_video", args=[999999])).status_code == 404
    client.force_login(expert)
    for handle in ["a" * 26, "not-a-handle", "7" * 40]:
        url = reverse("presentation_video", args=[handle])
        assert client.get(url).status_code == 404, handle


def test_clip_video_refused_to_user_without_role(client, clip, django_user_model):
    user = django_user_model.objects.create_user(username="nobody", password="x")
    client.force_login(user)
    response = client.get(reverse("clip_video", args=[clip.pk]))
    assert response.status_code == 403


def test_logout_is_a_post_that_ends_the_session(client, expert):
    client.force_login(expert)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("grade")).status_code == 302


def test_clip_video_honours_a_byte_range(client, expert, clip):
    url = _offer(expert)
    client.force_login(expert)
    whole = b"".join(client.get(url).streaming_content)
    response = client.get(url, HTTP_RANGE="bytes=4-11")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 4-11/{len(whole)}"
    assert response.content == whole[4:12]
    assert response.content.startswith(b"ftyp")
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and tail.content == whole[-10:]


def test_clip_video_range_past_the_end_is_416(client, expert, clip):
    url = _offer(expert)
    client.force_login(expert)
    response = client.get(url, HTTP_RANGE="bytes=999999-")
    assert response.status_code == 416
    assert response["Content-Range"].startswith("bytes */")


def test_logout_by_get_asks_to_confirm_and_keeps_the_session(client, expert):
    client.force_login(expert)
    response = client.get(reverse("logout"))
    assert response.status_code == 200
    assert b"Log out?" in response.content
    assert client.get(reverse("grade")).status_code == 200


def test_the_admin_clip_list_is_readable_and_the_clip_page_plays(client, clip):
    """Votes and the panel first, speeds rounded; the clip page plays its video
    (muted autoplay) from the admin URL and shows the panel's distribution."""
    from django.contrib.auth import get_user_model

    from annotation import services
    from annotation.models import Clip
    from tests.factories import ExpertFactory

    Clip.objects.filter(pk=clip.pk).update(speed=12.345678)
    for grade in "ABB":
        services.vote_create(expert=ExpertFactory(), clip=clip, grade=grade)
    boss = get_user_model().objects.create_superuser("boss-admin", "", "x")
    client.force_login(boss)
    listing = client.get("/admin/annotation/clip/").content.decode()
    assert "12.3 px/s" in listing and "12.345678" not in listing
    assert "1-2-0-0-0" in listing
    table = listing[listing.index('id="result_list"') :]
    header = table[: table.index("</thead>")].lower()
    assert header.index("votes") < header.index("speed") < header.index("patient")
    page = client.get(f"/admin/annotation/clip/{clip.pk}/change/").content.decode()
    assert f'src="/media/clips/{clip.pk}/video.mp4"' in page
    assert "autoplay" in page and "muted" in page
    assert "3 votes: A 1 (33 %), B 2 (67 %), C 0 (0 %)" in page

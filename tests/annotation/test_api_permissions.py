"""The permission matrix: every endpoint × anonymous / expert / admin."""

import pytest
from rest_framework.authtoken.models import Token

from annotation import services
from annotation.handles import presentation_handle
from tests.annotation.conftest import session_client
from tests.factories import ClipFactory, ExpertFactory, offer

pytestmark = pytest.mark.django_db

DENIED = {401, 403}


@pytest.fixture
def world(expert, admin_user):
    clip, clip2 = ClipFactory(), ClipFactory()
    fresh = ClipFactory()
    offer(expert, [fresh])  # handed to the expert, as the next-clip call does
    someone = ExpertFactory()
    others_vote = services.vote_create(expert=someone, clip=clip2, grade="D")
    own_vote = services.vote_create(expert=expert, clip=clip, grade="B")
    return {
        "clip": clip,
        "fresh_clip": fresh,
        "own_vote": own_vote,
        "others_vote": others_vote,
        "expert": expert,
        "admin": admin_user,
        # What the expert knows clips and votes by (and another expert's handle)
        "own_handle": handle(expert, clip),
        "fresh_handle": handle(expert, fresh),
        "others_handle": handle(someone, clip2),
    }


def handle(expert, clip, repeat=False):
    return presentation_handle(expert_id=expert.pk, clip_id=clip.pk, repeat=repeat)


# (method, url template, body, expected for anonymous, expert, admin)
MATRIX = [
    ("post", "/api/clips/next/", None, DENIED, {200}, {403}),
    (
        "post",
        "/api/votes/",
        {"clip": "{fresh_handle}", "grade": "A"},
        DENIED,
        {201},
        {403},
    ),
    (
        "post",
        "/api/votes/",
        {"clip": "{others_handle}", "grade": "A"},
        DENIED,
        {404},
        {403},
    ),
    ("get", "/api/votes/", None, DENIED, {200}, {200}),
    # Experts name their votes by handle, admins by id; neither works for the other.
    ("get", "/api/votes/{own_handle}/", None, DENIED, {200}, {404}),
    ("get", "/api/votes/{own_vote}/", None, DENIED, {404}, {200}),
    ("get", "/api/votes/{others_vote}/", None, DENIED, {404}, {200}),
    ("get", "/api/votes/{others_handle}/", None, DENIED, {404}, {404}),
    ("patch", "/api/votes/{own_handle}/", {"grade": "C"}, DENIED, {200}, {403}),
    ("patch", "/api/votes/{own_vote}/", {"grade": "C"}, DENIED, {404}, {403}),
    ("patch", "/api/votes/{others_handle}/", {"grade": "C"}, DENIED, {404}, {403}),
    ("patch", "/api/votes/not-a-handle/", {"grade": "C"}, DENIED, {404}, {403}),
    # Experts get clips from next-clip only, by handle: no clip list, no clip ids.
    ("get", "/api/clips/", None, DENIED, {403}, {200}),
    ("get", "/api/clips/{clip}/", None, DENIED, {403}, {200}),
    ("get", "/api/distributions/", None, DENIED, {403}, {200}),
    ("get", "/api/schema/", None, DENIED, {200}, {200}),
    ("get", "/api/docs/", None, DENIED, {200}, {200}),
]


def _fill(template, world):
    if isinstance(template, str):
        return template.format(
            clip=world["clip"].pk,
            fresh_clip=world["fresh_clip"].pk,
            own_vote=world["own_vote"].pk,
            others_vote=world["others_vote"].pk,
            own_handle=world["own_handle"],
            fresh_handle=world["fresh_handle"],
            others_handle=world["others_handle"],
        )
    if isinstance(template, dict):
        filled = {k: _fill(v, world) for k, v in template.items()}
        return {k: int(v) if v.isdigit() else v for k, v in filled.items()}
    return template


def _call(client, method, url, body):
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("role", ["anonymous", "expert", "admin"])
@pytest.mark.parametrize("method, url, body, anon, as_expert, as_admin", MATRIX)
def test_permission_matrix(world, role, method, url, body, anon, as_expert, as_admin):
    user = {"anonymous": None, "expert": world["expert"], "admin": world["admin"]}[role]
    expected = {"anonymous": anon, "expert": as_expert, "admin": as_admin}[role]
    response = _call(
        session_client(user), method, _fill(url, world), _fill(body, world)
    )
    assert response.status_code in expected, response.content[:300]
    if response.status_code >= 400 and "json" in response["Content-Type"]:
        assert response.json()["detail"]


def test_token_authentication_works_without_csrf(world):
    token = Token.objects.create(user=world["expert"])
    client = session_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(
        "/api/votes/",
        {"clip": handle(world["expert"], world["fresh_clip"]), "grade": "E"},
        format="json",
    )
    assert response.status_code == 201


def test_bad_token_is_refused_with_a_reason():
    client = session_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/clips/")
    assert response.status_code in DENIED
    assert "token" in response.json()["detail"].lower()


def test_token_endpoint_hands_out_a_token_for_valid_credentials(expert):
    from tests.factories import PASSWORD

    client = session_client()
    response = client.post(
        "/api/auth/token/",
        {"username": expert.username, "password": PASSWORD},
        format="json",
    )
    assert response.status_code == 200 and response.json()["token"]
    wrong = client.post(
        "/api/auth/token/",
        {"username": expert.username, "password": "no"},
        format="json",
    )
    assert wrong.status_code == 400 and wrong.json()["detail"]


def test_expert_vote_list_contains_only_own_votes(world):
    response = session_client(world["expert"]).get("/api/votes/")
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {world["own_handle"]}


def test_admin_vote_list_contains_everyones_votes(world):
    response = session_client(world["admin"]).get("/api/votes/")
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {world["own_vote"].pk, world["others_vote"].pk}


# --- role groups -------------------------------------------------------------------


def test_migrations_create_the_three_role_groups():
    from django.contrib.auth.models import Group

    names = set(Group.objects.values_list("name", flat=True))
    assert {"experts", "admins", "operators"} <= names
    # Operators are checked by group name; only admins hold model permissions.
    assert not Group.objects.get(name="operators").permissions.exists()
    assert Group.objects.get(name="admins").permissions.exists()


def test_a_member_of_the_migrated_operators_group_sees_recordings_not_the_api(
    django_user_model,
):
    from django.contrib.auth.models import Group
    from django.urls import reverse

    user = django_user_model.objects.create_user("operator1", password="op-pass-123")
    user.groups.add(Group.objects.get(name="operators"))
    client = session_client(user)
    assert client.get(reverse("recording_list")).status_code == 200
    assert client.post("/api/clips/next/").status_code == 403
    assert client.get("/api/votes/").status_code == 403


@pytest.mark.parametrize("by", ["token", "id"])
def test_a_users_roles_are_read_with_it_whatever_other_groups_it_has(
    django_user_model, by
):
    """The one-statement lookup (a bit per role group) gives exactly the user's
    role groups: two of three here, a group that is not a role ignored, nothing
    from another user's memberships."""
    from django.contrib.auth.models import Group

    from annotation.roles import user_with_roles

    user = django_user_model.objects.create_user("both", password="x" * 12)
    user.groups.add(
        Group.objects.get(name="admins"),
        Group.objects.get(name="operators"),
        Group.objects.create(name="reading club"),
    )
    ExpertFactory()  # another user, an expert
    token = Token.objects.create(user=user)
    loaded = (
        user_with_roles(token_key=token.key)
        if by == "token"
        else user_with_roles(user_id=user.pk)
    )
    assert loaded.pk == user.pk
    assert loaded._spermgrade_groups == {"admins", "operators"}
    plain = django_user_model.objects.create_user("none", password="x" * 12)
    assert user_with_roles(user_id=plain.pk)._spermgrade_groups == set()
    assert user_with_roles(token_key="no such token") is None

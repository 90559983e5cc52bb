"""A non-superuser admin cannot escalate, mint tokens or delete the record of votes
(issue "hardening", part 3). Personas: alice is a staff admin (group "admins"),
root a superuser, bob an expert."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from annotation import services
from annotation.models import RepeatVote, Vote, VoteHistory
from tests.factories import ClipFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice():
    return services.admin_create(username="alice", password="alice-pass-123")


@pytest.fixture
def root():
    return User.objects.create_superuser("root", password="root-pass-123")


@pytest.fixture
def bob():
    return services.expert_create(username="bob", password="bob-pass-123")


def _as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _change_form(client, user, **changes):
    url = reverse("admin:auth_user_change", args=[user.pk])
    data = {
        "username": user.username,
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "is_active": "on",
        "is_staff": "on" if user.is_staff else "",
        "expert_profile-TOTAL_FORMS": "0",
        "expert_profile-INITIAL_FORMS": "0",
        **changes,
    }
    return client.post(url, {k: v for k, v in data.items() if v != ""})


def test_a_staff_admin_cannot_make_itself_superuser(alice):
    client = _as(alice)
    response = _change_form(client, alice, is_superuser="on", is_staff="on")
    assert response.status_code in (200, 302)
    alice.refresh_from_db()
    assert alice.is_superuser is False


def test_a_staff_admin_cannot_grant_privileges_to_others(alice, bob):
    from django.contrib.auth.models import Group

    admins = Group.objects.get(name="admins")
    client = _as(alice)
    _change_form(client, bob, is_superuser="on", is_staff="on", groups=admins.pk)
    bob.refresh_from_db()
    assert not bob.is_superuser and not bob.is_staff
    assert not bob.groups.filter(name="admins").exists()


def test_a_superuser_grants_privileges_but_not_to_itself(root, bob):
    _change_form(_as(root), bob, is_staff="on")
    bob.refresh_from_db()
    assert bob.is_staff
    _change_form(_as(root), root, is_staff="")  # its own privileges stay
    root.refresh_from_db()
    assert root.is_staff and root.is_superuser


def test_a_staff_admin_cannot_edit_or_delete_a_superuser(alice, root):
    client = _as(alice)
    change = client.post(reverse("admin:auth_user_change", args=[root.pk]), {})
    assert (
        change.status_code == 403 or root.__class__.objects.get(pk=root.pk).is_superuser
    )
    assert (
        client.get(reverse("admin:auth_user_delete", args=[root.pk])).status_code == 403
    )


def test_only_superusers_manage_api_tokens_and_groups(alice, root, bob):
    token = Token.objects.create(user=bob)
    client = _as(alice)
    assert (
        client.get(reverse("admin:authtoken_tokenproxy_changelist")).status_code == 403
    )
    assert client.get(reverse("admin:authtoken_tokenproxy_add")).status_code == 403
    assert (
        client.post(
            reverse("admin:authtoken_tokenproxy_add"), {"user": bob.pk}
        ).status_code
        == 403
    )
    assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
    assert Token.objects.filter(user=bob).count() == 1
    superuser = _as(root)
    # the token admin addresses a token by its user
    page = reverse("admin:authtoken_tokenproxy_change", args=[token.user_id])
    assert superuser.get(page).status_code == 200


def test_votes_repeats_and_history_are_read_only_for_everyone(alice, root, bob):
    clip = ClipFactory()
    vote = services.vote_create(expert=bob, clip=clip, grade="B")
    history = VoteHistory.objects.get(vote=vote)
    for user in (alice, root):
        client = _as(user)
        for name, obj in (("vote", vote), ("votehistory", history)):
            delete = reverse(f"admin:annotation_{name}_delete", args=[obj.pk])
            assert client.get(delete).status_code == 403
            assert client.post(delete, {"post": "yes"}).status_code == 403
        add_repeat = reverse("admin:annotation_repeatvote_add")
        assert client.get(add_repeat).status_code == 403
    assert Vote.objects.filter(pk=vote.pk).exists()
    assert VoteHistory.objects.filter(pk=history.pk).exists()
    assert not RepeatVote.objects.exists()


def test_a_clip_with_votes_is_withdrawn_not_deleted(alice, bob):
    voted, fresh = ClipFactory.create_batch(2)
    services.vote_create(expert=bob, clip=voted, grade="C")
    client = _as(alice)
    assert (
        client.get(reverse("admin:annotation_clip_delete", args=[voted.pk])).status_code
        == 403
    )
    assert (
        client.get(reverse("admin:annotation_clip_delete", args=[fresh.pk])).status_code
        == 200
    )
    changelist = client.get(reverse("admin:annotation_clip_changelist"))
    assert "delete_selected" not in changelist.content.decode()
    response = client.post(
        reverse("admin:annotation_clip_changelist"),
        {"action": "deactivate", "_selected_action": [voted.pk]},
    )
    assert response.status_code == 302
    voted.refresh_from_db()
    assert voted.is_active is False and voted.votes.count() == 1

"""Sign-in through an identity provider (OpenID Connect), against a real provider
served over HTTP in the test process (tests/oidc_provider.py): the whole code
flow with PKCE, the ID token's signature, issuer and audience checked, accounts
found by issuer and subject, roles from a claim or from an admin, never admin by
default, and local accounts unchanged."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from annotation.models import ExternalIdentity
from annotation.roles import user_is_admin, user_is_expert, user_is_operator
from tests.factories import PASSWORD, AdminFactory, ExpertFactory
from tests.oidc_provider import Provider

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def provider(settings):
    p = Provider()
    for name, value in p.settings().items():
        setattr(settings, name, value)
    settings.OIDC_PROVIDER_NAME = "Hospital ID"
    yield p
    p.stop()


@pytest.fixture
def role_claim(settings):
    settings.OIDC_ROLE_CLAIM = "groups"
    settings.OIDC_EXPERT_VALUES = ["sg-experts"]
    settings.OIDC_OPERATOR_VALUES = ["sg-operators"]
    settings.OIDC_ADMIN_VALUES = ["sg-admins"]


def sign_in(provider: Provider, user: dict, client: Client | None = None, next_=""):
    """The browser's trip: SpermGrade -> provider -> SpermGrade's callback."""
    client = client or Client()
    provider.user = user
    start = client.get(reverse("oidc_authentication_init") + next_)
    assert start.status_code == 302, start.content[:300]
    authorize = urlparse(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == provider.url
    assert "code_challenge=" in authorize.query and "nonce=" in authorize.query
    conn = http.client.HTTPConnection(authorize.netloc, timeout=10)
    conn.request("GET", f"{authorize.path}?{authorize.query}")
    back = conn.getresponse()
    assert back.status == 302
    callback = urlparse(back.getheader("Location"))
    conn.close()
    done = client.get(f"{callback.path}?{callback.query}")
    return client, done


def signed_in_user(client: Client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_first_sign_in_creates_an_account_with_no_role(provider):
    client, done = sign_in(
        provider,
        {"sub": "u-1", "email": "ana@hospital.example", "preferred_username": "ana"},
    )
    assert done.status_code == 302 and done["Location"] == reverse("home")
    user = signed_in_user(client)
    assert user.username == "ana" and user.email == "ana@hospital.example"
    assert not user.has_usable_password()
    assert not (user.is_staff or user.is_superuser)
    assert not (user_is_admin(user=user) or user_is_expert(user=user))
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "u-1")
    # The home page tells them to ask an admin for a role.
    assert client.get(reverse("home")).status_code == 403
    # An admin gives the expert role: they grade from the next request on.
    from annotation.services.accounts import role_add

    role_add(user=user, role="expert")
    assert client.get(reverse("grade")).status_code == 200
    assert user.expert_profile.code == f"EXP-{user.pk:04d}"


def test_roles_from_the_claim_and_never_admin_by_default(provider, role_claim):
    _, _ = sign_in(
        provider,
        {"sub": "e-1", "preferred_username": "eva", "groups": ["sg-experts", "other"]},
    )
    eva = User.objects.get(username="eva")
    assert user_is_expert(user=eva) and not user_is_admin(user=eva) and not eva.is_staff
    sign_in(
        provider, {"sub": "o-1", "preferred_username": "otto", "groups": "sg-operators"}
    )
    assert user_is_operator(user=User.objects.get(username="otto"))
    sign_in(
        provider,
        {"sub": "n-1", "preferred_username": "nina", "groups": ["admins", "staff"]},
    )
    nina = User.objects.get(username="nina")  # no listed value: no role at all
    assert not (user_is_admin(user=nina) or user_is_expert(user=nina) or nina.is_staff)
    client, _ = sign_in(
        provider, {"sub": "a-1", "preferred_username": "adam", "groups": ["sg-admins"]}
    )
    adam = User.objects.get(username="adam")
    assert user_is_admin(user=adam) and adam.is_staff and not adam.is_superuser
    assert client.get(reverse("admin_home")).status_code == 200
    # The claim is followed at every sign-in: taken out of the group, no longer admin.
    client, _ = sign_in(
        provider, {"sub": "a-1", "preferred_username": "adam", "groups": []}
    )
    adam = User.objects.get(username="adam")
    assert not user_is_admin(user=adam) and not adam.is_staff
    assert client.get(reverse("admin_home")).status_code == 403


def test_accounts_are_found_by_subject_never_by_email(provider):
    local_admin = AdminFactory(username="boss", email="boss@hospital.example")
    client, _ = sign_in(
        provider,
        {"sub": "x-9", "email": "boss@hospital.example", "preferred_username": "boss"},
    )
    newcomer = signed_in_user(client)
    assert newcomer.pk != local_admin.pk  # same e-mail, another person
    assert newcomer.username == "boss-2" and not user_is_admin(user=newcomer)
    # The same subject again is the same account, whatever its e-mail now.
    client, _ = sign_in(provider, {"sub": "x-9", "email": "changed@hospital.example"})
    assert signed_in_user(client).pk == newcomer.pk
    assert User.objects.filter(identities__subject="x-9").count() == 1


@pytest.mark.parametrize(
    "forgery",
    [
        {"token_changes": {"iss": "https://evil.example"}},
        {"token_changes": {"aud": "another-client"}},
        {"token_changes": {"exp": 1000}},
        {"sign_with_other_key": True},
        {"token_status": 500},
    ],
    ids=["issuer", "audience", "expired", "signature", "provider-error"],
)
def test_a_bad_token_or_a_failing_provider_is_a_failed_sign_in(provider, forgery):
    for name, value in forgery.items():
        setattr(provider, name, value)
    client, done = sign_in(provider, {"sub": "m-1", "preferred_username": "mallory"})
    assert done.status_code == 302 and done["Location"] == "/login/?signin=failed"
    assert signed_in_user(client) is None
    assert not User.objects.filter(username="mallory").exists()
    page = client.get(done["Location"])
    assert page.status_code == 200 and 'id="signin-failed"' in page.content.decode()


def test_userinfo_about_another_subject_is_refused(provider):
    provider.user = {"sub": "s-1", "preferred_username": "sam"}
    real_access = provider.access

    class Swapped(dict):
        def get(self, key, default=None):
            found = real_access.get(key, default) if key in real_access else None
            return {**found, "sub": "someone-else"} if found else default

        def __setitem__(self, key, value):
            real_access[key] = value

    provider.access = Swapped()
    client, done = sign_in(provider, {"sub": "s-1", "preferred_username": "sam"})
    assert done["Location"] == "/login/?signin=failed"
    assert signed_in_user(client) is None


def test_a_replayed_or_unknown_state_is_a_clear_4xx(provider):
    client = Client()
    response = client.get(
        reverse("oidc_authentication_callback") + "?code=x&state=forged"
    )
    assert response.status_code in {302, 400}
    assert signed_in_user(client) is None


def test_local_accounts_keep_working_beside_it(provider):
    expert = ExpertFactory()
    client = Client()
    page = client.get(reverse("login"))
    html = page.content.decode()
    assert 'id="oidc-signin"' in html and "Sign in with Hospital ID" in html
    done = client.post(
        reverse("login"), {"username": expert.username, "password": PASSWORD}
    )
    assert done.status_code == 302
    assert signed_in_user(client).pk == expert.pk


def test_off_by_default(settings):
    assert settings.OIDC_ENABLED is False
    client = Client()
    assert 'id="oidc-signin"' not in client.get(reverse("login")).content.decode()
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert (
        client.get(
            reverse("oidc_authentication_callback") + "?code=a&state=b"
        ).status_code
        == 404
    )
    expert = ExpertFactory()
    assert client.login(username=expert.username, password=PASSWORD)


def test_admins_give_roles_in_the_admin_only_superusers_give_admin(provider):
    client, _ = sign_in(provider, {"sub": "r-1", "preferred_username": "rita"})
    rita = User.objects.get(username="rita")
    admin = Client()
    admin.force_login(AdminFactory())
    url = reverse("admin:auth_user_changelist")
    admin.post(url, {"action": "give_admin_role", "_selected_action": [rita.pk]})
    rita.refresh_from_db()
    assert not user_is_admin(user=rita) and not rita.is_staff
    admin.post(url, {"action": "give_expert_role", "_selected_action": [rita.pk]})
    rita = User.objects.get(pk=rita.pk)
    assert user_is_expert(user=rita) and rita.expert_profile.code.startswith("EXP-")
    assert client.get(reverse("grade")).status_code == 200
    root = Client()
    root.force_login(User.objects.create_superuser("root", "", PASSWORD))
    root.post(url, {"action": "give_admin_role", "_selected_action": [rita.pk]})
    rita = User.objects.get(pk=rita.pk)
    assert user_is_admin(user=rita) and rita.is_staff and user_is_expert(user=rita)

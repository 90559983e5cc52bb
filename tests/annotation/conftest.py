import pytest
from rest_framework.test import APIClient

from tests.factories import AdminFactory, ClipFactory, ExpertFactory

CSRF_TOKEN = "t" * 32  # Django accepts an unmasked 32-character secret


@pytest.fixture
def expert(db):
    return ExpertFactory()


@pytest.fixture
def other_expert(db):
    return ExpertFactory()


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def clips(db):
    return ClipFactory.create_batch(5)


def session_client(user=None) -> APIClient:
    """A browser-like client: CSRF enforced, cookie set, token sent as X-CSRFToken."""
    client = APIClient(enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=CSRF_TOKEN)
    client.cookies["csrftoken"] = CSRF_TOKEN
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def expert_client(expert):
    return session_client(expert)


@pytest.fixture
def admin_client_api(admin_user):
    return session_client(admin_user)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.3 s per user; tests create many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # The site settings are cached per process; each test starts from the database.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def offered_clips(expert, clips):
    """``clips``, all handed to ``expert`` (a vote through the API needs an offer)."""
    from tests.factories import offer

    offer(expert, clips)
    return clips

"""Sign-in through the hospital's identity provider (OpenID Connect).

mozilla-django-oidc runs the authorization code flow (state, nonce, PKCE) and
checks the ID token's signature against the provider's keys; this backend adds
what a lab needs on top:

- the ID token's issuer must be OIDC_ISSUER and its audience this client;
- an account is found by the provider's issuer and subject (``sub``), never by
  e-mail: an identity provider's user whose address matches a local admin's
  does not become that admin;
- a new account's role comes from OIDC_ROLE_CLAIM when one of its values is
  listed for a role (and follows the claim at every sign-in); with no claim
  configured, or no listed value, the account has no role until an admin gives
  one. Admin only through OIDC_ADMIN_VALUES, never by default;
- a provider that is down or answers nonsense is a failed sign-in (the login
  page says so), never a server error.
"""

from __future__ import annotations

import logging

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.utils import timezone
from mozilla_django_oidc import views as oidc_views
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from annotation.models import ExternalIdentity
from annotation.roles import (
    ADMINS_GROUP,
    EXPERTS_GROUP,
    OPERATORS_GROUP,
    user_with_roles,
)
from annotation.services import accounts

logger = logging.getLogger(__name__)


def roles_from_claims(claims: dict) -> set[str] | None:
    """The role groups the provider's claims give; None when roles are not
    taken from a claim (OIDC_ROLE_CLAIM=off): then admins assign them."""
    if settings.OIDC_ROLE_CLAIM == "off":
        return None
    raw = claims.get(settings.OIDC_ROLE_CLAIM)
    values = {raw} if isinstance(raw, str) else set(raw or [])
    values = {str(v) for v in values}
    groups = set()
    for group, listed in (
        (EXPERTS_GROUP, settings.OIDC_EXPERT_VALUES),
        (OPERATORS_GROUP, settings.OIDC_OPERATOR_VALUES),
        (ADMINS_GROUP, settings.OIDC_ADMIN_VALUES),
    ):
        if values & set(listed):
            groups.add(group)
    return groups


class RoleOIDCBackend(OIDCAuthenticationBackend):
    """Named in AUTHENTICATION_BACKENDS always; does nothing while OIDC is off
    (so its settings need not exist)."""

    def __init__(self, *args, **kwargs):
        self.enabled = settings.OIDC_ENABLED
        if self.enabled:
            super().__init__(*args, **kwargs)

    def authenticate(self, request, **kwargs):
        if not self.enabled or request is None or "code" not in request.GET:
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (
            requests.RequestException,
            ValueError,
            KeyError,
            jwt.PyJWTError,
            SuspiciousOperation,
        ) as exc:
            # Provider unreachable, an error answer, a token that fails a check.
            logger.warning("OIDC sign-in failed: %s", exc)
            return None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        if payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation("ID token from another issuer")
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token for another client")
        if "sub" not in payload:
            raise SuspiciousOperation("ID token without a subject")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        # The userinfo answer must be about the ID token's subject (OIDC Core
        # 5.3.2): both are at hand here, so nothing is kept on the backend.
        if not claims.get("sub") or claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo about another subject")
        return claims

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))  # get_userinfo matched it to the ID token

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(
            identities__issuer=settings.OIDC_OP_ISSUER,
            identities__subject=claims["sub"],
        )

    def create_user(self, claims):
        user = accounts.identity_user_create(
            issuer=settings.OIDC_OP_ISSUER,
            subject=claims["sub"],
            username_hint=claims.get("preferred_username")
            or (claims.get("email") or "").split("@")[0]
            or "user",
            email=claims.get("email") or "",
        )
        groups = roles_from_claims(claims)
        if groups:
            accounts.roles_set(user=user, groups=groups)
        return user

    def update_user(self, user, claims):
        ExternalIdentity.objects.filter(
            issuer=settings.OIDC_OP_ISSUER, subject=claims["sub"]
        ).update(last_login_at=timezone.now())
        groups = roles_from_claims(claims)
        if groups is not None:
            accounts.roles_set(user=user, groups=groups)
        return user

    def get_user(self, user_id):
        user = user_with_roles(user_id=user_id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user


class SignInStart(oidc_views.OIDCAuthenticationRequestView):
    """/oidc/authenticate/: off (404) unless OIDC is configured."""

    def __init__(self, *args, **kwargs):
        if settings.OIDC_ENABLED:
            super().__init__(*args, **kwargs)

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Sign-in through an identity provider is not set up.")
        return super().get(request)


class SignInCallback(oidc_views.OIDCAuthenticationCallbackView):
    """/oidc/callback/: off (404) unless OIDC is configured."""

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Sign-in through an identity provider is not set up.")
        return super().get(request)

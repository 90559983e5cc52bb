"""API permissions and authentication.

Experts grade and read their own votes; admins read everything. Anonymous requests
fail every permission here (DRF answers 403, or 401 for a bad token). Roles are
group memberships: "experts", "admins" (or a superuser).

The authentication classes load the user's role groups in the same query as the
user, so a permission check costs no extra round trip.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from drf_spectacular.authentication import TokenScheme
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import BasePermission

from annotation.roles import (
    user_is_admin,
    user_is_expert,
    user_is_operator,
    user_with_roles,
)


class IsExpert(BasePermission):
    message = "Only members of the experts group may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(user=request.user)


class IsAdmin(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_admin(user=request.user)


class IsOperator(BasePermission):
    message = "Only administrators and operators may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_admin(user=request.user) or user_is_operator(user=request.user)


class IsExpertOrAdmin(BasePermission):
    message = "Only experts and administrators may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(user=request.user) or user_is_admin(user=request.user)


class RoleTokenAuthentication(TokenAuthentication):
    """DRF token authentication that reads the user's role groups in the same query."""

    def authenticate_credentials(self, key):
        user = user_with_roles(token_key=key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        # The token row itself holds nothing more the views use.
        return (user, self.get_model()(key=key, user=user))


class RoleTokenScheme(TokenScheme):
    # Same "Authorization: Token <key>" scheme; its own component name because the
    # token endpoint (rest_framework.authtoken) documents DRF's class as "tokenAuth".
    target_class = "annotation.permissions.RoleTokenAuthentication"
    name = "expertTokenAuth"
    match_subclasses = False
    priority = 0


class RoleModelBackend(ModelBackend):
    """Django's ModelBackend; the session's user comes with their role groups
    (one query for both). Named in AUTHENTICATION_BACKENDS."""

    def get_user(self, user_id):
        user = user_with_roles(user_id=user_id)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user

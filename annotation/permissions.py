"""API permissions: experts grade and read their own votes; admins read everything.

Anonymous requests fail every one of these (DRF answers 403, or 401 for a bad
token). Roles are group memberships: "experts", "admins" (or a superuser).
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from annotation.selectors import user_is_admin, user_is_expert


class IsExpert(BasePermission):
    message = "Only members of the experts group may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(user=request.user)


class IsAdmin(BasePermission):
    message = "Only administrators may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_admin(user=request.user)


class IsExpertOrAdmin(BasePermission):
    message = "Only experts and administrators may do this."

    def has_permission(self, request, view) -> bool:
        return user_is_expert(user=request.user) or user_is_admin(user=request.user)

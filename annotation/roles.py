"""Roles: the one definition of the role groups and of the checks on them.

A role is a group membership: "experts" grade, "admins" (or a superuser) read
everything and run the site, "operators" upload and process recordings. The groups
are created by migrations and ensured after every ``migrate`` (``apps.py``).

A check reads the user's role groups once per user object, so once per request;
the authentication classes (``permissions.py``) and the session backend load them
in the same statement as the user (``user_with_roles``).
"""

from __future__ import annotations

EXPERTS_GROUP = "experts"
ADMINS_GROUP = "admins"
OPERATORS_GROUP = "operators"
ROLE_GROUPS = (EXPERTS_GROUP, ADMINS_GROUP, OPERATORS_GROUP)

_CACHE_ATTR = "_spermgrade_groups"
# The attribute (and SQL alias) of a loaded user's role groups as a bit mask:
# bit i set for membership of ROLE_GROUPS[i].
ROLE_MASK_ATTR = "_role_mask"


def user_with_roles(*, token_key: str | None = None, user_id=None):
    """The user with ``token_key`` (an API token) or ``user_id``, with their role
    groups memoised, in one statement (``sql.user_with_roles``); None if none."""
    from annotation import sql

    user = sql.user_with_roles(token_key=token_key, user_id=user_id)
    if user is not None:
        setattr(
            user,
            _CACHE_ATTR,
            {
                name
                for index, name in enumerate(ROLE_GROUPS)
                if int(getattr(user, ROLE_MASK_ATTR) or 0) >> index & 1
            },
        )
    return user


def _group_names(user) -> set[str]:
    """The user's role groups, fetched once per user object (so once per request)."""
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        cached = set(
            user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)
        )
        setattr(user, _CACHE_ATTR, cached)
    return cached


def _active(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def user_is_admin(*, user) -> bool:
    if not _active(user):
        return False
    return bool(user.is_superuser) or ADMINS_GROUP in _group_names(user)


def user_is_expert(*, user) -> bool:
    return _active(user) and EXPERTS_GROUP in _group_names(user)


def user_is_operator(*, user) -> bool:
    """Administrators, and members of the "operators" group, handle recordings."""
    if user_is_admin(user=user):
        return True
    return _active(user) and OPERATORS_GROUP in _group_names(user)


def admin_page_required(message: str):
    """Decorator for administrators' pages: anonymous visitors go to the login
    page, everyone else who is not an admin gets 403 with ``message``."""
    from functools import wraps

    from django.contrib.auth.decorators import login_required
    from django.core.exceptions import PermissionDenied

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not user_is_admin(user=request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate

"""Roles: the one definition of the role groups and of the checks on them.

A role is a group membership: "experts" grade, "admins" (or a superuser) read
everything and run the site, "operators" upload and process recordings. The groups
are created by migrations and ensured after every ``migrate`` (``apps.py``).

A check reads the user's role groups once per user object, so once per request;
the authentication classes (``permissions.py``) and the session backend load them
in the same query as the user (``users_with_roles``), with the public ORM.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, QuerySet

EXPERTS_GROUP = "experts"
ADMINS_GROUP = "admins"
OPERATORS_GROUP = "operators"
ROLE_GROUPS = (EXPERTS_GROUP, ADMINS_GROUP, OPERATORS_GROUP)

_CACHE_ATTR = "_spermgrade_groups"


def _flag(group: str) -> str:
    return f"_role_{group}"


def users_with_roles(
    users: QuerySet | None = None, *, user_field: str = ""
) -> QuerySet:
    """``users`` (default: all users) annotated with one boolean per role group.

    With ``user_field`` (e.g. ``"user"`` for API tokens) the rows are of another
    model and the flags describe the user that field points to.
    """
    if users is None:
        users = get_user_model().objects.all()
    user_ref = f"{user_field}_id" if user_field else "pk"
    return users.annotate(
        **{
            _flag(name): Exists(
                Group.objects.filter(name=name, user=OuterRef(user_ref))
            )
            for name in ROLE_GROUPS
        }
    )


def roles_remember(*, user, row=None) -> None:
    """Keep the role flags annotated on ``row`` (default: the user) on the user."""
    row = user if row is None else row
    setattr(
        user,
        _CACHE_ATTR,
        {name for name in ROLE_GROUPS if getattr(row, _flag(name), False)},
    )


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

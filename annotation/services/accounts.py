"""Writes: accounts that sign in through an identity provider, and their roles.

A role is a group membership (``annotation.roles``); these functions keep what
goes with each: an expert has a profile (its pseudonymous code), an admin is
staff (the Django admin). Nobody becomes a superuser here.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from annotation.models import ExpertProfile, ExternalIdentity
from annotation.roles import ADMINS_GROUP, EXPERTS_GROUP, OPERATORS_GROUP, ROLE_GROUPS

User = get_user_model()

ROLES = {"expert": EXPERTS_GROUP, "operator": OPERATORS_GROUP, "admin": ADMINS_GROUP}


@transaction.atomic
def roles_set(*, user, groups: set[str]) -> None:
    """Make the user's role groups exactly ``groups`` (a subset of ROLE_GROUPS)."""
    unknown = set(groups) - set(ROLE_GROUPS)
    if unknown:
        raise ValueError(f"not role groups: {sorted(unknown)}")
    current = set(
        user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)
    )
    for name in current - groups:
        user.groups.remove(Group.objects.get(name=name))
    for name in groups - current:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    if EXPERTS_GROUP in groups and not ExpertProfile.objects.filter(user=user).exists():
        ExpertProfile.objects.create(user=user, code=f"EXP-{user.pk:04d}")
    staff = ADMINS_GROUP in groups or user.is_superuser
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
    # The memoised groups (annotation.roles) of this object are stale now.
    user.__dict__.pop("_spermgrade_groups", None)


def role_add(*, user, role: str) -> None:
    """Give the user one more role ("expert", "operator" or "admin")."""
    current = set(
        user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True)
    )
    roles_set(user=user, groups=current | {ROLES[role]})


def _free_username(hint: str) -> str:
    base = re.sub(r"[^\w.@+-]", "", hint)[:140] or "user"
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@transaction.atomic
def identity_user_create(
    *, issuer: str, subject: str, username_hint: str, email: str
) -> User:
    """A new account for a provider's identity: no password here (it signs in
    through the provider only), no role, not staff."""
    user = User(username=_free_username(username_hint), email=email)
    user.set_unusable_password()
    user.save()
    ExternalIdentity.objects.create(
        user=user, issuer=issuer, subject=subject, last_login_at=timezone.now()
    )
    return user

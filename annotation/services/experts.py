"""Writes: expert and admin accounts, one by one or from a CSV (every row is
checked before any account is created)."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from annotation import errors
from annotation.models import (
    ExpertProfile,
)
from annotation.roles import ADMINS_GROUP, EXPERTS_GROUP

User = get_user_model()


def _group(name: str) -> Group:
    group, _ = Group.objects.get_or_create(name=name)
    return group


@transaction.atomic
def expert_create(
    *,
    username: str,
    password: str,
    code: str | None = None,
    years_experience: int = 0,
    is_simulated: bool = False,
    email: str = "",
) -> User:
    """A user in group "experts" with a profile (code defaults to EXP-<id>)."""
    if years_experience < 0:
        raise errors.InvalidInput("years_experience cannot be negative.")
    if User.objects.filter(username=username).exists():
        raise errors.InvalidInput(f"The username {username!r} is taken.")
    if code and ExpertProfile.objects.filter(code=code).exists():
        raise errors.InvalidInput(f"The expert code {code!r} is taken.")
    user = User.objects.create_user(username=username, password=password, email=email)
    user.groups.add(_group(EXPERTS_GROUP))
    ExpertProfile.objects.create(
        user=user,
        code=code or f"EXP-{user.pk:04d}",
        years_experience=years_experience,
        is_simulated=is_simulated,
    )
    return user


@transaction.atomic
def admin_create(*, username: str, password: str, email: str = "") -> User:
    """A staff user in group "admins" (which holds the app's admin permissions)."""
    if User.objects.filter(username=username).exists():
        raise errors.InvalidInput(f"The username {username!r} is taken.")
    user = User.objects.create_user(
        username=username, password=password, email=email, is_staff=True
    )
    user.groups.add(_group(ADMINS_GROUP))
    return user


@dataclass(frozen=True)
class ExpertRow:
    line: int
    username: str
    email: str
    code: str
    years_experience: int
    password: str


EXPERT_CSV_COLUMNS = ("username", "email", "code", "years_experience")


def experts_parse_csv(*, text: str) -> list[ExpertRow]:
    """Validate every row first; errors name the line (header is line 1)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [name for name in EXPERT_CSV_COLUMNS if name not in header]
    if missing:
        raise errors.InvalidInput(
            "The CSV header must be username,email,code,years_experience[,password]; "
            f"missing: {', '.join(missing)}."
        )
    rows: list[ExpertRow] = []
    problems: list[str] = []
    seen_users: set[str] = set()
    seen_codes: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        if raw.get(None):  # csv puts cells beyond the header under None
            problems.append(
                f"line {line}: has {len(header) + len(raw[None])} columns, the "
                f"header {len(header)}; remove the extra cells."
            )
            continue
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        username, email, code = row["username"], row["email"], row["code"]
        if not any(row.values()):
            continue
        if not username:
            problems.append(f"line {line}: username is empty.")
        elif username in seen_users or User.objects.filter(username=username).exists():
            problems.append(f"line {line}: username {username!r} already exists.")
        if email:
            try:
                validate_email(email)
            except ValidationError:
                problems.append(f"line {line}: {email!r} is not an e-mail address.")
        if not code:
            problems.append(f"line {line}: code is empty (e.g. EXP-0007).")
        elif code in seen_codes or ExpertProfile.objects.filter(code=code).exists():
            problems.append(f"line {line}: expert code {code!r} already exists.")
        try:
            years = int(row["years_experience"] or 0)
            if years < 0:
                raise ValueError
        except ValueError:
            problems.append(
                f"line {line}: years_experience {row['years_experience']!r} "
                "must be a whole number ≥ 0."
            )
            years = 0
        seen_users.add(username)
        seen_codes.add(code)
        rows.append(
            ExpertRow(line, username, email, code, years, row.get("password", ""))
        )
    if problems:
        raise errors.InvalidInput("\n".join(problems))
    return rows


@transaction.atomic
def experts_import_csv(*, text: str) -> list[tuple[User, str]]:
    """Create every expert of the CSV or none. Returns (user, password) pairs; a
    password is generated where the row has none."""
    created = []
    for row in experts_parse_csv(text=text):
        password = row.password or secrets.token_urlsafe(12)
        user = expert_create(
            username=row.username,
            password=password,
            code=row.code,
            years_experience=row.years_experience,
            email=row.email,
        )
        created.append((user, "" if row.password else password))
    return created

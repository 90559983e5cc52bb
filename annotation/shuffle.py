"""Each expert's own random order of the clips, computed by the database.

The queue ranks clips by need first; ties (most clips, most of the time) fall in
this per-expert order, so two experts do not walk the pool in the same sequence
and one expert's order shows no pattern a grader could learn.
"""

from __future__ import annotations

import hashlib

SHUFFLE_PRIME = 2_147_483_647  # 2**31 - 1


def _shuffle_sql(column: str, a: str, b: str, c: str) -> str:
    p = SHUFFLE_PRIME
    first = f"(({column} * {a} + {b}) %% {p})"
    second = f"(({first} * {first} + {c}) %% {p})"
    return f"(({second} * {second}) %% {p})"


def shuffle_key_sql(column: str, key: tuple[int, int, int]) -> str:
    """A per-expert pseudo-random sort key of an integer id column, in SQL that
    PostgreSQL and SQLite evaluate alike (64-bit integers; ``%%`` because every
    statement using it carries parameters).

    ``((((id * a + b) mod p)² + c) mod p)² mod p`` with ``key = (a, b, c)``: the
    affine step alone orders ids in arithmetic runs (69, 67, 65 …, only three
    distinct gaps between neighbours); the two squarings break them. Squares of
    numbers below p = 2³¹ − 1 stay below 2⁶², inside a signed 64-bit integer.
    ``shuffle_rank`` is the same function in Python."""
    a, b, c = (str(int(v)) for v in key)
    return _shuffle_sql(column, a, b, c)


SHUFFLE_PARAMS = ("shuffle_a", "shuffle_b", "shuffle_c")


def shuffle_key_sql_params(column: str) -> str:
    """``shuffle_key_sql`` with the key as the named parameters of
    ``shuffle_params``: one statement text for every expert, so PostgreSQL can
    keep it prepared (the key inlined made each expert's text a new one)."""
    a, b, c = (f"CAST(%({name})s AS BIGINT)" for name in SHUFFLE_PARAMS)
    return _shuffle_sql(column, a, b, c)


def shuffle_params(key: tuple[int, int, int]) -> dict[str, int]:
    """The parameters of ``shuffle_key_sql_params`` for ``key``."""
    return {name: int(value) for name, value in zip(SHUFFLE_PARAMS, key, strict=True)}


def shuffle_rank(clip_id: int, key: tuple[int, int, int]) -> int:
    """``shuffle_key_sql`` evaluated in Python (for tests and checks)."""
    a, b, c = key
    p = SHUFFLE_PRIME
    first = (clip_id * a + b) % p
    second = (first * first + c) % p
    return second * second % p


def shuffle_key(expert_id: int) -> tuple[int, int, int]:
    """The expert's key of ``shuffle_key_sql``: a stable per-expert random
    order of the clips (ties of the queue's ranking fall in it)."""
    digest = hashlib.sha256(f"spermgrade-order-{expert_id}".encode()).digest()
    prime = SHUFFLE_PRIME
    a = int.from_bytes(digest[:4], "big") % (prime - 1) + 1
    b = int.from_bytes(digest[4:8], "big") % prime
    c = int.from_bytes(digest[8:12], "big") % prime
    return a, b, c

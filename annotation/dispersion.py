"""Each clip's spread of votes and the vote budget's "settled" rule, pure (numpy
and scipy only; no Django, no app code), beside the panel statistics of
``annotation.agreement``; the tests are in tests/annotation/test_agreement.py and
test_vote_budget.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

N_GRADES = 5


# --- per clip -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipDispersion:
    """Per-clip spread of the panel's votes (one entry per row of counts)."""

    n_votes: np.ndarray
    entropy_bits: np.ndarray
    std: np.ndarray
    ordinal_dispersion: np.ndarray  # Leik's D in [0, 1]: 0 unanimous, 1 split in two
    ci_low: np.ndarray  # (N, 5) credible interval of each grade's share
    ci_high: np.ndarray

    @property
    def ci_width_max(self) -> np.ndarray:
        return (self.ci_high - self.ci_low).max(axis=1)


def clip_dispersion(counts, *, credibility: float = 0.95, prior: float = 1.0):
    """Dispersion of each clip's votes from its (N, 5) grade counts.

    Entropy in bits, the standard deviation of the scores (A = 1 … E = 5), Leik's
    ordinal dispersion D = Σ_c 2·min(F_c, 1 - F_c) / (K - 1) over the cumulative
    shares F_c, and the equal-tailed credible interval of each grade's share under a
    Dirichlet(``prior``, …) prior: its marginal is Beta(prior + n_c, (K - 1)·prior +
    n - n_c). Statistics of a clip without votes are NaN (the interval is the
    prior's).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be clips × grades, got shape {counts.shape}")
    k = counts.shape[1]
    n = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / n[:, None]
        logs = np.where(p > 0, np.log2(np.where(p > 0, p, 1.0)), 0.0)
        entropy = -(p * logs).sum(axis=1) + 0.0
        scores = np.arange(1, k + 1)
        mean = p @ scores
        std = np.sqrt(np.clip(p @ scores**2 - mean**2, 0.0, None))
        cum = np.cumsum(p, axis=1)[:, :-1]
        leik = (2.0 * np.minimum(cum, 1.0 - cum)).sum(axis=1) / (k - 1)
    tail = (1.0 - credibility) / 2.0
    # The interval depends only on (n_c, n): Beta quantiles once per distinct pair.
    count_int = np.rint(counts).astype(np.int64)
    n_int = np.broadcast_to(count_int.sum(axis=1, keepdims=True), count_int.shape)
    base = int(n_int.max(initial=0)) + 1
    distinct, inverse = np.unique(
        (count_int * base + n_int).ravel(), return_inverse=True
    )
    c_distinct, n_distinct = distinct // base, distinct % base
    a = prior + c_distinct
    b = (k - 1) * prior + n_distinct - c_distinct
    low = stats.beta.ppf(tail, a, b)[inverse].reshape(counts.shape)
    high = stats.beta.ppf(1.0 - tail, a, b)[inverse].reshape(counts.shape)
    return ClipDispersion(
        n_votes=n.astype(np.int64),
        entropy_bits=np.where(n > 0, entropy, np.nan),
        std=np.where(n > 0, std, np.nan),
        ordinal_dispersion=np.where(n > 0, leik, np.nan),
        ci_low=low,
        ci_high=high,
    )


# --- the vote budget ------------------------------------------------------------------


def clip_settled(counts, *, ci_width: float, min_votes: int, prior: float = 1.0):
    """True for each clip (row of counts) whose distribution is precise enough: at
    least ``min_votes`` votes and every grade share's 95 % credible interval at
    most ``ci_width`` wide."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, N_GRADES)
    width = clip_dispersion(counts, prior=prior).ci_width_max
    return (counts.sum(axis=1) >= min_votes) & (width <= ci_width)


def settled_ranges(
    *, ci_width: float, min_votes: int, max_votes: int, prior: float = 1.0
) -> list[tuple[int, int, int]]:
    """(n, low, high) for n = min_votes … max_votes: a clip with n votes is settled
    unless some grade's count lies in low … high (its share's interval is then
    wider than ``ci_width``; the interval's width is unimodal in the count, so the
    too-wide counts form one range). An empty range is (n, 1, 0).

    This is how the queue's SQL decides "settled" exactly, without Beta quantiles.
    """
    rows = []
    k = N_GRADES
    for n in range(max(min_votes, 0), max_votes + 1):
        c = np.arange(n + 1, dtype=np.float64)
        a, b = prior + c, (k - 1) * prior + n - c
        width = stats.beta.ppf(0.975, a, b) - stats.beta.ppf(0.025, a, b)
        wide = np.flatnonzero(width > ci_width)
        if not len(wide):
            rows.append((n, 1, 0))
            continue
        if np.any(np.diff(wide) != 1):  # pragma: no cover - guarded by a test
            raise ArithmeticError(f"interval widths not unimodal at n={n}")
        rows.append((n, int(wide[0]), int(wide[-1])))
    return rows

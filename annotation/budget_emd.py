"""The expected-EMD vote budget (pure: numpy and scipy, no Django).

A clip with vote counts ``c`` (n votes) will end with ``N`` votes. Its remaining
``m = N - n`` votes are, under a Dirichlet prior ``alpha`` on a clip's grade
shares, Dirichlet-multinomial(m, alpha + c). The rule stops the clip once the
expected EMD (modeling's definition: the mean over the K ordered grades of the
squared difference of the cumulative shares) between ``c / n`` and the
distribution it would have with all N votes is below a threshold.

The expectation is exact and closed form, O(K) per clip. With ``C_j`` the
cumulative count up to grade j, ``b_j`` the cumulative posterior parameter
``sum_{i<=j} (alpha_i + c_i)``, ``B = b_K`` and ``R_j`` the cumulative count of
the remaining votes, merging grades keeps the Dirichlet-multinomial, so ``R_j`` is
beta-binomial(m, b_j, B - b_j), with mean ``m q_j`` (``q_j = b_j / B``) and
variance ``m q_j (1 - q_j) (B + m) / (B + 1)``. The difference of cumulative
shares is ``C_j / n - (C_j + R_j) / N = (m C_j / n - R_j) / N``, so

    E[EMD] = 1 / (K N^2) * sum_{j<K} [ Var R_j + m^2 (C_j / n - q_j)^2 ].

Nothing here changes a distribution: the prior decides when to stop, the target
stays ``c / n`` (the experts' votes).

The prior comes from the panel's population of clips (empirical Bayes): the
maximum-likelihood Dirichlet-multinomial fit of the clips' counts (Minka's fixed
point). Clips stopped early by this very rule still give a valid likelihood, the
stopping decision depending only on votes already seen.
"""

from __future__ import annotations

import numpy as np
from scipy import special

# A prior fitted on fewer informative clips (two votes or more) is not trusted.
MIN_CLIPS_FOR_PRIOR = 30


def expected_emd(counts, *, alpha, total) -> np.ndarray:
    """Expected EMD between each row of ``counts`` (clips x K, or one row) as a
    distribution and the same clip with ``total`` votes (a number or one per
    clip), the remaining votes Dirichlet-multinomial(alpha + counts). Rows with
    no votes get inf; rows at or above ``total`` get 0."""
    c = np.asarray(counts, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if c.shape[-1] != alpha.shape[-1]:
        raise ValueError(
            f"counts have {c.shape[-1]} grades but alpha has {alpha.shape[-1]}"
        )
    k = c.shape[-1]
    n = c.sum(-1)
    total = np.asarray(total, dtype=np.float64)
    m = np.maximum(total - n, 0.0)
    cum = np.cumsum(c, -1)[..., :-1]
    b = np.cumsum(alpha + c, -1)
    big_b = b[..., -1:]
    q = b[..., :-1] / big_b
    m_ = m[..., None]
    var = m_ * q * (1.0 - q) * (big_b + m_) / (big_b + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bias = m_ * (cum / n[..., None] - q)
        out = (var + bias**2).sum(-1) / (k * total**2)
    return np.where(n > 0, np.where(m > 0, out, 0.0), np.inf)


def stops(counts, *, alpha, total, threshold: float, min_votes: int) -> np.ndarray:
    """True for each clip that stops collecting votes: at least ``min_votes``
    votes, and either ``total`` reached or the expected EMD below
    ``threshold``."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(-1)
    emd = expected_emd(c, alpha=alpha, total=total)
    return (n >= min_votes) & ((n >= total) | (emd < threshold))


def dirichlet_prior_fit(
    counts, *, iterations: int = 1000, tolerance: float = 1e-9
) -> np.ndarray | None:
    """The Dirichlet ``alpha`` maximising the Dirichlet-multinomial likelihood of
    the clips' counts (clips x K), by Minka's fixed point started from the
    moments. Clips with fewer than two votes say nothing about the spread and are
    left out; None when fewer than MIN_CLIPS_FOR_PRIOR clips remain or the
    clips never disagree (no finite maximum)."""
    c = np.asarray(counts, dtype=np.float64).reshape(-1, np.shape(counts)[-1])
    c = c[c.sum(1) >= 2]
    if len(c) < MIN_CLIPS_FOR_PRIOR:
        return None
    n = c.sum(1)
    shares = c / n[:, None]
    mean = shares.mean(0)
    if np.count_nonzero(mean) < 2:
        return None
    # moments: Var(p_k) = mean_k (1 - mean_k) / (s + 1), share noise removed
    between = shares.var(0) - (mean * (1 - mean) * (1 / n).mean())
    ratio = mean * (1 - mean) / np.maximum(between, 1e-12)
    s = float(np.clip(np.median(ratio[mean > 0]) - 1.0, 0.1, 1e4))
    alpha = np.maximum(mean * s, 1e-3)
    # Sums over clips become sums over vote counts (how many clips have v votes
    # in grade k; how many have n votes): each step costs O(K x most votes),
    # whatever the number of clips.
    values = np.arange(int(n.max()) + 1, dtype=np.float64)
    per_grade = np.stack(
        [np.bincount(col.astype(np.int64), minlength=len(values)) for col in c.T]
    )
    per_total = np.bincount(n.astype(np.int64), minlength=len(values))
    for _ in range(iterations):
        numerator = (
            per_grade * (special.digamma(values[None, :] + alpha[:, None]))
            - per_grade * special.digamma(alpha)[:, None]
        ).sum(1)
        a0 = alpha.sum()
        denominator = (
            per_total * (special.digamma(values + a0) - special.digamma(a0))
        ).sum()
        new = np.maximum(alpha * numerator / denominator, 1e-6)
        if np.max(np.abs(new - alpha) / alpha) < tolerance:
            alpha = new
            break
        alpha = new
    if not np.all(np.isfinite(alpha)) or alpha.sum() > 1e6:
        return None
    return alpha


def dirichlet_multinomial_loglik(counts, alpha) -> float:
    """Log-likelihood of the counts (clips x K) under Dirichlet-multinomial(alpha),
    without the multinomial coefficients (constant in alpha)."""
    c = np.asarray(counts, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    a0 = alpha.sum(-1)
    n = c.sum(-1)
    return float(
        (
            special.gammaln(a0)
            - special.gammaln(n + a0)
            + (special.gammaln(c + alpha) - special.gammaln(alpha)).sum(-1)
        ).sum()
    )

"""The expected-EMD vote budget: a clip stops once the expected EMD between its
votes and its distribution with VOTES_PER_CLIP votes (the remaining votes
Dirichlet-multinomial under an empirical-Bayes prior) is below VOTE_BUDGET_EMD,
never before VOTE_BUDGET_MIN_VOTES, and the prior never becomes a target."""

import itertools

import numpy as np
import pytest
from scipy import special, stats

from annotation import budget_emd

GRADES = "ABCDE"


def _compositions(m: int, k: int = 5) -> np.ndarray:
    rows = []
    for cuts in itertools.combinations(range(m + k - 1), k - 1):
        bounds = (-1, *cuts, m + k - 1)
        rows.append([bounds[i + 1] - bounds[i] - 1 for i in range(k)])
    return np.array(rows, dtype=np.float64)


def _enumerated_expected_emd(counts, alpha, total) -> float:
    """Sum over every way the remaining votes can fall, each weighted by its
    Dirichlet-multinomial probability, of the EMD from the votes now to the
    votes then."""
    c = np.asarray(counts, dtype=np.float64)
    beta = np.asarray(alpha, dtype=np.float64) + c
    m = int(total - c.sum())
    rest = _compositions(m)
    log_p = (
        special.gammaln(m + 1)
        - special.gammaln(rest + 1).sum(1)
        + special.gammaln(beta.sum())
        - special.gammaln(m + beta.sum())
        + (special.gammaln(rest + beta) - special.gammaln(beta)).sum(1)
    )
    p = np.exp(log_p)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    now = np.cumsum(c / c.sum())
    then = np.cumsum((c + rest) / total, axis=1)
    return float((p * ((then - now) ** 2).mean(1)).sum())


def test_one_vote_left_by_hand():
    # Votes A, B; one more of three; prior 1 per grade: the last vote is A or B
    # with 2/7 each, C, D or E with 1/7 each. From shares (1/2, 1/2, 0, 0, 0) the
    # cumulative shares move by (1/6), (1/6), (1/6, 1/3), (1/6, 1/3, 1/3) and
    # (1/6, 1/3, 1/3, 1/3): EMDs 1/180, 1/180, 5/180, 9/180 and 13/180.
    got = budget_emd.expected_emd([1, 1, 0, 0, 0], alpha=[1] * 5, total=3)
    assert got == pytest.approx((2 + 2 + 5 + 9 + 13) / (180 * 7), rel=1e-12)


@pytest.mark.parametrize(
    ("counts", "alpha", "total"),
    [
        ([3, 5, 2, 0, 1], [0.7, 1.5, 2.0, 1.0, 0.3], 15),
        ([10, 0, 0, 0, 0], [0.3, 0.5, 0.6, 0.4, 0.2], 22),
        ([0, 0, 4, 4, 0], [2.0, 2.0, 2.0, 2.0, 2.0], 20),
        ([1, 0, 0, 0, 1], [0.1, 0.5, 1.6, 1.0, 0.2], 14),
    ],
)
def test_the_closed_form_equals_every_way_the_remaining_votes_can_fall(
    counts, alpha, total
):
    exact = _enumerated_expected_emd(counts, alpha, total)
    got = budget_emd.expected_emd(counts, alpha=alpha, total=total)
    assert got == pytest.approx(exact, rel=1e-10)


def test_the_closed_form_agrees_with_monte_carlo_of_a_forty_vote_panel():
    rng = np.random.default_rng(3)
    counts = np.array([1, 4, 3, 2, 0])
    alpha = np.array([0.28, 0.49, 0.58, 0.4, 0.19])
    shares = rng.dirichlet(alpha + counts, size=200_000)
    rest = rng.multinomial(40 - counts.sum(), shares)
    emds = ((np.cumsum(counts / 10) - np.cumsum((counts + rest) / 40, 1)) ** 2).mean(1)
    got = budget_emd.expected_emd(counts, alpha=alpha, total=40)
    assert abs(got - emds.mean()) < 4 * emds.std() / np.sqrt(len(emds))


def test_a_full_clip_expects_nothing_and_an_empty_one_never_stops():
    got = budget_emd.expected_emd(
        [[40, 0, 0, 0, 0], [0, 0, 0, 0, 0]], alpha=[1] * 5, total=40
    )
    assert got[0] == 0.0 and got[1] == np.inf


def test_a_clip_stops_exactly_below_the_threshold_and_never_before_the_minimum():
    alpha = [0.3, 0.5, 0.6, 0.4, 0.2]
    sure = [10, 0, 0, 0, 0]
    expected = _enumerated_expected_emd(sure, alpha, 20)

    def stops(counts, threshold, min_votes=10):
        return bool(
            budget_emd.stops(
                counts,
                alpha=alpha,
                total=20,
                threshold=threshold,
                min_votes=min_votes,
            )
        )

    assert stops(sure, expected * (1 + 1e-9))
    assert not stops(sure, expected * (1 - 1e-9))
    assert not stops(sure, expected * (1 + 1e-9), min_votes=11)
    # nine unanimous votes expect less change than ten split ones, yet wait
    assert not stops([9, 0, 0, 0, 0], 1.0)


def test_the_prior_is_the_dirichlet_multinomial_maximum_likelihood():
    rng = np.random.default_rng(5)
    truth = np.array([0.5, 2.0, 3.0, 1.0, 0.4])
    n = rng.integers(2, 41, size=4000)
    counts = rng.multinomial(n, rng.dirichlet(truth, size=len(n)))
    alpha = budget_emd.dirichlet_prior_fit(counts)
    np.testing.assert_allclose(alpha, truth, rtol=0.12)

    def loglik(a):
        return stats.dirichlet_multinomial.logpmf(counts, a, n).sum()

    best = loglik(alpha)
    for grade in range(5):
        for factor in (0.97, 1.03):
            nudged = alpha.copy()
            nudged[grade] *= factor
            assert loglik(nudged) < best
    assert loglik(alpha * 1.05) < best and loglik(alpha * 0.95) < best


def test_no_prior_from_too_few_clips_or_a_panel_that_never_disagrees():
    few = np.tile([3, 1, 0, 0, 0], (budget_emd.MIN_CLIPS_FOR_PRIOR - 1, 1))
    assert budget_emd.dirichlet_prior_fit(few) is None
    unanimous = np.tile([0, 0, 5, 0, 0], (100, 1))
    assert budget_emd.dirichlet_prior_fit(unanimous) is None

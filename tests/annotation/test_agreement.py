"""Panel statistics equal the reference implementations and the published examples.

References (test dependencies only): krippendorff, scikit-learn, statsmodels,
pingouin and crowd-kit, on the real per-worker votes in
../shared/data/real/web_relevance_votes (1,332 items, 5 ordered levels, sparse).
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from annotation import agreement as ag
from annotation import dispersion
from tests.conftest import REPO_ROOT, SHARED_DATA

WEB_VOTES = SHARED_DATA / "web_relevance_votes" / "web_relevance_votes.csv"

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the example
# with four observers, twelve units and missing values (None).
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
# The values published there, to three decimals.
KRIPPENDORFF_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849}


def _long(matrix):
    """Observers × units with None for missing → (items, raters, values)."""
    rows = [
        (unit, rater, value)
        for rater, row in enumerate(matrix)
        for unit, value in enumerate(row)
        if value is not None
    ]
    items, raters, values = (np.array(column) for column in zip(*rows))
    return items, raters, values


def _reliability(items, raters, values):
    units, rater_ids = np.unique(items), np.unique(raters)
    table = np.full((len(rater_ids), len(units)), np.nan)
    table[np.searchsorted(rater_ids, raters), np.searchsorted(units, items)] = values
    return table


@pytest.fixture(scope="module")
def web_votes():
    if not WEB_VOTES.is_file():
        pytest.skip(f"{WEB_VOTES} is absent (no ../shared)")
    data = np.loadtxt(WEB_VOTES, delimiter=",", skiprows=1, dtype=np.int64)
    return data[:, 0], data[:, 1], data[:, 2]


def test_the_module_imports_with_django_and_the_apps_blocked():
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    top = name.split('.')[0]\n"
        "    if top in {'django', 'rest_framework', 'celery', 'modeling', 'video',\n"
        "               'workers', 'config'}:\n"
        "        raise ImportError('forbidden in agreement.py: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('agreement',\n"
        "    'annotation/agreement.py')\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(module.krippendorff_alpha([0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 2, 2]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout) == 1.0


# --- Krippendorff's alpha -------------------------------------------------------------


@pytest.mark.parametrize("level", sorted(KRIPPENDORFF_PUBLISHED))
def test_alpha_reproduces_krippendorffs_published_example(level):
    items, raters, values = _long(KRIPPENDORFF_EXAMPLE)
    alpha = ag.krippendorff_alpha(items, raters, values, level=level)
    assert round(alpha, 3) == KRIPPENDORFF_PUBLISHED[level]


@pytest.mark.parametrize("level", ag.LEVELS)
def test_alpha_equals_the_krippendorff_package_on_the_published_example(level):
    import krippendorff

    items, raters, values = _long(KRIPPENDORFF_EXAMPLE)
    reference = krippendorff.alpha(
        reliability_data=_reliability(items, raters, values),
        level_of_measurement=level,
    )
    alpha = ag.krippendorff_alpha(items, raters, values, level=level)
    assert alpha == pytest.approx(reference, abs=1e-12)


@pytest.mark.parametrize("level", ag.LEVELS)
def test_alpha_equals_the_krippendorff_package_on_real_sparse_votes(web_votes, level):
    import krippendorff

    reference = krippendorff.alpha(
        reliability_data=_reliability(*web_votes), level_of_measurement=level
    )
    alpha = ag.krippendorff_alpha(*web_votes, level=level)
    assert abs(alpha - reference) < 1e-9


def test_ordinal_alpha_is_not_the_absolute_difference_metric():
    # With |a - b| (what one tool calls "ordinal") this data gives another value.
    items, raters, values = _long(KRIPPENDORFF_EXAMPLE)
    ordinal = ag.krippendorff_alpha(items, raters, values, level="ordinal")
    interval = ag.krippendorff_alpha(items, raters, values, level="interval")
    assert round(ordinal, 3) == 0.815 and round(interval, 3) == 0.849


def test_units_with_a_single_vote_are_not_pairable_and_change_nothing():
    items, raters, values = _long(KRIPPENDORFF_EXAMPLE)
    alpha = ag.krippendorff_alpha(items, raters, values)
    more = ag.krippendorff_alpha(
        np.append(items, [100, 101]),
        np.append(raters, [0, 1]),
        np.append(values, [5, 1]),
    )
    assert more == alpha


def test_alpha_is_one_when_every_unit_is_unanimous_and_nan_for_one_category():
    items = [0, 0, 0, 1, 1, 2, 2, 2]
    raters = [0, 1, 2, 0, 1, 0, 1, 2]
    assert ag.krippendorff_alpha(items, raters, [1, 1, 1, 3, 3, 5, 5, 5]) == 1.0
    # a single category: no disagreement is possible, α is undefined
    assert np.isnan(ag.krippendorff_alpha(items, raters, [2] * 8))
    # no unit with two values: nothing is pairable
    assert np.isnan(ag.krippendorff_alpha([0, 1, 2], [0, 0, 0], [1, 2, 3]))


def test_alpha_with_ties_by_hand():
    # Two units, two raters: (1, 1) and (1, 2). Coincidences o = [[2, 1], [1, 0]],
    # margins n = (3, 1), n = 4; nominal δ = 1 off the diagonal:
    # α = 1 - (n - 1) · (o12 + o21) / (n1 n2 + n2 n1) = 1 - 3 · 2 / 6 = 0.
    items, raters, values = [0, 0, 1, 1], [0, 1, 0, 1], [1, 1, 1, 2]
    assert ag.krippendorff_alpha(items, raters, values, level="nominal") == 0.0
    # ordinal δ(1, 2) = (n1 + n2 - (n1 + n2) / 2)² = 4 for every pair: α = 0 too
    assert ag.krippendorff_alpha(items, raters, values, level="ordinal") == 0.0


def test_bootstrap_interval_holds_alpha_is_reproducible_and_narrows(web_votes):
    alpha, low, high = ag.krippendorff_alpha_ci(*web_votes, n_boot=400, seed=1)
    assert alpha == pytest.approx(ag.krippendorff_alpha(*web_votes), abs=1e-12)
    assert low < alpha < high
    assert (low, high) == ag.krippendorff_alpha_ci(*web_votes, n_boot=400, seed=1)[1:]
    items, raters, values = web_votes
    half = items < np.median(items)
    _, low_half, high_half = ag.krippendorff_alpha_ci(
        items[half], raters[half], values[half], n_boot=400, seed=1
    )
    assert high_half - low_half > high - low


def test_bootstrap_matches_a_plain_loop_over_resampled_units():
    # The multinomial draw over distinct units is the ordinary unit bootstrap: the
    # same distribution of α as resampling units one by one (checked by moments).
    rng = np.random.default_rng(3)
    quality = rng.uniform(1, 5, 60)
    items = np.repeat(np.arange(60), 6)
    raters = np.tile(np.arange(6), 60)
    values = np.clip(np.rint(quality[items] + rng.normal(0, 0.8, 360)), 1, 5)
    _, low, high = ag.krippendorff_alpha_ci(items, raters, values, n_boot=2000)
    loop = []
    for _ in range(600):
        units = rng.integers(0, 60, 60)
        pick = np.concatenate([np.flatnonzero(items == u) for u in units])
        relabelled = np.repeat(np.arange(60), 6)
        loop.append(ag.krippendorff_alpha(relabelled, raters[pick], values[pick]))
    loop_low, loop_high = np.quantile(loop, [0.025, 0.975])
    assert low == pytest.approx(loop_low, abs=0.03)
    assert high == pytest.approx(loop_high, abs=0.03)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="one entry per vote"):
        ag.krippendorff_alpha([0, 1], [0], [1, 2])
    with pytest.raises(ValueError, match="level must be one of"):
        ag.krippendorff_alpha([0], [0], [1], level="cardinal")
    with pytest.raises(ValueError, match="finite"):
        ag.krippendorff_alpha([0, 0], [0, 1], [1.0, np.nan])


# --- kappas ---------------------------------------------------------------------------


def test_weighted_kappa_by_hand():
    # observed agreement 3/4, chance (1/2 · 1/4 + 1/2 · 3/4) = 1/2: κ = 1/2
    assert ag.weighted_kappa([1, 1, 2, 2], [1, 2, 2, 2], weights=None) == 0.5
    assert ag.weighted_kappa([1, 2, 3], [1, 2, 3]) == 1.0


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_weighted_kappa_equals_scikit_learn(weights):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(1)
    a = rng.integers(1, 6, 300)
    b = np.clip(a + rng.integers(-2, 3, 300), 1, 5)
    assert ag.weighted_kappa(a, b, weights=weights) == pytest.approx(
        cohen_kappa_score(a, b, weights=weights), abs=1e-12
    )


def test_pairwise_kappa_equals_scikit_learn_for_every_pair_on_real_votes(web_votes):
    from sklearn.metrics import cohen_kappa_score

    kappa, overlap, rater_ids = ag.pairwise_weighted_kappa(*web_votes, min_overlap=10)
    items, raters, values = web_votes
    checked = 0
    for i, j in zip(*np.nonzero(np.triu(overlap >= 10, k=1))):
        a = dict(zip(items[raters == rater_ids[i]], values[raters == rater_ids[i]]))
        b = dict(zip(items[raters == rater_ids[j]], values[raters == rater_ids[j]]))
        shared = sorted(set(a) & set(b))
        assert len(shared) == overlap[i, j]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reference = cohen_kappa_score(
                [a[u] for u in shared], [b[u] for u in shared], weights="quadratic"
            )
        if np.isnan(reference):
            assert np.isnan(kappa[i, j])
        else:
            assert abs(kappa[i, j] - reference) < 1e-9
        checked += 1
    assert checked > 100
    off_diagonal = ~np.eye(len(rater_ids), dtype=bool)
    assert np.isnan(kappa[(overlap < 10) & off_diagonal]).all()
    assert ((overlap < 10) & off_diagonal).any()  # the threshold was exercised
    assert np.all(np.diag(kappa) == 1.0)


FLEISS_WIKIPEDIA = [  # 10 subjects, 14 raters, 5 categories; κ = 0.210
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_kappa_equals_statsmodels_and_the_worked_example(web_votes):
    from statsmodels.stats.inter_rater import fleiss_kappa

    assert round(ag.fleiss_kappa(FLEISS_WIKIPEDIA), 3) == 0.210
    assert ag.fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(
        fleiss_kappa(np.array(FLEISS_WIKIPEDIA), method="fleiss"), abs=1e-12
    )
    items, _, values = web_votes
    per_item = np.bincount(items)
    five = np.isin(items, np.flatnonzero(per_item == 5))
    counts, _ = ag.unit_value_counts(
        items[five], values[five], categories=[1, 2, 3, 4, 5]
    )
    assert len(counts) > 50
    assert abs(ag.fleiss_kappa(counts) - fleiss_kappa(counts, method="fleiss")) < 1e-9
    with pytest.raises(ValueError, match="same number"):
        ag.fleiss_kappa([[1, 1], [2, 1]])


# Shrout & Fleiss (1979), Table 2: six targets rated by four judges, and their values.
SHROUT_FLEISS = [
    [9, 2, 5, 8],
    [6, 1, 3, 2],
    [8, 4, 6, 8],
    [7, 1, 2, 6],
    [10, 5, 6, 9],
    [6, 2, 4, 7],
]
SHROUT_FLEISS_PUBLISHED = {
    "1,1": 0.17, "2,1": 0.29, "3,1": 0.71, "1,k": 0.44, "2,k": 0.62, "3,k": 0.91
}  # fmt: skip
PINGOUIN_NAMES = {
    "1,1": "ICC(1,1)", "2,1": "ICC(A,1)", "3,1": "ICC(C,1)",
    "1,k": "ICC(1,k)", "2,k": "ICC(A,k)", "3,k": "ICC(C,k)",
}  # fmt: skip


@pytest.mark.parametrize("form", ag.ICC_FORMS)
def test_icc_reproduces_shrout_and_fleiss_and_equals_pingouin(form):
    import pandas as pd
    import pingouin

    assert round(ag.icc(SHROUT_FLEISS, form=form), 2) == SHROUT_FLEISS_PUBLISHED[form]
    rng = np.random.default_rng(4)
    table = rng.integers(1, 6, (40, 5)) + (np.arange(40) % 3)[:, None]
    long = pd.DataFrame(
        [(i, r, table[i, r]) for i in range(40) for r in range(5)],
        columns=["item", "rater", "score"],
    )
    reference = pingouin.intraclass_corr(
        data=long, targets="item", raters="rater", ratings="score"
    ).set_index("Type")["ICC"][PINGOUIN_NAMES[form]]
    assert abs(ag.icc(table, form=form) - reference) < 1e-9


# --- Dawid–Skene --------------------------------------------------------------


def test_dawid_skene_posteriors_equal_crowd_kit_on_real_votes(web_votes):
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    posteriors, confusions = ag.dawid_skene(*web_votes, n_iter=100, tol=1e-5)
    items, raters, values = web_votes
    frame = pd.DataFrame({"task": items, "worker": raters, "label": values})
    reference = DawidSkene(n_iter=100, tol=1e-5).fit(frame).probas_
    reference = reference.sort_index()[sorted(reference.columns)].to_numpy()
    assert posteriors.shape == reference.shape == (len(np.unique(items)), 5)
    # crowd-kit floors its returned posteriors at 1e-10 (inside its ELBO), we do
    # not: that is the whole difference.
    assert np.abs(posteriors - reference).max() <= 1e-9
    assert np.allclose(confusions.sum(axis=2), 1.0)


def test_dawid_skene_trusts_the_consistent_raters_by_hand():
    # Raters 0 and 1 always agree; rater 2 says the opposite on every item.
    truth = np.array([1, 2, 1, 2, 1, 2, 1, 2])
    items = np.tile(np.arange(8), 3)
    raters = np.repeat([0, 1, 2], 8)
    values = np.concatenate([truth, truth, 3 - truth])
    posteriors, confusions = ag.dawid_skene(items, raters, values)
    assert np.array_equal(posteriors.argmax(axis=1) + 1, truth)
    assert confusions[2, 0, 1] > 0.99 and confusions[0, 0, 0] > 0.99


# --- per clip and per expert ---------------------------------------------------


def test_clip_dispersion_by_hand():
    d = dispersion.clip_dispersion([[10, 0, 0, 0, 0], [5, 0, 0, 0, 5], [2, 2, 2, 2, 2]])
    assert d.entropy_bits[0] == 0 and d.std[0] == 0 and d.ordinal_dispersion[0] == 0
    assert d.ordinal_dispersion[1] == 1.0  # split between the two ends
    assert d.std[1] == 2.0 and d.entropy_bits[1] == 1.0
    assert d.entropy_bits[2] == pytest.approx(np.log2(5))
    # cumulative shares .2 .4 .6 .8: Σ 2 min(F, 1 - F) / 4 = (.4 + .8 + .8 + .4) / 4
    assert d.ordinal_dispersion[2] == pytest.approx(0.6)
    # the Dirichlet(1, …) marginal of grade A after 10 × A is Beta(11, 4)
    assert d.ci_low[0, 0] == pytest.approx(stats.beta.ppf(0.025, 11, 4))
    assert d.ci_high[0, 0] == pytest.approx(stats.beta.ppf(0.975, 11, 4))
    assert d.ci_width_max[0] > 0


def test_more_votes_narrow_the_credible_intervals():
    few = dispersion.clip_dispersion([[2, 3, 1, 0, 0]]).ci_width_max[0]
    many = dispersion.clip_dispersion([[20, 30, 10, 0, 0]]).ci_width_max[0]
    assert many < few


def test_expert_figures_by_hand():
    # Clip 0: experts 0, 1, 2 vote A, A, C. Clip 1: B, B, B.
    items = [0, 0, 0, 1, 1, 1]
    raters = [0, 1, 2, 0, 1, 2]
    values = [1, 1, 3, 2, 2, 2]
    f = ag.expert_figures(items, raters, values)
    # expert 2 on clip 0: the rest voted A, A (mean 1): bias +2; on clip 1 bias 0
    assert f.bias[2] == pytest.approx(1.0)
    # expert 0 on clip 0: the rest is A, C (mean 2): bias -1; clip 1: 0
    assert f.bias[0] == pytest.approx(-0.5)
    # EMD of vote C to the rest's A, A: CDFs (0,0,1,1,1) vs (1,1,1,1,1): 2/5
    assert f.emd[2] == pytest.approx((2 / 5 + 0) / 2)
    # within one grade of the rest's mode: C vs A is two grades away
    assert f.within_one[2] == 0.5 and f.within_one[0] == 1.0
    assert f.confusion[2, 0, 2] == 1 and f.confusion[2, 1, 1] == 1
    # the median of the experts' EMDs: expert 0 on clip 0 vs (A, C): CDFs
    # (1,1,1,1,1) vs (.5,.5,1,1,1): .5/5 -> mean .05; experts 0 and 1 alike
    assert ag.human_baseline(items, raters, values) == pytest.approx(0.05)


def test_expert_emd_matches_the_modeling_metric():
    from modeling.metrics import emd_per_clip

    rng = np.random.default_rng(0)
    dist = rng.dirichlet(np.ones(5), size=20)
    votes = rng.integers(0, 5, 20)
    assert np.allclose(
        ag.emd_to_distribution(votes, dist), emd_per_clip(np.eye(5)[votes], dist)
    )


def test_test_retest_kappa_and_median_seconds():
    assert ag.test_retest_kappa([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert ag.median_seconds([3.0, 9.0, 4.0]) == 4.0
    assert np.isnan(ag.median_seconds([]))

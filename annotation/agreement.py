"""Panel statistics, pure (numpy and scipy only; no Django, no app code).

Votes come as three equal-length arrays: ``items``, ``raters`` and ``values``
(numbers; grades as 1..5), with any pattern of missing votes. Every statistic here
is checked against a reference implementation on real multi-rater data
(tests/annotation/test_agreement.py): the ``krippendorff`` package for α,
scikit-learn for Cohen's κ, statsmodels for Fleiss' κ, pingouin for the ICC and
crowd-kit for Dawid–Skene.

Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"):
values are pooled into a coincidence matrix o (units with fewer than two values are
not pairable and add nothing), n_c are its margins, and

    α = 1 - (n - 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck

with δ² nominal (c ≠ k), interval ((c - k)²), ratio (((c - k)/(c + k))²) or ordinal
((Σ_{g=c..k} n_g - (n_c + n_k)/2)², from the cumulative margins; not |c - k|).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

N_GRADES = 5  # A..E, as annotation.dispersion (both pure: no app import)
LEVELS = ("nominal", "ordinal", "interval", "ratio")
ICC_FORMS = ("1,1", "2,1", "3,1", "1,k", "2,k", "3,k")
_EPS = 1e-10
_BOOT_BLOCK = 100  # bootstrap resamples drawn at once


# --- votes as tables ----------------------------------------------------------------


def value_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value in them).

    Integers in a modest range (grades, database ids) take a linear-time path; a
    general sort (``np.unique``) handles the rest.
    """
    values = np.asarray(values).reshape(-1)
    if values.dtype.kind in "iu" and len(values):
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * len(values) + 1024:
            offset = values - low
            present = np.zeros(high - low + 1, dtype=bool)
            present[offset] = True
            uniques = np.flatnonzero(present) + low
            lookup = np.cumsum(present) - 1
            return uniques.astype(values.dtype), lookup[offset]
    uniques, codes = np.unique(values, return_inverse=True)
    return uniques, codes.reshape(-1)


def _votes(items, raters, values):
    items, raters, values = (np.asarray(a).reshape(-1) for a in (items, raters, values))
    if not len(items) == len(raters) == len(values):
        raise ValueError(
            f"items, raters and values must have one entry per vote; got "
            f"{len(items)}, {len(raters)} and {len(values)}"
        )
    if len(values) and not np.all(np.isfinite(values.astype(float))):
        raise ValueError("values must be finite numbers (drop missing votes first)")
    return items, raters, values


def unit_value_counts(items, values, categories=None) -> tuple[np.ndarray, np.ndarray]:
    """(units × categories) vote counts and the categories (sorted values)."""
    unit_ids, unit_index = value_codes(items)
    if categories is None:
        categories, value_index = value_codes(values)
    else:
        categories = np.asarray(categories)
        value_index = _category_index(categories, np.asarray(values).reshape(-1))
    c = len(categories)
    flat = np.bincount(unit_index * c + value_index, minlength=len(unit_ids) * c)
    return flat.reshape(len(unit_ids), c).astype(np.int64), categories


def _category_index(categories: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's position in the sorted categories: a subtraction where they are
    consecutive integers that hold every value (grades 1..5), else a search."""
    low = categories[0] if len(categories) else 0
    if (
        len(values)
        and values.dtype.kind in "iu"
        and np.array_equal(categories, np.arange(low, low + len(categories)))
        and low <= values.min()
        and values.max() < low + len(categories)
    ):
        return values - low
    return np.searchsorted(categories, values)


# --- Krippendorff's alpha -----------------------------------------------------------


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Per-unit coincidence contributions, flattened (units × C²), pairable only."""
    m = counts.sum(axis=1)
    pairable = counts[m >= 2]
    m = m[m >= 2].astype(np.float64)
    outer = pairable[:, :, None] * pairable[:, None, :]
    c = counts.shape[1]
    outer[:, np.arange(c), np.arange(c)] -= pairable
    return (outer / (m - 1)[:, None, None]).reshape(len(pairable), c * c)


def _delta2(level: str, categories: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """δ² for every category pair; ``n_c`` (…, C) may hold one margin per row."""
    v = categories.astype(np.float64)
    if level == "nominal":
        return np.broadcast_to(1.0 - np.eye(len(v)), (*n_c.shape[:-1], len(v), len(v)))
    if level == "interval":
        d = (v[:, None] - v[None, :]) ** 2
        return np.broadcast_to(d, (*n_c.shape[:-1], len(v), len(v)))
    if level == "ratio":
        total = v[:, None] + v[None, :]
        diff = v[:, None] - v[None, :]
        d = np.divide(diff, total, out=np.zeros_like(diff), where=total != 0) ** 2
        return np.broadcast_to(d, (*n_c.shape[:-1], len(v), len(v)))
    # ordinal: Σ_{g between c and k, inclusive} n_g - (n_c + n_k) / 2
    cum = np.cumsum(n_c, axis=-1)
    low = np.minimum.outer(np.arange(len(v)), np.arange(len(v)))
    high = np.maximum.outer(np.arange(len(v)), np.arange(len(v)))
    before_low = np.where(low > 0, cum[..., np.maximum(low - 1, 0)], 0.0)
    between = cum[..., high] - before_low
    half = (n_c[..., :, None] + n_c[..., None, :]) / 2.0
    return (between - half) ** 2


def _alpha_from_coincidences(
    o: np.ndarray, level: str, categories: np.ndarray
) -> np.ndarray:
    """α from coincidence matrices (…, C, C); NaN where no disagreement is possible."""
    n_c = o.sum(axis=-1)
    n = n_c.sum(axis=-1)
    d = _delta2(level, categories, n_c)
    observed = (o * d).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * d).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, 1.0 - (n - 1) * observed / expected, np.nan)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")


def krippendorff_alpha(items, raters, values, *, level: str = "ordinal") -> float:
    """Krippendorff's α of the votes (see the module docstring).

    ``raters`` only checks the input's shape: α pools the values of each unit.
    NaN when it is undefined: fewer than two categories or no pairable unit.
    """
    _check_level(level)
    pooled = _pooled(items, raters, values)
    return float("nan") if pooled is None else _pooled_alpha(pooled, level)


def _pooled_alpha(pooled, level: str) -> float:
    categories, frequency, per_pattern = pooled
    c = len(categories)
    o = (frequency @ per_pattern).reshape(c, c)
    return float(_alpha_from_coincidences(o, level, categories))


def _pooled(items, raters, values):
    """(categories, how often each distinct pairable unit occurs, each one's
    coincidence contribution (K, C²)), or None when α is undefined (fewer than two
    categories, nothing pairable). α and its bootstrap both start from this."""
    items, raters, values = _votes(items, raters, values)
    counts, categories = unit_value_counts(items, values)
    pairable = counts[counts.sum(axis=1) >= 2]
    if len(categories) < 2 or not len(pairable):
        return None
    patterns, frequency = _distinct_rows(pairable)
    return categories, frequency, _unit_coincidences(patterns)


def _distinct_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct rows of a count table, how often each occurs), by encoding each
    row as one integer (base max + 1) instead of sorting rows."""
    base = int(counts.max()) + 1
    if base ** counts.shape[1] < 2**62:
        weights = base ** np.arange(counts.shape[1], dtype=np.int64)
        _, first, frequency = np.unique(
            counts @ weights, return_index=True, return_counts=True
        )
        return counts[first], frequency
    return np.unique(counts, axis=0, return_counts=True)


def krippendorff_alpha_ci(
    items,
    raters,
    values,
    *,
    level: str = "ordinal",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(α, low, high): α with a percentile bootstrap interval over units.

    Units are resampled with replacement, all at once: identical units are pooled,
    and a bootstrap sample is a multinomial draw of how often each distinct unit
    appears (benchmarks/agreement.py times 100,000 units × 1,000 resamples).
    """
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    pooled = _pooled(items, raters, values)
    if pooled is None:
        return float("nan"), float("nan"), float("nan")
    alpha = _pooled_alpha(pooled, level)
    categories, frequency, per_pattern = pooled
    c = len(categories)
    rng = np.random.default_rng(seed)
    n_units = int(frequency.sum())
    # In blocks of resamples: the same draws in the same order, in a fraction of
    # the memory (1,000 × 15,000 distinct units would be 120 MB at once).
    o = np.empty((n_boot, c * c))
    for start in range(0, n_boot, _BOOT_BLOCK):
        size = min(_BOOT_BLOCK, n_boot - start)
        draws = rng.multinomial(n_units, frequency / n_units, size=size)
        o[start : start + size] = draws.astype(np.float64) @ per_pattern
    o = o.reshape(n_boot, c, c)
    boot = _alpha_from_coincidences(o, level, categories)
    tail = (1.0 - confidence) / 2.0
    low, high = np.nanquantile(boot, [tail, 1.0 - tail])
    return alpha, float(low), float(high)


# --- kappas and the ICC -------------------------------------------------------------


def weighted_kappa(a, b, *, weights: str | None = "quadratic") -> float:
    """Cohen's κ of two raters' paired labels, unweighted or with linear or
    quadratic weights over the positions of the sorted labels seen in either."""
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"a and b must be paired; got {len(a)} and {len(b)} labels")
    _check_weights(weights)
    labels, codes = value_codes(np.concatenate([a, b]))
    k = len(labels)
    if not len(a) or k < 2:
        return float("nan")
    pairs = np.bincount(codes[: len(a)] * k + codes[len(a) :], minlength=k * k)
    return _kappa(pairs.reshape(k, k).astype(np.float64), weights)


def _check_weights(weights) -> None:
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(
            f"weights must be None, 'linear' or 'quadratic'; got {weights!r}"
        )


def _kappa(confusion: np.ndarray, weights: str | None) -> float:
    """Weighted κ of a confusion matrix over the labels seen (k × k, k ≥ 2)."""
    k = len(confusion)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    w = {None: (grid > 0).astype(float), "linear": grid, "quadratic": grid**2}[weights]
    return float(1.0 - (w * confusion).sum() / (w * expected).sum())


def pairwise_weighted_kappa(
    items,
    raters,
    values,
    *,
    weights: str | None = "quadratic",
    min_overlap: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(κ matrix, overlap counts, rater ids): weighted κ of every pair of raters on
    the items both rated; NaN where they share fewer than ``min_overlap`` items.
    The diagonal is 1 (a rater agrees with themselves). A rater who voted twice on
    an item counts with the first vote."""
    items, raters, values = _votes(items, raters, values)
    _check_weights(weights)
    rater_ids, rater_index = value_codes(raters)
    _, item_index = value_codes(items)
    labels, label = value_codes(values)
    r, k = len(rater_ids), len(labels)
    # Each rater's label code per item, k where they did not rate it; the first
    # vote wins by being written last.
    table = np.full((r, item_index.max(initial=-1) + 1), k, dtype=np.intp)
    order = np.arange(len(values))[::-1]
    table[rater_index[order], item_index[order]] = label[order]
    rated = (table < k).sum(axis=1)
    overlap = np.diag(rated).astype(np.int64)
    kappa = np.full(overlap.shape, np.nan)
    np.fill_diagonal(kappa, 1.0)
    for i in range(r):
        scaled = table[i] * (k + 1)
        for j in range(i + 1, r):
            pairs = np.bincount(scaled + table[j], minlength=(k + 1) ** 2)
            confusion = pairs.reshape(k + 1, k + 1)[:k, :k]
            overlap[i, j] = overlap[j, i] = confusion.sum()
            if overlap[i, j] < min_overlap:
                continue
            seen = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
            if seen.sum() < 2:
                continue
            kappa[i, j] = kappa[j, i] = _kappa(
                confusion[np.ix_(seen, seen)].astype(np.float64), weights
            )
    return kappa, overlap, rater_ids


def fleiss_kappa(counts) -> float:
    """Fleiss' κ of an items × categories table of counts (equal votes per item)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be items × categories, got shape {counts.shape}")
    per_item = counts.sum(axis=1)
    if not np.all(per_item == per_item[0]) or per_item[0] < 2:
        raise ValueError("Fleiss' κ needs the same number (≥ 2) of votes per item")
    n = per_item[0]
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_e = (p_j**2).sum()
    return float((p_i.mean() - p_e) / (1.0 - p_e))


def icc(table, *, form: str = "2,1") -> float:
    """Intraclass correlation (Shrout & Fleiss 1979) of a complete items × raters
    table: ``form`` 1,1 / 2,1 / 3,1 (single rater) or 1,k / 2,k / 3,k (the mean of
    the k raters)."""
    if form not in ICC_FORMS:
        raise ValueError(f"form must be one of {', '.join(ICC_FORMS)}; got {form!r}")
    x = np.asarray(table, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 2 or not np.all(np.isfinite(x)):
        raise ValueError("the ICC needs a complete items × raters table (≥ 2 × 2)")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    msw = (ss_total - ss_rows) / (n * (k - 1))
    return float(
        {
            "1,1": (msr - msw) / (msr + (k - 1) * msw),
            "2,1": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
            "3,1": (msr - mse) / (msr + (k - 1) * mse),
            "1,k": (msr - msw) / msr,
            "2,k": (msr - mse) / (msr + (msc - mse) / n),
            "3,k": (msr - mse) / msr,
        }[form]
    )


# --- Dawid–Skene ----------------------------------------------------------------------


def _in_input_order(rows, columns, n_rows: int, n_columns: int):
    """A sparse matrix of ones, one per (row, column) pair, in input order within a
    row, duplicates kept: its products add what ``np.add.at`` would, in its order."""
    if np.all(rows[1:] >= rows[:-1]):  # votes already ordered by these rows
        order = slice(None)
    else:  # a radix sort where the rows fit in 16 bits
        small = rows.astype(np.uint16) if n_rows <= 2**16 else rows
        order = np.argsort(small, kind="stable")
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = np.ones(len(rows))
    return sparse.csr_matrix((data, columns[order], indptr), (n_rows, n_columns))


def dawid_skene(
    items, raters, values, *, n_iter: int = 100, tol: float = 1e-5
) -> tuple[np.ndarray, np.ndarray]:
    """(item posteriors, rater confusions) by EM (Dawid & Skene 1979).

    Starts from the majority vote (each item's vote shares), then alternates the
    M step (class priors and each rater's confusion matrix from the posteriors,
    floored at 1e-10 and normalised over the labels that rater used) and the E step,
    until the evidence lower bound per vote improves by less than ``tol``.
    Posteriors: one row per distinct item (ascending), one column per category
    (ascending). Confusions: raters × true category × observed category.
    """
    items, raters, values = _votes(items, raters, values)
    _, item_index = value_codes(items)
    _, rater_index = value_codes(raters)
    categories, label = value_codes(values)
    n_items, n_raters, c = item_index.max() + 1, rater_index.max() + 1, len(categories)
    votes_of = np.bincount(item_index, minlength=n_items)
    counts = np.bincount(item_index * c + label, minlength=n_items * c)
    counts = counts.reshape(n_items, c).astype(np.float64)
    posterior = counts / counts.sum(axis=1, keepdims=True)
    used = np.zeros((n_raters, c), dtype=bool)
    used[rater_index, label] = True
    # Each vote is its item's row and its (rater, label) column, and the reverse.
    rater_label = rater_index * c + label
    by_item = _in_input_order(item_index, rater_label, n_items, n_raters * c)
    by_rater_label = _in_input_order(rater_label, item_index, n_raters * c, n_items)

    def m_step(post):
        errors = (by_rater_label @ post).reshape(
            n_raters, c, c
        )  # rater, observed, true
        errors = np.where(used[:, :, None], np.maximum(errors, _EPS), 0.0)
        errors /= errors.sum(axis=1, keepdims=True)
        return np.maximum(post.mean(axis=0), _EPS), errors

    def log2_evidence(errors):  # Σ over each item's votes of log2 θ: (items, C)
        log_errors = np.log2(np.where(used[:, :, None], errors, 1.0))
        return by_item @ log_errors.reshape(n_raters * c, c)

    def e_step(evidence, priors):
        loglik = evidence + np.log2(priors)
        scaled = np.exp2(loglik - loglik.max(axis=1, keepdims=True))
        return scaled / scaled.sum(axis=1, keepdims=True)

    def elbo(post, priors, evidence):
        # Σ_votes post · (ln θ + ln π), gathered per item rather than per vote.
        joint = post * (evidence * np.log(2.0) + votes_of[:, None] * np.log(priors))
        clipped = np.maximum(post, _EPS)
        return (joint.sum() - (np.log(clipped) * clipped).sum()) / len(values)

    priors, errors = m_step(posterior)
    evidence = log2_evidence(errors)
    loss = -np.inf
    for _ in range(n_iter):
        posterior = e_step(evidence, priors)
        priors, errors = m_step(posterior)
        evidence = log2_evidence(errors)  # this ELBO's and the next E step's
        new_loss = elbo(posterior, priors, evidence)
        if new_loss - loss < tol:
            break
        loss = new_loss
    return posterior, errors.transpose(0, 2, 1)


# --- per expert -----------------------------------------------------------------------


def emd_to_distribution(grade_index, distributions) -> np.ndarray:
    """EMD between one-hot votes and distributions over the ordered grades: the
    mean squared difference of the cumulative distributions, the definition of
    ``modeling.metrics.emd_per_clip`` (so experts and models share one scale)."""
    distributions = np.asarray(distributions, dtype=np.float64)
    k = distributions.shape[1]
    cdf_vote = (np.arange(k)[None, :] >= np.asarray(grade_index)[:, None]).astype(float)
    return ((cdf_vote - np.cumsum(distributions, axis=1)) ** 2).mean(axis=1)


@dataclass(frozen=True)
class ExpertFigures:
    """One entry per rater id (ascending), from the leave-one-out panel."""

    rater_ids: np.ndarray
    n_votes: np.ndarray
    bias: np.ndarray  # mean(own score - rest of the panel's mean score); + = harsher
    emd: np.ndarray  # mean EMD of own vote to the rest of the panel's distribution
    within_one: np.ndarray  # share of votes within one grade of the rest's mode
    confusion: np.ndarray  # raters × 5 × 5: rows the rest's mode, columns own grade


def votes_against_rest(grade_index, panel_counts) -> dict:
    """Each vote against the rest of the panel on its clip.

    ``grade_index`` (V,) holds the votes as 0..4 and ``panel_counts`` (V, 5) the
    clip's counts *including* that vote. Returns per vote: ``usable`` (someone else
    voted), and for the usable ones ``bias`` (own score − the rest's mean score),
    ``emd`` (to the rest's distribution), ``within_one`` (of the rest's mode, ties
    to the better grade) and ``mode``.
    """
    grade_index = np.asarray(grade_index, dtype=np.int64)
    rest = np.asarray(panel_counts, dtype=np.float64).copy()
    rest[np.arange(len(grade_index)), grade_index] -= 1
    n_rest = rest.sum(axis=1)
    usable = n_rest > 0
    rest, grade_k = rest[usable], grade_index[usable]
    dist = rest / n_rest[usable][:, None]
    mode = rest.argmax(axis=1)
    return {
        "usable": usable,
        "bias": (grade_k + 1) - dist @ np.arange(1, rest.shape[1] + 1),
        "emd": emd_to_distribution(grade_k, dist),
        "within_one": (np.abs(grade_k - mode) <= 1).astype(float),
        "mode": mode,
    }


def expert_figures(items, raters, values, *, n_grades: int = N_GRADES) -> ExpertFigures:
    """Each rater against the rest of the panel on the same clips (values 1..n).

    Only clips with at least one other vote count. The rest's mode breaks ties
    towards the better grade.
    """
    items, raters, values = _votes(items, raters, values)
    grade = values.astype(np.int64) - 1
    if len(grade) and (grade.min() < 0 or grade.max() >= n_grades):
        raise ValueError(f"values must be grades 1..{n_grades}")
    rater_ids, rater_index = value_codes(raters)
    _, item_index = value_codes(items)
    n_items = item_index.max(initial=-1) + 1
    counts = np.bincount(item_index * n_grades + grade, minlength=n_items * n_grades)
    counts = counts.reshape(n_items, n_grades).astype(np.float64)
    # A vote against the rest depends only on its clip's counts and its grade:
    # each (clip, grade) that occurs is worked out once and looked up per vote.
    cells = np.flatnonzero(counts.reshape(-1) > 0)
    against = votes_against_rest(cells % n_grades, counts[cells // n_grades])
    cell_of_vote = np.zeros(counts.size, dtype=np.intp)
    cell_of_vote[cells] = np.arange(len(cells))
    cell_of_vote = cell_of_vote[item_index * n_grades + grade]
    usable = against["usable"][cell_of_vote]
    row = (np.cumsum(against["usable"]) - 1)[cell_of_vote[usable]]
    against = {key: against[key][row] for key in ("bias", "emd", "within_one", "mode")}
    who = rater_index[usable]
    grade_k = grade[usable]
    r = len(rater_ids)
    n_votes = np.bincount(who, minlength=r)

    def per_rater(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(who, weights=x, minlength=r) / n_votes

    cell = (who * n_grades + against["mode"]) * n_grades + grade_k
    confusion = np.bincount(cell, minlength=r * n_grades**2).astype(np.int64)
    confusion = confusion.reshape(r, n_grades, n_grades)
    return ExpertFigures(
        rater_ids=rater_ids,
        n_votes=n_votes,
        bias=per_rater(against["bias"]),
        emd=per_rater(against["emd"]),
        within_one=per_rater(against["within_one"]),
        confusion=confusion,
    )


def test_retest_kappa(first, repeat, *, weights: str = "quadratic") -> float:
    """Weighted κ between an expert's first votes and their hidden repeats."""
    return weighted_kappa(first, repeat, weights=weights)


def median_seconds(seconds) -> float:
    seconds = np.asarray(seconds, dtype=np.float64)
    return float(np.median(seconds)) if len(seconds) else float("nan")


def human_baseline(items, raters, values, *, min_votes: int = 1) -> float:
    """The median over experts of their leave-one-out EMD: how close a typical
    expert is to the rest of the panel, the yardstick a model is held to.
    Experts with fewer than ``min_votes`` comparable votes are left out."""
    return expert_baseline(expert_figures(items, raters, values), min_votes=min_votes)


def expert_baseline(figures: ExpertFigures, *, min_votes: int = 1) -> float:
    """``human_baseline`` from the panel's figures, when they are at hand."""
    usable = figures.n_votes >= max(min_votes, 1)
    return float(np.median(figures.emd[usable])) if usable.any() else float("nan")

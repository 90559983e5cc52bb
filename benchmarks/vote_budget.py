"""How many votes the vote budgets save, at the same closeness to the full panel.

Votes arrive at each clip in a random order. A fixed budget stops every clip after
k votes. Two budget rules, as the queue applies them:

- interval rule (annotation.dispersion.settled_ranges): stop once the clip has at
  least ``--min-votes`` votes and every grade share's 95 % credible interval is
  at most T wide;
- expected-EMD rule (annotation.budget_emd): stop once it has at least
  ``--min-votes`` votes and the expected EMD between its votes and its full panel,
  the remaining votes Dirichlet-multinomial under a Dirichlet prior fitted on the
  other half of the items (empirical Bayes), is below T.

Closeness is the EMD (modeling's definition) between the distribution when voting
stopped and the full panel's. For a rule's mean EMD, *fixed k* is the number of
votes per clip a fixed budget needs for the same mean EMD (interpolated), and
*saved* is 1 - the rule's mean votes / fixed k. The items are split in two halves
(seeded): the prior and the expected-EMD threshold are fitted on one half (the
threshold so that its mean EMD equals that of 20 fixed votes there) and every
figure is reported on the other. Five random vote orders give the spread. An
oracle that knows each item's full panel and spends votes in proportion to the
square root of its spread (the best allocation that does not look at the order
of the votes) bounds what any rule of this kind can save.

Data: a simulated 40-expert panel on 2,000 synthetic clips
(modeling.synthetic.simulate_panel), the real KonIQ-10k vote histograms (8,058
images, 93-157 votes each) and the real AVA vote histograms (25,551 images, 81-520
votes, ten scores merged pairwise into five ordered grades); each item's full
panel is all its votes. With ``--clinic-runs`` (the folder of a
benchmarks/compare_models.py run with the clinic model) also its rendered
synthetic clips and their simulated panel, once with the empirical-Bayes prior and
once with a model prior: alpha_i = s p_i, p_i the clinic model's out-of-fold
prediction for clip i, s fitted on the fit half (benchmarks/vote_budget_prior.py).
Writes docs/vote_budget.md and docs/vote_budget.png (matplotlib, a test
dependency). Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/vote_budget.py [--min-votes 10] [--orders 5] \
        [--clinic-runs var/compare_seeds]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.budget_emd import dirichlet_prior_fit, expected_emd  # noqa: E402
from annotation.dispersion import settled_ranges  # noqa: E402
from benchmarks.vote_budget_prior import (  # noqa: E402
    clinic_panel,
    floored,
    strength_fit,
)
from benchmarks.vote_budget_report import pct, write_docs  # noqa: E402
from modeling.synthetic import patient_qualities, simulate_panel  # noqa: E402

REAL = ROOT.parent / "shared/data/real"
KONIQ = REAL / "koniq_vote_histograms/koniq10k_distributions_training_validation.csv"
AVA = REAL / "ava_vote_histograms/ava_labels_test.json"
CI_WIDTHS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
EMD_GRID = tuple(float(t) for t in np.geomspace(3e-4, 1e-2, 13))
REFERENCE_K = 20  # the fixed budget whose EMD the headline matches
CHUNK = 1000


def emd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((np.cumsum(p, -1) - np.cumsum(q, -1)) ** 2).mean(-1)


def koniq_counts() -> np.ndarray:
    data = np.genfromtxt(KONIQ, delimiter=",", skip_header=1, usecols=range(1, 7))
    return np.rint(data[:, :5] * data[:, 5:6]).astype(np.int64)


def ava_counts() -> np.ndarray:
    """Scores 1-2, 3-4, 5-6, 7-8, 9-10 merged into five ordered grades."""
    items = json.loads(AVA.read_text())
    ten = np.array([item["label"] for item in items], dtype=np.int64)
    return ten.reshape(-1, 5, 2).sum(axis=2)


def synthetic_counts(n_clips: int = 2000, n_experts: int = 40) -> np.ndarray:
    rng = np.random.default_rng(7)
    qualities, _ = patient_qualities(n_clips=n_clips, n_patients=200, rng=rng)
    return simulate_panel(qualities=qualities, n_experts=n_experts, rng=rng).counts


@dataclass
class Paths:
    """Per item and per number of votes k = 1 .. L seen in one vote order: the EMD
    to the full panel, the expected EMD, and where the interval rule stops."""

    n: np.ndarray  # (items,) full panel size
    distance: np.ndarray  # (items, L)
    expected: np.ndarray  # (items, L)
    interval_stop: dict  # ci width -> (items,) votes when stopped


def _sequences(counts: np.ndarray, longest: int, rng) -> np.ndarray:
    """(items x longest x 5) cumulative counts in a random vote order (padded with
    the full counts past an item's panel)."""
    order = np.full((len(counts), longest), -1)
    for i, row in enumerate(counts):
        votes = np.repeat(np.arange(5), row)
        order[i, : len(votes)] = rng.permutation(votes)
    return np.cumsum(order[..., None] == np.arange(5), axis=1, dtype=np.int64)


def first_stop(ok: np.ndarray, n: np.ndarray, min_votes: int) -> np.ndarray:
    """Votes when stopped: the first k >= min_votes where ``ok``, else the panel."""
    k = np.arange(1, ok.shape[1] + 1)
    ok = ok & (k >= min_votes) & (k <= n[:, None])
    return np.where(ok.any(axis=1), ok.argmax(axis=1) + 1, n)


def vote_paths(counts, *, alpha, min_votes: int, seed: int) -> Paths:
    """``alpha``: one prior (5,) for every item, or one per item (items x 5)."""
    rng = np.random.default_rng(seed)
    alpha = np.asarray(alpha, dtype=np.float64)
    n = counts.sum(axis=1)
    longest = int(n.max())
    k = np.arange(1, longest + 1)
    ranges = {
        t: settled_ranges(ci_width=t, min_votes=min_votes, max_votes=longest)
        for t in CI_WIDTHS
    }
    distance = np.empty((len(counts), longest), dtype=np.float32)
    expected = np.empty_like(distance)
    stops = {t: np.empty(len(counts), dtype=np.int64) for t in CI_WIDTHS}
    for start in range(0, len(counts), CHUNK):
        part = slice(start, start + CHUNK)
        cum = _sequences(counts[part], longest, rng)
        full = counts[part] / n[part, None]
        distance[part] = emd(cum / k[None, :, None], full[:, None, :])
        prior = alpha[part, None, :] if alpha.ndim == 2 else alpha
        expected[part] = expected_emd(cum, alpha=prior, total=n[part, None])
        for t, rows in ranges.items():
            lo = np.zeros(longest + 1, dtype=np.int64)
            hi = np.full(longest + 1, 10**9)  # below the minimum: never settled
            for votes, low, high in rows:
                lo[votes], hi[votes] = low, high
            wide = (cum >= lo[k][None, :, None]) & (cum <= hi[k][None, :, None])
            stops[t][part] = first_stop(~wide.any(axis=2), n[part], min_votes)
    return Paths(n=n, distance=distance, expected=expected, interval_stop=stops)


def outcome(paths: Paths, stop: np.ndarray, items: np.ndarray) -> tuple:
    """(mean votes, mean EMD to the full panel) over ``items``."""
    at = paths.distance[items, stop[items] - 1]
    return float(stop[items].mean()), float(at.mean())


def fixed_curve(paths: Paths, items: np.ndarray) -> np.ndarray:
    """Mean EMD of k = 1 .. smallest panel fixed votes per item."""
    shortest = int(paths.n[items].min())
    return paths.distance[items, :shortest].mean(axis=0).astype(np.float64)


def fixed_k_at(curve: np.ndarray, mean_emd: float) -> float:
    """The fixed k with this mean EMD (the curve decreases with k)."""
    return float(np.interp(-mean_emd, -curve, np.arange(1, len(curve) + 1)))


def emd_rule_stop(paths: Paths, threshold: float, min_votes: int) -> np.ndarray:
    return first_stop(paths.expected < threshold, paths.n, min_votes)


def threshold_fit(paths: Paths, items, target: float, min_votes: int) -> float:
    """The expected-EMD threshold whose mean EMD on ``items`` is ``target``
    (bisection on log T; the mean EMD grows with T)."""
    low, high = np.log(1e-7), np.log(1.0)
    for _ in range(40):
        mid = 0.5 * (low + high)
        stop = emd_rule_stop(paths, float(np.exp(mid)), min_votes)
        if outcome(paths, stop, items)[1] < target:
            low = mid
        else:
            high = mid
    return float(np.exp(0.5 * (low + high)))


def oracle_stop(paths: Paths, spread: np.ndarray, scale: float) -> np.ndarray:
    """k_i proportional to sqrt(v_i N_i / (N_i - 1)), within 1 .. N_i: the optimum
    of sum_i v_i (N_i - k_i) / (k_i (N_i - 1)) (the expected EMD of k_i votes
    drawn without replacement from a panel of N_i) for a given total of votes."""
    k = np.rint(scale * np.sqrt(spread * paths.n / (paths.n - 1)))
    return np.clip(k, 1, paths.n).astype(np.int64)


def oracle_at(paths, spread, items, target: float) -> tuple:
    low, high = np.log(1e-2), np.log(1e4)
    for _ in range(40):
        mid = 0.5 * (low + high)
        if outcome(paths, oracle_stop(paths, spread, np.exp(mid)), items)[1] > target:
            low = mid
        else:
            high = mid
    return outcome(paths, oracle_stop(paths, spread, np.exp(high)), items)


def _saved(votes: float, k_equal: float) -> float:
    return 100.0 * (1.0 - votes / k_equal)


def _spread(values) -> dict:
    return {
        "mean": float(np.mean(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def halves(n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded (fit, test) split of the items."""
    order = np.random.default_rng(11).permutation(n_items)
    return np.sort(order[: n_items // 2]), np.sort(order[n_items // 2 :])


def study(
    name: str,
    counts: np.ndarray,
    *,
    min_votes: int,
    orders: int,
    prediction: np.ndarray | None = None,
) -> dict:
    """The rules on ``counts``, the prior the empirical-Bayes fit of the fit
    half, or with ``prediction`` (items x 5, a model's) alpha_i = s p_i, s
    fitted on the fit half."""
    started = time.perf_counter()
    train, test = halves(len(counts))
    if prediction is None:
        alpha, strength = dirichlet_prior_fit(counts[train]), None
    else:
        strength = strength_fit(counts[train], prediction[train])
        alpha = strength * floored(prediction)
    n = counts.sum(axis=1)
    cumulative = np.cumsum(counts / n[:, None], axis=1)[:, :-1]
    spread = (cumulative * (1 - cumulative)).sum(axis=1) / 5
    per_order = []
    for seed in range(orders):
        paths = vote_paths(counts, alpha=alpha, min_votes=min_votes, seed=seed)
        fixed_train, fixed_test = fixed_curve(paths, train), fixed_curve(paths, test)
        threshold = threshold_fit(paths, train, fixed_train[REFERENCE_K - 1], min_votes)
        votes, mean_emd = outcome(
            paths, emd_rule_stop(paths, threshold, min_votes), test
        )
        k_equal = fixed_k_at(fixed_test, mean_emd)
        o_votes, o_emd = oracle_at(paths, spread, test, fixed_test[REFERENCE_K - 1])
        row = {
            "fixed": fixed_test,
            "threshold": threshold,
            "headline": (votes, mean_emd, k_equal, _saved(votes, k_equal)),
            "oracle": (o_votes, o_emd, _saved(o_votes, fixed_k_at(fixed_test, o_emd))),
            "interval": {},
            "grid": {},
        }
        for t, stop in paths.interval_stop.items():
            v, e = outcome(paths, stop, test)
            row["interval"][t] = (v, e, fixed_k_at(fixed_test, e))
        for t in EMD_GRID:
            v, e = outcome(paths, emd_rule_stop(paths, t, min_votes), test)
            row["grid"][t] = (v, e, fixed_k_at(fixed_test, e))
        per_order.append(row)
        del paths

    def table(key, settings_):
        rows = []
        for t in settings_:
            got = [r[key][t] for r in per_order]
            rows.append(
                {
                    "setting": t,
                    "mean_votes": float(np.mean([g[0] for g in got])),
                    "mean_emd": float(np.mean([g[1] for g in got])),
                    "fixed_k_same_emd": float(np.mean([g[2] for g in got])),
                    "saved": _spread([_saved(g[0], g[2]) for g in got]),
                }
            )
        return rows

    heads = [r["headline"] for r in per_order]
    return {
        "name": name,
        "n_items": int(len(counts)),
        "n_test": int(len(test)),
        "votes_per_item": [int(n.min()), int(n.max())],
        "alpha": None if strength else [round(float(a), 3) for a in alpha],
        "strength": strength,
        "fixed_emd": np.mean([r["fixed"] for r in per_order], axis=0).tolist(),
        "reference_emd": float(
            np.mean([r["fixed"][REFERENCE_K - 1] for r in per_order])
        ),
        "thresholds": [r["threshold"] for r in per_order],
        "headline": {
            "mean_votes": float(np.mean([h[0] for h in heads])),
            "mean_emd": float(np.mean([h[1] for h in heads])),
            "fixed_k_same_emd": float(np.mean([h[2] for h in heads])),
            "saved": _spread([h[3] for h in heads]),
            "saved_orders": [h[3] for h in heads],
        },
        "oracle": {
            "mean_votes": float(np.mean([r["oracle"][0] for r in per_order])),
            "saved": _spread([r["oracle"][2] for r in per_order]),
            "saved_orders": [r["oracle"][2] for r in per_order],
        },
        "interval": table("interval", CI_WIDTHS),
        "emd_grid": table("grid", EMD_GRID),
        "spread_cv": float(spread.std() / spread.mean()),
        # how close the prior's mean is to each test item's full panel
        "prior_emd": float(
            emd(alpha / alpha.sum(-1, keepdims=True), counts / n[:, None])[test].mean()
        ),
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-votes", type=int, default=10)
    parser.add_argument("--orders", type=int, default=5, help="random vote orders")
    parser.add_argument(
        "--clinic-runs",
        type=Path,
        help="the --out folder of benchmarks/compare_models.py (read only): adds "
        "its rendered synthetic clips, with the empirical-Bayes prior and with "
        "the finished clinic runs' out-of-fold predictions as the prior",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    data = {"synthetic": ("Simulated 40-expert panel", synthetic_counts, None)}
    if KONIQ.is_file():
        data["koniq"] = ("KonIQ-10k (real)", koniq_counts, None)
    if AVA.is_file():
        data["ava"] = ("AVA (real)", ava_counts, None)
    clinic = None
    if args.clinic_runs:
        panel = clinic_panel(args.clinic_runs)
        clinic = {"runs": args.clinic_runs, "seeds": panel.seeds}
        rendered = f"Rendered synthetic panel ({len(panel.counts)} clips)"
        data["synthetic_600"] = (
            f"{rendered}, empirical-Bayes prior",
            lambda: panel.counts,
            None,
        )
        data["synthetic_clinic_prior"] = (
            f"{rendered}, clinic model prior",
            lambda: panel.counts,
            panel.prediction,
        )
    results = {}
    for key, (name, load, prediction) in data.items():
        results[key] = study(
            name,
            load(),
            min_votes=args.min_votes,
            orders=args.orders,
            prediction=prediction,
        )
        r, h = results[key], results[key]["headline"]
        print(
            f"{name}: EMD of {REFERENCE_K} fixed votes {r['reference_emd']:.5f}; "
            f"expected-EMD rule {h['mean_votes']:.1f} votes, EMD "
            f"{h['mean_emd']:.5f}, fixed k {h['fixed_k_same_emd']:.1f}: "
            f"{pct(h['saved'])} saved (oracle bound {pct(r['oracle']['saved'])}); "
            f"{r['seconds']:.0f} s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    write_docs(
        results,
        min_votes=args.min_votes,
        orders=args.orders,
        seconds=seconds,
        reference_k=REFERENCE_K,
        clinic=clinic,
    )
    summary = {
        f"saved_percent_{key}": round(results[key]["headline"]["saved"]["mean"], 1)
        if key in results
        else None
        for key in ("synthetic", "koniq", "ava")
    }
    for key in ("synthetic_600", "synthetic_clinic_prior"):
        if key in results:
            summary[f"saved_percent_{key}"] = round(
                results[key]["headline"]["saved"]["mean"], 1
            )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

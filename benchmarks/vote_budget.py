"""How many votes the vote budgets save, at the same closeness to the full panel.

Votes arrive at each clip in a random order. A fixed budget stops every clip after
k votes. Two budget rules, as the queue applies them:

- interval rule (annotation.agreement.settled_ranges): stop once the clip has at
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
panel is all its votes. The model prior is not measured (see the document).
Writes docs/vote_budget.md and docs/vote_budget.png (matplotlib, a test
dependency). Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/vote_budget.py [--min-votes 10] [--orders 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.agreement import settled_ranges  # noqa: E402
from annotation.budget_emd import dirichlet_prior_fit, expected_emd  # noqa: E402
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
    rng = np.random.default_rng(seed)
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
        expected[part] = expected_emd(cum, alpha=alpha, total=n[part, None])
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


def study(name: str, counts: np.ndarray, *, min_votes: int, orders: int) -> dict:
    started = time.perf_counter()
    halves = np.random.default_rng(11).permutation(len(counts))
    train, test = (
        np.sort(halves[: len(counts) // 2]),
        np.sort(halves[len(counts) // 2 :]),
    )
    alpha = dirichlet_prior_fit(counts[train])
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
        "alpha": [round(float(a), 3) for a in alpha],
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
        },
        "oracle": {
            "mean_votes": float(np.mean([r["oracle"][0] for r in per_order])),
            "saved": _spread([r["oracle"][2] for r in per_order]),
        },
        "interval": table("interval", CI_WIDTHS),
        "emd_grid": table("grid", EMD_GRID),
        "spread_cv": float(spread.std() / spread.mean()),
        "seconds": time.perf_counter() - started,
    }


def _pct(saved: dict) -> str:
    return f"{saved['mean']:.1f} % ({saved['min']:.1f} to {saved['max']:.1f})"


TARGETS = {"synthetic": 30.0, "koniq": 20.0, "ava": 20.0}


def write_docs(results: dict, min_votes: int, orders: int, seconds: float) -> None:
    docs = ROOT / "docs"
    lines = [
        "# Vote budget: votes saved at the same closeness to the full panel",
        "",
        f"Generated by `.venv/bin/python benchmarks/vote_budget.py --min-votes "
        f"{min_votes} --orders {orders}` on {datetime.now(UTC):%Y-%m-%d} "
        f"({seconds / 60:.1f} min, one process on a 2-core machine).",
        "",
        "Votes arrive at each item in a random order. **Interval rule** "
        f"(`VOTE_BUDGET_CI_WIDTH` = T): stop once the item has at least {min_votes} "
        "votes and every grade share's 95 % credible interval (Dirichlet(1, …) "
        "posterior) is at most T wide. **Expected-EMD rule** (`VOTE_BUDGET_EMD` = "
        f"T, `annotation/budget_emd.py`): stop once it has at least {min_votes} "
        "votes and the expected EMD between its votes and its full panel is below "
        "T, the remaining votes being Dirichlet-multinomial(α + counts) with α the "
        "maximum-likelihood Dirichlet-multinomial fit of the other half's items "
        "(empirical Bayes). The expectation is exact (closed form, checked against "
        "enumeration and Monte Carlo in `tests/annotation/test_vote_budget_emd.py`).",
        "",
        "Closeness is the mean EMD (modeling's definition) between the distribution "
        "when voting stopped and the item's full panel. *Fixed k* is the number of "
        "votes per item a fixed budget needs for the same mean EMD (interpolated); "
        "*saved* is 1 − rule votes / fixed k, mean (min to max) over "
        f"{orders} vote orders. The items are split in two seeded halves: the prior "
        f"and the threshold are fitted on one (the threshold so that the rule's mean "
        f"EMD there equals that of {REFERENCE_K} fixed votes), every figure below is "
        "measured on the other. Real panels: each item's target is its own full "
        "panel (KonIQ-10k 93–157 votes, AVA 81–520, AVA's ten scores merged "
        "pairwise into five ordered grades).",
        "",
        f"## Headline: the expected-EMD rule at the EMD of {REFERENCE_K} fixed votes",
        "",
        "| data | items (test half) | EMD of 20 fixed votes | fitted T | mean votes "
        "| mean EMD | fixed k, same EMD | saved | target | oracle bound |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in results.items():
        h = r["headline"]
        thresholds = ", ".join(f"{t:.5f}" for t in r["thresholds"])
        met = "met" if h["saved"]["mean"] >= TARGETS[key] else "**not met**"
        lines.append(
            f"| {r['name']} | {r['n_test']:,} | {r['reference_emd']:.5f} | "
            f"{thresholds} | {h['mean_votes']:.1f} | {h['mean_emd']:.5f} | "
            f"{h['fixed_k_same_emd']:.1f} | {_pct(h['saved'])} | "
            f"≥ {TARGETS[key]:.0f} %: {met} | {_pct(r['oracle']['saved'])} |"
        )
    lines += [
        "",
        "*Oracle bound*: an allocation that knows each item's full panel and gives "
        "it k_i ∝ √(v_i N_i / (N_i − 1)) votes (v_i = Σ_j F_j (1 − F_j) / 5 over its "
        "cumulative shares F_j) minimises the expected EMD of votes drawn without "
        "replacement, Σ_i v_i (N_i − k_i) / (k_i (N_i − 1)), for a given total; it "
        "is the best any rule can do that decides how many votes an item gets "
        "from how split its panel is (the order of the votes aside). Measured on "
        "the same vote orders at the same EMD.",
        "",
        "## What limits the savings",
        "",
        "The stored distribution stays the experts' votes (the prior decides when "
        "to stop, never the target), so an item's error after k of its N votes is "
        "the sampling error of k draws from its panel: v_i (N − k) / (k (N − 1)). "
        "What a budget can save comes only from giving fewer votes to items whose "
        "spread v_i is small, and v_i hardly varies between items: its coefficient "
        "of variation is "
        + ", ".join(f"{r['spread_cv']:.2f} ({r['name']})" for r in results.values())
        + ", and the optimal allocation saves 1 − (E√v)² / E v ≈ CV² / 4 ("
        + ", ".join(f"{100 * r['spread_cv'] ** 2 / 4:.1f} %" for r in results.values())
        + "), even knowing every full panel (the oracle column). A "
        "rule that has to estimate v_i from the votes it has seen does worse than "
        "the oracle, in part because it stops items whose first votes happen to "
        "agree, whose error is then larger than average. The targets (≥ 30 % and "
        "≥ 20 %) are "
        "therefore out of reach for a rule that spends votes by how split an "
        "item's votes are; beating the oracle would take a rule that exploits the "
        "order of the votes (stopping when the votes seen happen to match the "
        "full panel), which only a near-perfect prediction of each full panel "
        "could do. The frontier tables below show the whole trade-off.",
        "",
        "**The model prior was not measured.** Training a real clinic model inside "
        "this benchmark (video model, cross-validated, on the synthetic panel's "
        "clips) is too slow on this machine (two shared CPU cores, no GPU), and a "
        "simulated model would be a fake; the rule here and in the queue uses the "
        "empirical-Bayes prior only. A model prior changes α per clip; the oracle "
        "above already knows each item's full panel, so a model prior could only "
        "beat it through the order of the votes, as said above.",
        "",
    ]
    for r in results.values():
        low, high = r["votes_per_item"]
        alpha = ", ".join(f"{a:g}" for a in r["alpha"])
        lines += [
            f"## {r['name']} ({r['n_items']:,} items, {low}–{high} votes each)",
            "",
            f"Prior fitted on the other half: α = ({alpha}). Fixed budgets: EMD "
            + ", ".join(
                f"{r['fixed_emd'][k - 1]:.5f} at {k}"
                for k in (5, 10, 20, 30, 40)
                if k <= len(r["fixed_emd"])
            )
            + ".",
            "",
            "| rule | T | mean votes | mean EMD | fixed k, same EMD | saved |",
            "|---|---|---|---|---|---|",
        ]
        for label, rows, fmt in (
            ("interval", r["interval"], "{:.2f}"),
            ("expected EMD", r["emd_grid"], "{:.5f}"),
        ):
            for row in rows:
                k_equal, saved = row["fixed_k_same_emd"], _pct(row["saved"])
                if k_equal > len(r["fixed_emd"]) - 0.05:  # below the curve's end
                    saved = f"— (beyond {len(r['fixed_emd'])} fixed votes)"
                lines.append(
                    f"| {label} | {fmt.format(row['setting'])} | "
                    f"{row['mean_votes']:.1f} | {row['mean_emd']:.5f} | "
                    f"{k_equal:.1f} | {saved} |"
                )
        lines.append("")
    lines += [
        "![votes against EMD](vote_budget.png)",
        "",
        "## In the queue",
        "",
        "With `VOTE_BUDGET_EMD` > 0 the queue (`annotation/selectors/queue.py`) fits "
        "α on the panel's current counts (all clips with two votes or more; at "
        "least 30 of them, otherwise no clip stops) at most every 10 minutes, kept "
        "in the cache: one scan of the distribution table and Minka fixed-point "
        "steps over count histograms (20 ms for 100,000 clips in numpy). Per "
        "next-clip request the rule costs one indexed read of the candidates' "
        "counts (a handful of rows) and O(5) arithmetic per candidate; a candidate "
        "the rule has stopped is dropped and the next ones asked for (batches "
        "growing fourfold, excluding those seen), since the queue's SQL can only "
        "test per-grade count ranges. The interval rule, if also on, still "
        "applies in the SQL: a clip stops when either rule says so. Neither rule "
        "changes a distribution, a snapshot or an export.",
        "",
        "Measured once (2026-12-06, not by this script; the tests' PostgreSQL 15 on "
        "this 2-core machine, shared with other work, so ±30 %): on 3,000 clips "
        "with 5–39 votes, a request for two clips took 16.9 ms median with the "
        "rule (least certain first; 10.5 ms in the plain order), 11.7 ms with the "
        "interval rule and 9.3 ms with no budget, one queue query each; the read "
        "of the candidates' counts 0.3 ms; the prior fit 7–12 ms, once per 10 "
        "minutes. The extra time is mostly the least-certain ordering over every "
        "clip, stopped ones included, which the interval rule filters in SQL "
        "before sorting. Stopped clips that rank ahead of open ones (the plain "
        "order on the random share of requests, late in a panel) cost one more "
        "queue query per fourfold batch: with 5,000 stopped clips (ten votes) "
        "ahead of 1,000 open ones (fifteen), a plain-order request took six "
        "queries and 170 ms against 21 ms with no budget. The expectation is "
        "plain arithmetic on the five counts, so it could be tested inside the "
        "queue's SQL (`annotation/sql.py`) instead, which would remove the extra "
        "queries and this worst case. With the rule off the request is unchanged "
        "(paired, alternating with the previous code: median ratio 1.006).",
        "",
        "The queue also offers the least certain clips first (except on a random "
        "share of requests); that ordering changes which clips get votes first, "
        "not when a clip stops, and is not part of this simulation.",
        "",
    ]
    (docs / "vote_budget.md").write_text("\n".join(lines))
    _plot(results, docs / "vote_budget.png")


def _plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4))
    for ax, r in zip(np.atleast_1d(axes), results.values(), strict=True):
        ks = np.arange(1, len(r["fixed_emd"]) + 1)
        ax.plot(ks, r["fixed_emd"], label="fixed votes per item")
        for key, style, label in (
            ("interval", "s-", "interval rule (T = 0.25 … 0.5)"),
            ("emd_grid", "o-", "expected-EMD rule (T grid)"),
        ):
            ax.plot(
                [row["mean_votes"] for row in r[key]],
                [row["mean_emd"] for row in r[key]],
                style,
                label=label,
            )
        h = r["headline"]
        ax.plot(h["mean_votes"], h["mean_emd"], "k*", ms=12, label="fitted T")
        ax.set_yscale("log")
        ax.set_xlim(0, min(80, len(ks)))
        ax.set_xlabel("mean votes per item")
        ax.set_ylabel("mean EMD to the full panel")
        ax.set_title(r["name"])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-votes", type=int, default=10)
    parser.add_argument("--orders", type=int, default=5, help="random vote orders")
    args = parser.parse_args()
    started = time.perf_counter()
    data = {"synthetic": ("Simulated 40-expert panel", synthetic_counts)}
    if KONIQ.is_file():
        data["koniq"] = ("KonIQ-10k (real)", koniq_counts)
    if AVA.is_file():
        data["ava"] = ("AVA (real)", ava_counts)
    results = {}
    for key, (name, load) in data.items():
        results[key] = study(name, load(), min_votes=args.min_votes, orders=args.orders)
        r, h = results[key], results[key]["headline"]
        print(
            f"{name}: EMD of {REFERENCE_K} fixed votes {r['reference_emd']:.5f}; "
            f"expected-EMD rule {h['mean_votes']:.1f} votes, EMD "
            f"{h['mean_emd']:.5f}, fixed k {h['fixed_k_same_emd']:.1f}: "
            f"{_pct(h['saved'])} saved (oracle bound {_pct(r['oracle']['saved'])}); "
            f"{r['seconds']:.0f} s",
            flush=True,
        )
    write_docs(results, args.min_votes, args.orders, time.perf_counter() - started)
    summary = {
        f"saved_percent_{key}": round(results[key]["headline"]["saved"]["mean"], 1)
        if key in results
        else None
        for key in ("synthetic", "koniq", "ava")
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

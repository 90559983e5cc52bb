"""How many votes the vote budget saves, at the same closeness to the full panel.

Votes arrive at each clip in a random order. A fixed budget stops every clip after
k votes; the vote budget (annotation.agreement.settled_ranges, as the queue uses it)
stops a clip once it has at least ``--min-votes`` votes and every grade share's
95 % credible interval is at most T wide. Closeness is the EMD (modeling's
definition) between the distribution when voting stopped and the full panel's. For
each T the budget's mean votes are compared with the fixed k that reaches the same
mean EMD (interpolated): the share of votes saved. Five random vote orders give
the spread.

Data: a simulated 40-expert panel on 2,000 synthetic clips
(modeling.synthetic.simulate_panel, synthetic) and the real KonIQ-10k vote
histograms in ../shared/data/real/koniq_vote_histograms (8,058 images, 93-157
votes each; the full panel is all of an image's votes). Writes
docs/vote_budget.md and docs/vote_budget.png (matplotlib, a test dependency).
Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/vote_budget.py [--min-votes 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.agreement import settled_ranges  # noqa: E402
from modeling.synthetic import patient_qualities, simulate_panel  # noqa: E402

KONIQ = ROOT.parent / "shared/data/real/koniq_vote_histograms"
THRESHOLDS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
HEADLINE = 0.35


def emd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((np.cumsum(p, -1) - np.cumsum(q, -1)) ** 2).mean(-1)


def koniq_counts() -> np.ndarray:
    path = KONIQ / "koniq10k_distributions_training_validation.csv"
    data = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=range(1, 7))
    return np.rint(data[:, :5] * data[:, 5:6]).astype(np.int64)


def synthetic_counts(n_clips: int = 2000, n_experts: int = 40) -> np.ndarray:
    rng = np.random.default_rng(7)
    qualities, _ = patient_qualities(n_clips=n_clips, n_patients=200, rng=rng)
    return simulate_panel(qualities=qualities, n_experts=n_experts, rng=rng).counts


def vote_sequences(counts: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """(clips × max votes × 5) cumulative counts in a random vote order, and N."""
    n = counts.sum(axis=1)
    longest = int(n.max())
    order = np.full((len(counts), longest), -1)
    for i, row in enumerate(counts):
        votes = np.repeat(np.arange(5), row)
        order[i, : len(votes)] = rng.permutation(votes)
    onehot = (order[..., None] == np.arange(5)).astype(np.int64)
    return np.cumsum(onehot, axis=1), n


def simulate(counts: np.ndarray, *, min_votes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    cum, n = vote_sequences(counts, rng)
    full = counts / n[:, None]
    clips = np.arange(len(counts))
    ks = np.arange(1, int(n.min()) + 1)
    fixed = np.array([emd(cum[:, k - 1] / k, full).mean() for k in ks])
    rows = []
    for threshold in THRESHOLDS:
        ranges = settled_ranges(
            ci_width=threshold, min_votes=min_votes, max_votes=int(n.max())
        )
        lo = np.full(int(n.max()) + 1, 0)
        hi = np.full(int(n.max()) + 1, 10**9)  # below the minimum: never settled
        for votes, low, high in ranges:
            lo[votes], hi[votes] = low, high
        k_all = np.arange(1, cum.shape[1] + 1)
        wide = (cum >= lo[k_all][None, :, None]) & (cum <= hi[k_all][None, :, None])
        settled = ~wide.any(axis=2) & (k_all[None, :] <= n[:, None])
        # stop at the first settled k, or when the clip's votes run out
        stop = np.where(settled.any(axis=1), settled.argmax(axis=1) + 1, n)
        at_stop = cum[clips, stop - 1] / stop[:, None]
        budget_emd = float(emd(at_stop, full).mean())
        budget_votes = float(stop.mean())
        # the fixed k with the same mean EMD (fixed EMD decreases with k)
        if budget_emd >= fixed[0]:
            k_equal = 1.0
        elif budget_emd <= fixed[-1]:
            k_equal = float(ks[-1])
        else:
            k_equal = float(np.interp(-budget_emd, -fixed, ks))
        rows.append(
            {
                "ci_width": threshold,
                "mean_votes": budget_votes,
                "mean_emd": budget_emd,
                "fixed_k_same_emd": k_equal,
                "saved_percent": 100.0 * (1.0 - budget_votes / k_equal),
            }
        )
    return {"fixed_k": ks.tolist(), "fixed_emd": fixed.tolist(), "budget": rows}


def summarise(name: str, counts: np.ndarray, min_votes: int) -> dict:
    runs = [simulate(counts, min_votes=min_votes, seed=s) for s in range(5)]
    table = []
    for i, threshold in enumerate(THRESHOLDS):
        saved = [r["budget"][i]["saved_percent"] for r in runs]
        votes = [r["budget"][i]["mean_votes"] for r in runs]
        emds = [r["budget"][i]["mean_emd"] for r in runs]
        k_equal = [r["budget"][i]["fixed_k_same_emd"] for r in runs]
        table.append(
            {
                "ci_width": threshold,
                "mean_votes": float(np.mean(votes)),
                "mean_emd": float(np.mean(emds)),
                "fixed_k_same_emd": float(np.mean(k_equal)),
                "saved_percent": float(np.mean(saved)),
                "saved_min": float(np.min(saved)),
                "saved_max": float(np.max(saved)),
            }
        )
    return {
        "name": name,
        "n_clips": int(len(counts)),
        "votes_per_clip": [int(counts.sum(1).min()), int(counts.sum(1).max())],
        "fixed_k": runs[0]["fixed_k"],
        "fixed_emd": np.mean([r["fixed_emd"] for r in runs], axis=0).tolist(),
        "table": table,
    }


def write_docs(results: list[dict], min_votes: int) -> None:
    docs = ROOT / "docs"
    lines = [
        "# Vote budget: votes saved at the same closeness to the full panel",
        "",
        f"Generated by `benchmarks/vote_budget.py --min-votes {min_votes}` on "
        f"{datetime.now(UTC):%Y-%m-%d}. A clip stops collecting votes once it has "
        f"at least {min_votes} votes and every grade share's 95 % credible interval "
        "(Dirichlet(1, …) posterior) is at most T wide. Votes arrive in random "
        "order; closeness is the mean EMD (modeling's definition) between the "
        "distribution when voting stopped and the full panel's. *Fixed k* is the "
        "number of votes per clip a fixed budget needs for the same mean EMD; "
        "*saved* is 1 − budget votes / fixed k, mean (min–max) over five vote "
        "orders.",
        "",
    ]
    for result in results:
        low, high = result["votes_per_clip"]
        lines += [
            f"## {result['name']} ({result['n_clips']:,} clips, {low}–{high} votes "
            "each)",
            "",
            "| T | mean votes | mean EMD | fixed k, same EMD | saved |",
            "|---|---|---|---|---|",
        ]
        for row in result["table"]:
            lines.append(
                f"| {row['ci_width']:.2f} | {row['mean_votes']:.1f} | "
                f"{row['mean_emd']:.5f} | {row['fixed_k_same_emd']:.1f} | "
                f"{row['saved_percent']:.1f} % ({row['saved_min']:.1f}–"
                f"{row['saved_max']:.1f}) |"
            )
        lines.append("")
    lines += [
        "![votes against EMD](vote_budget.png)",
        "",
        "The queue also offers the least certain clips first (except on a random "
        "share of requests); that ordering changes which clips get votes first, "
        "not when a clip stops, and is not part of this simulation.",
        "",
    ]
    (docs / "vote_budget.md").write_text("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4))
    for ax, result in zip(np.atleast_1d(axes), results):
        ax.plot(result["fixed_k"], result["fixed_emd"], label="fixed votes per clip")
        ax.plot(
            [r["mean_votes"] for r in result["table"]],
            [r["mean_emd"] for r in result["table"]],
            "o-",
            label="vote budget (T = 0.25 … 0.5)",
        )
        ax.set_yscale("log")
        ax.set_xlabel("mean votes per clip")
        ax.set_ylabel("mean EMD to the full panel")
        ax.set_title(result["name"])
        ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "vote_budget.png", dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--min-votes", type=int, default=10)
    args = parser.parse_args()
    results = [
        summarise(
            "Simulated 40-expert panel (synthetic)", synthetic_counts(), args.min_votes
        )
    ]
    if KONIQ.is_dir():
        results.append(
            summarise(
                "KonIQ-10k vote histograms (real)", koniq_counts(), args.min_votes
            )
        )
    write_docs(results, args.min_votes)
    summary = {}
    for key, result in zip(("synthetic", "koniq"), results):
        row = next(r for r in result["table"] if r["ci_width"] == HEADLINE)
        print(
            f"{result['name']}: T = {HEADLINE}: {row['mean_votes']:.1f} votes per "
            f"clip, EMD {row['mean_emd']:.5f}, a fixed budget needs "
            f"{row['fixed_k_same_emd']:.1f}: {row['saved_percent']:.1f} % saved"
        )
        summary[f"{key}_saved_percent_at_ci_{HEADLINE}"] = round(
            row["saved_percent"], 1
        )
        summary[f"{key}_mean_votes_at_ci_{HEADLINE}"] = round(row["mean_votes"], 1)
        summary[f"{key}_fixed_k_same_emd"] = round(row["fixed_k_same_emd"], 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

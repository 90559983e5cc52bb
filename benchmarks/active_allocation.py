"""Active vote allocation, simulated: votes saved at the same closeness to the full
panel, with and without the model's help.

A simulated 40-expert panel grades 2,000 synthetic clips (modeling.synthetic,
synthetic). Every clip starts with ``--start`` votes; then votes are handed out in
rounds of ``--round`` (one vote each to the clips a policy ranks first; a random
share of every round, ``--random-share``, goes to random clips, as the queue keeps
it), until every clip has all 40. Policies:

- ``least loaded``: fewest votes first (the queue without the vote budget);
- ``least certain``: the largest summed posterior variance of the grade shares
  first (the queue with the vote budget on, VOTE_BUDGET_MODEL_PRIORITY=off);
- ``model disagreement``: the largest EMD between the model's prediction and the
  votes so far first (VOTE_BUDGET_MODEL_PRIORITY=disagreement);
- ``model entropy``: the model's least certain predictions first (=entropy).

The model is simulated too: the distribution of an independent simulated panel
(other experts, other clip ambiguity) on the same latent qualities, mixed 80/20
with the overall mean distribution, so it knows a clip's quality but not this
panel's quirks; its EMD to the full panel is printed. Closeness is the mean EMD
(modeling's definition) between each clip's votes so far and its full panel; for
target EMDs reached by ``least loaded`` at 10, 15 and 20 votes per clip, each
policy's votes per clip at the same EMD give the share of votes saved. Three seeds
give the spread. Writes docs/active_allocation.md and .png (matplotlib, a test
dependency). Not a test; the last line is one JSON object.

    .venv/bin/python benchmarks/active_allocation.py
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

from modeling.synthetic import patient_qualities, simulate_panel  # noqa: E402

POLICIES = ("least loaded", "least certain", "model disagreement", "model entropy")
TARGET_VOTES = (10, 15, 20)


def emd(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return ((np.cumsum(p, -1) - np.cumsum(q, -1)) ** 2).mean(-1)


def world(n_clips: int, seed: int):
    rng = np.random.default_rng(seed)
    qualities, _ = patient_qualities(n_clips=n_clips, n_patients=200, rng=rng)
    counts = simulate_panel(qualities=qualities, n_experts=40, rng=rng).counts
    other = simulate_panel(qualities=qualities, n_experts=40, rng=rng).counts
    own = other / other.sum(axis=1, keepdims=True)
    model = 0.8 * own + 0.2 * own.mean(axis=0, keepdims=True)
    order = np.stack([rng.permutation(np.repeat(np.arange(5), row)) for row in counts])
    cum = np.cumsum(order[..., None] == np.arange(5), axis=1)  # clips x 40 x 5
    return counts, model, cum, rng


def priority(policy: str, shares, k, model) -> np.ndarray:
    if policy == "least loaded":
        return -k.astype(float)
    counts = shares * k[:, None]
    variance = ((1 + counts) * (4 + k[:, None] - counts)).sum(axis=1) / (
        (5 + k) ** 2 * (6 + k)
    )
    if policy == "least certain":
        return variance
    if policy == "model disagreement":
        return emd(model, shares) + 1e-6 * variance
    clipped = np.clip(model, 1e-12, 1)
    return -(model * np.log(clipped)).sum(axis=1) + 1e-6 * variance


def run(policy: str, counts, model, cum, rng, *, start, per_round, random_share):
    n_clips, n_max = len(counts), counts.sum(axis=1)
    full = counts / n_max[:, None]
    k = np.full(n_clips, start)
    curve = []
    while True:
        shares = cum[np.arange(n_clips), k - 1] / k[:, None]
        curve.append((float(k.mean()), float(emd(shares, full).mean())))
        open_ = np.flatnonzero(k < n_max)
        if not len(open_):
            return curve
        n_random = int(round(per_round * random_share))
        picks = rng.choice(open_, size=min(n_random, len(open_)), replace=False)
        rest = np.setdiff1d(open_, picks)
        score = priority(policy, shares[rest], k[rest], model[rest])
        best = rest[np.argsort(-score, kind="stable")[: per_round - len(picks)]]
        k[np.concatenate([picks, best])] += 1


def votes_at(curve, target_emd: float) -> float:
    votes, emds = np.array(curve).T
    below = np.flatnonzero(emds <= target_emd)
    if not len(below):
        return float("nan")
    i = below[0]
    if i == 0:
        return float(votes[0])
    return float(np.interp(-target_emd, [-emds[i - 1], -emds[i]], votes[i - 1 : i + 1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--start", type=int, default=5)
    parser.add_argument("--round", type=int, default=100)
    parser.add_argument("--random-share", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    saved = {p: {t: [] for t in TARGET_VOTES} for p in POLICIES}
    curves, model_emd = {}, []
    for seed in range(args.seeds):
        counts, model, cum, _ = world(args.clips, seed)
        full = counts / counts.sum(axis=1, keepdims=True)
        model_emd.append(float(emd(model, full).mean()))
        results = {}
        for policy in POLICIES:
            rng = np.random.default_rng([seed, POLICIES.index(policy)])
            results[policy] = run(
                policy,
                counts,
                model,
                cum,
                rng,
                start=args.start,
                per_round=args.round,
                random_share=args.random_share,
            )
        if seed == 0:
            curves = results
        base = results["least loaded"]
        for target in TARGET_VOTES:
            target_emd = dict(base)[min(dict(base), key=lambda v: abs(v - target))]
            base_votes = votes_at(base, target_emd)
            for policy in POLICIES:
                got = votes_at(results[policy], target_emd)
                saved[policy][target].append(100 * (1 - got / base_votes))
    summary = {
        p: {
            t: {
                "mean": float(np.mean(v)),
                "min": float(np.min(v)),
                "max": float(np.max(v)),
            }
            for t, v in by.items()
        }
        for p, by in saved.items()
    }
    write_docs(summary, curves, args, float(np.mean(model_emd)))
    print(
        json.dumps(
            {
                "clips": args.clips,
                "model_emd_to_full_panel": round(float(np.mean(model_emd)), 5),
                **{
                    f"saved_percent_{p.replace(' ', '_')}_at_{t}_votes": round(
                        summary[p][t]["mean"], 1
                    )
                    for p in POLICIES
                    for t in TARGET_VOTES
                },
            }
        )
    )
    return 0


def write_docs(summary, curves, args, model_emd: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = ROOT / "docs"
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for policy, curve in curves.items():
        votes, emds = np.array(curve).T
        ax.plot(votes, emds, label=policy)
    ax.set_xlabel("mean votes per clip")
    ax.set_ylabel("mean EMD to the full 40-vote panel")
    ax.set_yscale("log")
    ax.set_title("Active vote allocation (simulated panel and model, synthetic)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(docs / "active_allocation.png", dpi=120)
    lines = [
        "# Active vote allocation: votes saved with and without the model",
        "",
        f"Generated by `benchmarks/active_allocation.py` on "
        f"{datetime.now(UTC):%Y-%m-%d}. **Synthetic**: a simulated 40-expert panel "
        f"on {args.clips:,} synthetic clips and a *simulated* model (an independent "
        "simulated panel on the same latent qualities, mixed 80/20 with the mean "
        f"distribution; its mean EMD to the full panel is {model_emd:.4f}). Every "
        f"clip starts with {args.start} votes; votes then go out in rounds of "
        f"{args.round}, {args.random_share:.0%} of each round to random clips. "
        "*Saved* is 1 − (votes per clip the policy needs) / (votes per clip "
        "*least loaded* needs) for the same mean EMD to the full panel, mean "
        f"(min–max) over {args.seeds} seeds.",
        "",
        "| policy | "
        + " | ".join(f"saved at the EMD of {t} votes/clip" for t in TARGET_VOTES)
        + " |",
        "|---|" + "---|" * len(TARGET_VOTES),
    ]
    for policy, by in summary.items():
        cells = [
            f"{by[t]['mean']:.1f} % ({by[t]['min']:.1f}–{by[t]['max']:.1f})"
            for t in TARGET_VOTES
        ]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![mean EMD against votes](active_allocation.png)",
        "",
        "A real model's figures differ: its errors are not this simulation's. The "
        "queue applies the chosen policy only with the vote budget on "
        "(VOTE_BUDGET_CI_WIDTH > 0) and outside its random share.",
        "",
    ]
    (docs / "active_allocation.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

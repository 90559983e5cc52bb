"""benchmarks/vote_budget.py with a model prior: one Dirichlet prior per item
(alpha_i = s p_i, p_i a model's out-of-fold prediction), its strength s fitted on
the fit half only, and the clinic runs read from a model comparison's folder.
Tiny inputs built here; nothing reads var/."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from annotation.budget_emd import expected_emd

REPO = Path(__file__).resolve().parents[2]


def _benchmark():
    if "vote_budget" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "vote_budget", REPO / "benchmarks" / "vote_budget.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["vote_budget"] = module
        spec.loader.exec_module(module)
    return sys.modules["vote_budget"]


ALPHAS = np.array(
    [[4.0, 2.0, 1.0, 0.5, 0.5], [0.2, 0.3, 6.0, 0.3, 0.2], [0.1, 0.1, 0.1, 1.0, 9.0]]
)


def test_each_items_own_alpha_gives_its_expected_emd_after_k_votes(monkeypatch):
    vb = _benchmark()
    monkeypatch.setattr(vb, "CHUNK", 2)  # the third item falls in a second chunk
    # all of an item's votes in one grade: after k votes its counts are k there,
    # whatever the order
    counts = np.array([[6, 0, 0, 0, 0], [0, 0, 6, 0, 0], [0, 0, 0, 0, 6]])
    paths = vb.vote_paths(counts, alpha=ALPHAS, min_votes=2, seed=0)
    for i, grade in enumerate((0, 2, 4)):
        for k in range(1, 6):
            seen = np.zeros(5)
            seen[grade] = k
            alone = expected_emd(seen, alpha=ALPHAS[i], total=6)
            assert paths.expected[i, k - 1] == np.float32(alone)
    assert paths.expected[1, 4] != np.float32(
        expected_emd([0, 0, 5, 0, 0], alpha=ALPHAS[0], total=6)
    )


def test_per_item_alpha_matches_each_item_run_with_that_alpha_for_all_items(
    monkeypatch,
):
    vb = _benchmark()
    monkeypatch.setattr(vb, "CHUNK", 2)
    counts = np.array([[3, 4, 2, 1, 0], [0, 2, 5, 2, 1], [1, 0, 2, 3, 4]])
    mixed = vb.vote_paths(counts, alpha=ALPHAS, min_votes=2, seed=3)
    for i, alpha in enumerate(ALPHAS):
        shared = vb.vote_paths(counts, alpha=alpha, min_votes=2, seed=3)
        np.testing.assert_array_equal(mixed.expected[i], shared.expected[i])
        np.testing.assert_array_equal(mixed.distance, shared.distance)


def _panel(n_items: int, strength: float, seed: int, votes: int = 12):
    rng = np.random.default_rng(seed)
    prediction = rng.dirichlet(np.ones(5), size=n_items)
    shares = np.array([rng.dirichlet(strength * p) for p in prediction])
    counts = np.array([rng.multinomial(votes, q) for q in shares])
    return counts, prediction


def test_strength_fit_finds_the_strength_the_votes_were_drawn_with():
    vb = _benchmark()
    counts, prediction = _panel(2000, strength=5.0, seed=1)
    assert 4.0 < vb.strength_fit(counts, prediction) < 6.2


def test_the_strength_is_fitted_on_the_fit_half_only():
    vb = _benchmark()
    counts, prediction = _panel(40, strength=5.0, seed=2, votes=24)  # > REFERENCE_K
    fit, test = vb.halves(len(counts))
    changed = counts.copy()
    changed[test] = np.roll(counts[test], 2, axis=1)

    def strength(votes):
        return vb.study("t", votes, min_votes=4, orders=1, prediction=prediction)[
            "strength"
        ]

    assert strength(changed) == strength(counts)
    changed[fit] = np.roll(counts[fit], 2, axis=1)
    assert strength(changed) != strength(counts)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_clinic_panel_averages_the_finished_clinic_runs_and_skips_the_rest(
    tmp_path,
):
    vb = _benchmark()
    votes = {"c0": [3, 1, 0, 0, 0], "c1": [0, 0, 1, 2, 1]}
    _write_jsonl(
        tmp_path / "synthetic_2_seed5" / "manifest.jsonl",
        [{"clip_id": c, "votes": v} for c, v in votes.items()],
    )
    predictions = {
        6: {"c1": [0, 0, 0, 0.5, 0.5], "c0": [1, 0, 0, 0, 0]},
        5: {"c0": [0.5, 0.5, 0, 0, 0], "c1": [0, 0, 0.5, 0.5, 0]},
        7: {"c0": [0, 0, 0, 0, 1], "c1": [0, 0, 0, 0, 1]},  # a control's
    }
    entries = []
    for seed, control, name in (
        (6, "none", "clinic__emd"),
        (5, "none", "clinic__emd"),
        (7, "video_shuffled", "clinic_video_shuffled__emd"),
        (8, "none", "clinic__emd"),  # listed but not finished: no predictions
    ):
        run = f"out/runs/seed_{seed}/{name}"
        entries.append(
            {
                "model": "clinic",
                "loss": "emd",
                "control": control,
                "seed": seed,
                "dir": run,
            }
        )
        if seed in predictions:
            _write_jsonl(
                tmp_path / "runs" / f"seed_{seed}" / name / "oof_predictions.jsonl",
                [{"clip_id": c, "pred": p} for c, p in predictions[seed].items()],
            )
    (tmp_path / "runs" / "runs.json").write_text(json.dumps(entries))
    panel = vb.clinic_panel(tmp_path)
    assert panel.seeds == [5, 6]
    np.testing.assert_array_equal(panel.counts, [votes["c0"], votes["c1"]])
    np.testing.assert_allclose(
        panel.prediction, [[0.75, 0.25, 0, 0, 0], [0, 0, 0.25, 0.5, 0.25]]
    )

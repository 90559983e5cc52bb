"""The simulated expert panel and the synthetic manifest."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from modeling.data import clipset_load
from modeling.manifest import manifest_read
from modeling.synthetic import (
    clip_kinematics,
    simulate_panel,
    votes_to_counts,
    write_synthetic_manifest,
)


def _mean_grade(counts: np.ndarray) -> np.ndarray:
    return (counts * np.arange(5)).sum(axis=1) / counts.sum(axis=1)


def test_higher_quality_gets_better_grades_over_200_clips():
    rng = np.random.default_rng(0)
    qualities = rng.uniform(0, 1, 200)
    panel = simulate_panel(qualities=qualities, n_experts=40, rng=rng)
    rho = spearmanr(qualities, _mean_grade(panel.counts)).statistic
    assert rho < -0.8


def test_every_expert_grades_ordinally():
    rng = np.random.default_rng(1)
    qualities = np.linspace(0, 1, 100)
    panel = simulate_panel(qualities=qualities, n_experts=40, rng=rng)
    for e in range(40):
        assert spearmanr(qualities, panel.votes[:, e]).statistic < -0.7
    best = simulate_panel(qualities=np.ones(50), rng=rng).counts.sum(axis=0)
    worst = simulate_panel(qualities=np.zeros(50), rng=rng).counts.sum(axis=0)
    assert best.argmax() == 0 and worst.argmax() == 4


def test_harsher_experts_give_worse_grades():
    rng = np.random.default_rng(2)
    panel = simulate_panel(qualities=rng.uniform(0.2, 0.8, 300), n_experts=40, rng=rng)
    expert_mean = panel.votes.mean(axis=0)
    assert np.corrcoef(panel.severity, expert_mean)[0, 1] > 0.8
    assert np.all(panel.noise > 0)


def test_counts_sum_to_the_number_of_votes():
    rng = np.random.default_rng(3)
    full = simulate_panel(qualities=rng.uniform(0, 1, 30), n_experts=40, rng=rng)
    assert full.counts.shape == (30, 5)
    assert np.all(full.counts.sum(axis=1) == 40)
    partial = simulate_panel(
        qualities=rng.uniform(0, 1, 30), n_experts=40, rng=rng, coverage=0.5
    )
    assert np.all(partial.counts.sum(axis=1) == (partial.votes >= 0).sum(axis=1))
    assert 0 < (partial.votes == -1).mean() < 1


def test_votes_to_counts_rejects_impossible_grades():
    with pytest.raises(ValueError, match="0..4"):
        votes_to_counts(np.array([[0, 5]]))


def test_panel_rejects_qualities_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        simulate_panel(qualities=np.array([0.5, 1.2]), rng=np.random.default_rng(0))


def test_clip_kinematics_of_a_straight_and_a_zigzag_track():
    straight = np.stack([np.arange(9) * 2.0, np.zeros(9)], axis=1)
    kin = clip_kinematics(straight, fps=10.0)
    assert {k: kin[k] for k in ("vcl", "vsl", "lin")} == pytest.approx(
        {"vcl": 20.0, "vsl": 20.0, "lin": 1.0}
    )
    # the full WHO set, as real clips carry it
    assert {"vap", "str", "wob", "alh", "bcf", "motility_class"} <= set(kin)
    assert kin["unit"] == "px/s"
    zigzag = np.array([[x, x % 2] for x in range(9)], float)
    kin = clip_kinematics(zigzag, fps=1.0)
    assert kin["vcl"] == pytest.approx(np.sqrt(2))
    assert kin["vsl"] == pytest.approx(1.0)
    assert kin["lin"] == pytest.approx(1 / np.sqrt(2))


def test_synthetic_manifest_is_readable_and_deterministic(tmp_path):
    kwargs = dict(n_clips=4, n_patients=2, seed=11, n_frames=4, size=32, n_experts=7)
    out = write_synthetic_manifest(tmp_path / "a", **kwargs)
    records = manifest_read(out)
    assert len(records) == 4
    assert all(sum(r.votes) == 7 and r.synthetic for r in records)
    assert {r.patient_id for r in records} <= {"SYN-P01", "SYN-P02"}
    rows = [
        json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()
    ]
    assert all(0 <= row["latent_quality"] <= 1 for row in rows)
    assert all({"vcl", "vsl", "lin"} <= set(row["kinematics"]) for row in rows)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["synthetic"] is True and meta["n_clips"] == 4
    clips = clipset_load(out, pin_memory=False)
    assert tuple(clips.videos.shape) == (4, 4, 32, 32, 3)

    again = write_synthetic_manifest(tmp_path / "b", **kwargs)
    rows_again = [
        json.loads(line) for line in (again / "manifest.jsonl").read_text().splitlines()
    ]
    assert [r["votes"] for r in rows] == [r["votes"] for r in rows_again]
    np.testing.assert_array_equal(
        np.load(out / "clips" / "syn00002.npy"),
        np.load(again / "clips" / "syn00002.npy"),
    )

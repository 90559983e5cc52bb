"""A simulated expert panel and synthetic datasets with known latent quality (pure).

Panel model (cumulative probit). Each clip i has a latent quality q_i in [0, 1]
(1 = best). Expert e perceives the score

    y_ie = 4 (1 - q_i) + a_i + b_e + s_e * eps_ie,   eps_ie ~ N(0, 1)

on a 0..4 scale (0 = A, 4 = E), where a_i is a small clip ambiguity shared by all
experts, b_e the expert's severity bias (positive = harsher) and s_e the expert's
noise level. The grade is the number of thresholds (0.5, 1.5, 2.5, 3.5) that
y_ie exceeds, so good quality gives mostly A and every expert stays ordinal.

``write_synthetic_manifest`` renders clips with :func:`video.synthetic.
render_clip` (motion and shape both depend on the latent quality) and writes them
through :mod:`modeling.manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modeling.grades import N_GRADES
from modeling.manifest import manifest_write
from video.kinematics import kinematics_compute
from video.synthetic import render_clip

THRESHOLDS = (0.5, 1.5, 2.5, 3.5)
NOT_VOTED = -1


@dataclass
class Panel:
    """Votes of a simulated panel.

    votes: int8 (n_clips, n_experts), 0..4 for A..E, -1 where the expert did not
    vote; severity and noise: (n_experts,); ambiguity: (n_clips,).
    """

    votes: np.ndarray
    severity: np.ndarray
    noise: np.ndarray
    ambiguity: np.ndarray
    thresholds: tuple[float, ...] = THRESHOLDS

    @property
    def counts(self) -> np.ndarray:
        return votes_to_counts(self.votes)


def quality_to_score(quality: np.ndarray) -> np.ndarray:
    """Latent quality 1..0 onto the 0 (A) .. 4 (E) score scale."""
    return 4.0 * (1.0 - np.asarray(quality, dtype=float))


def simulate_panel(
    *,
    qualities: np.ndarray,
    n_experts: int = 40,
    rng: np.random.Generator,
    severity_sd: float = 0.35,
    noise_median: float = 0.55,
    noise_spread: float = 0.35,
    ambiguity_sd: float = 0.2,
    coverage: float = 1.0,
) -> Panel:
    """Votes of ``n_experts`` simulated experts on clips of latent ``qualities``.

    ``coverage`` is the chance that an expert voted on a clip (1.0 = everyone voted
    on everything); missing votes are -1.
    """
    q = np.asarray(qualities, dtype=float)
    if q.ndim != 1:
        raise ValueError(f"qualities must be 1-D (n_clips,), got shape {q.shape}")
    if np.any((q < 0) | (q > 1)) or not np.all(np.isfinite(q)):
        raise ValueError("qualities must lie in [0, 1]")
    if n_experts < 1:
        raise ValueError(f"n_experts must be at least 1, got {n_experts}")
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must lie in (0, 1], got {coverage}")
    severity = rng.normal(0.0, severity_sd, n_experts)
    noise = noise_median * np.exp(rng.normal(0.0, noise_spread, n_experts))
    ambiguity = rng.normal(0.0, ambiguity_sd, len(q))
    perceived = (
        quality_to_score(q)[:, None]
        + ambiguity[:, None]
        + severity[None, :]
        + noise[None, :] * rng.standard_normal((len(q), n_experts))
    )
    votes = np.searchsorted(np.asarray(THRESHOLDS), perceived).astype(np.int8)
    if coverage < 1.0:
        votes[rng.random(votes.shape) >= coverage] = NOT_VOTED
    return Panel(votes=votes, severity=severity, noise=noise, ambiguity=ambiguity)


def votes_to_counts(votes: np.ndarray) -> np.ndarray:
    """(n_clips, n_experts) votes with -1 for missing -> (n_clips, 5) int counts."""
    votes = np.asarray(votes)
    if votes.ndim != 2:
        raise ValueError(f"votes must be 2-D (n_clips, n_experts), got {votes.shape}")
    if np.any((votes < NOT_VOTED) | (votes >= N_GRADES)):
        raise ValueError("votes must be -1 (not voted) or 0..4 (A..E)")
    return np.stack([(votes == g).sum(axis=1) for g in range(N_GRADES)], axis=1)


def counts_to_distribution(counts: np.ndarray) -> np.ndarray:
    """Vote counts (N, 5) -> normalised distributions (rows of zeros stay zero)."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def patient_qualities(
    *, n_clips: int, n_patients: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Latent qualities clustered by patient: (qualities, patient index per clip).

    A patient has a mean quality; their clips scatter around it, so clips of one
    patient are alike (which is why cross-validation must group by patient).
    """
    if n_patients < 1 or n_clips < 1:
        raise ValueError("need at least one clip and one patient")
    patient_mean = rng.beta(1.6, 1.6, n_patients)
    patients = np.arange(n_clips) % n_patients
    rng.shuffle(patients)
    mean = np.clip(patient_mean[patients], 0.03, 0.97)
    concentration = 5.0
    qualities = rng.beta(mean * concentration, (1.0 - mean) * concentration)
    return qualities, patients


def clip_kinematics(track: np.ndarray, *, fps: float) -> dict:
    """The full WHO kinematics of a (T, 2) track (``video.kinematics``), as real
    clips carry them (speeds in px/s: synthetic clips have no scale)."""
    return kinematics_compute(track=np.asarray(track, dtype=float), fps=fps).to_dict()


def write_synthetic_manifest(
    out_dir: str | Path,
    *,
    n_clips: int,
    n_patients: int,
    seed: int,
    n_frames: int = 16,
    size: int = 150,
    n_experts: int = 40,
) -> Path:
    """Render ``n_clips`` synthetic clips with a simulated panel; returns the directory.

    Writes ``clips/<clip_id>.npy`` (uint8 T x H x W x 3), ``manifest.jsonl`` (one
    row per clip with the vote counts, speed in px/s, kinematics, the array path,
    ``"synthetic": true`` and the ground truth ``"latent_quality"``) and
    ``dataset.json``. The same seed gives the same dataset.
    """
    if n_clips < 1 or n_patients < 1 or n_experts < 1:
        raise ValueError("n_clips, n_patients and n_experts must be at least 1")
    rng = np.random.default_rng(seed)
    qualities, patients = patient_qualities(
        n_clips=n_clips, n_patients=n_patients, rng=rng
    )
    panel = simulate_panel(qualities=qualities, n_experts=n_experts, rng=rng)
    counts = panel.counts
    fps = 15.0

    def rows():
        for i in range(n_clips):
            clip = render_clip(
                quality=float(qualities[i]),
                rng=rng,
                n_frames=n_frames,
                size=size,
                fps=fps,
            )
            yield {
                "clip_id": f"syn{i:05d}",
                "patient_id": f"SYN-P{patients[i] + 1:02d}",
                "votes": [int(c) for c in counts[i]],
                "speed": round(clip.speed_px_s, 4),
                "kinematics": clip_kinematics(clip.field_track, fps=fps),
                "frames": clip.frames,
                "synthetic": True,
                "latent_quality": round(float(qualities[i]), 6),
                "shape_defect": round(clip.shape_defect, 6),
            }

    meta = {
        "synthetic": True,
        "source": "modeling.synthetic.write_synthetic_manifest",
        "seed": seed,
        "n_patients": n_patients,
        "n_experts": n_experts,
        "n_frames": n_frames,
        "size": size,
        "fps": fps,
        "speed_unit": "px/s",
    }
    return manifest_write(out_dir, rows=rows(), meta=meta)

"""The demo's synthetic recordings, rendered, stored as uploads and preprocessed
synchronously (``manage.py demo_recordings``); each clip gets the ground-truth
quality of the cell it follows."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from annotation import services
from annotation.demo import demo_recording_store
from annotation.models import Recording
from video.synthetic import render_recording
from workers.preprocess import recording_preprocess_run

DEMO_PATIENT = "SYN-REC"
DEMO_PREFIX = "demo-field-recording-"


def demo_recordings_process(
    *,
    n_recordings: int = 1,
    seed: int = 0,
    n_sperm: int = 50,
    n_frames: int = 48,
    width: int = 1392,
    height: int = 976,
    fps: float = 15.0,
    max_clips: int = 10,
    log: Callable[[str], None] = lambda _: None,
) -> list[Recording]:
    """Render synthetic full-field recordings, store them as uploads, preprocess them.

    Each clip gets the ground-truth quality of the cell it
    follows as ``latent_quality``. Idempotent: a recording already done is kept; one
    that failed or was never processed is run again. Other synthetic recordings
    waiting in status "uploaded" are preprocessed too.
    """
    patient = services.patient_get_or_create(code=DEMO_PATIENT, is_synthetic=True)
    recordings = []
    for index in range(n_recordings):
        name = f"{DEMO_PREFIX}{seed}-{index + 1:02d}.mp4"
        rng = np.random.default_rng([seed, 9_100_003, index])
        truth = render_recording(
            n_sperm=n_sperm,
            n_frames=n_frames,
            width=width,
            height=height,
            fps=fps,
            rng=rng,
            focus_drift=0.3,
        )
        recording = Recording.objects.filter(
            original_name=name, is_synthetic=True
        ).first()
        if recording is None:
            log(f"Rendering {name} ({n_sperm} sperm, {n_frames} frames)...")
            recording = demo_recording_store(
                name=name,
                patient=patient,
                rendered=truth,
                fps=fps,
                max_clips=max_clips,
                notes="Synthetic full-field recording (demo).",
            )
        if recording.status != Recording.Status.DONE or not recording.clips.exists():
            log(f"Preprocessing recording #{recording.pk} ({name})...")

            outcome = recording_preprocess_run(
                recording_id=recording.pk,
                qualities=lambda track, start, _truth=truth: _nearest_quality(
                    _truth, track=track, frame_start=start
                ),
            )
            log(
                f"  {outcome.status}: {outcome.n_clips} clips"
                + (f" ({outcome.message})" if outcome.message else "")
            )
        recordings.append(recording)
    # Synthetic recordings rendered elsewhere (demo_data --recordings) that still
    # wait for preprocessing go through the same path, without ground truth.
    waiting = Recording.objects.filter(
        is_synthetic=True, status=Recording.Status.UPLOADED
    ).exclude(pk__in=[r.pk for r in recordings])
    for recording in waiting:
        log(f"Preprocessing recording #{recording.pk} ({recording.original_name})...")
        outcome = recording_preprocess_run(recording_id=recording.pk)
        log(f"  {outcome.status}: {outcome.n_clips} clips")
        recordings.append(recording)
    return recordings


def _nearest_quality(truth, *, track: np.ndarray, frame_start: int) -> float | None:
    """Quality of the synthetic cell whose true path the clip's track follows."""
    track = np.asarray(track, dtype=float)
    best, best_err = None, np.inf
    for cell_id, true in truth.tracks.items():
        window = true[frame_start : frame_start + len(track)]
        if len(window) != len(track) or np.isnan(window).all():
            continue
        err = float(np.nanmedian(np.linalg.norm(window - track, axis=1)))
        if err < best_err:
            best, best_err = cell_id, err
    if best is None or best_err > 6.0:
        return None
    return float(truth.qualities[best])

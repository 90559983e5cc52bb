"""The embedded demo: synthetic clips, a simulated 40-expert panel (with hidden
repeats, for test–retest κ; ``annotation.demo_panel``) and demo logins.

Everything created here is synthetic and marked so (``is_synthetic`` on patients
and clips, ``is_simulated`` on the panel's expert profiles). Loading is idempotent:
a second run adds only what is missing, and ``reset=True`` deletes the synthetic
data first and rebuilds it.

Clip ``i`` is rendered from ``numpy.random.default_rng([seed, i])`` with a quality
from a fixed plan (``demo_clip_plan``), so the same seed always gives the same clips,
whatever ``n_clips`` is. The demo clips carry the full WHO kinematics, as clips cut
from real recordings do, so the demo exports and trains like real data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import ProtectedError

from annotation import services
from annotation.demo_panel import (
    REPEAT_SHARE,
    demo_experts_ensure,
    demo_repeats_ensure,
    demo_votes_ensure,
)
from annotation.models import Clip, Patient, Recording, RepeatVote, Vote
from modeling.synthetic import clip_kinematics, patient_qualities
from video.io import encode_mp4
from video.synthetic import UM_PER_PX, render_clip, render_recording

User = get_user_model()

DEMO_EXPERT = {
    "username": "expert",
    "password": "grade-sperm-demo",
    "code": "DEMO-EXPERT",
}
DEMO_ADMIN = {"username": "admin", "password": "admin-demo-pass"}
PATIENT_PREFIX = "SYN-P"
CLIP_FRAMES = 16
CLIP_SIZE = 150
CLIP_FPS = 15.0
RECORDING_PREFIX = "synthetic-recording-"

Log = Callable[[str], None]


@dataclass
class DemoSummary:
    clips_created: int = 0
    clips_total: int = 0
    patients: int = 0
    simulated_experts: int = 0
    votes_created: int = 0
    votes_total: int = 0
    repeats_created: int = 0
    repeats_total: int = 0
    full_clips: int = 0
    recordings_created: int = 0
    recordings_total: int = 0
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)


def _quiet(_: str) -> None:
    return None


# Clip qualities are planned for this many clips at once, so clip i has the same
# patient and quality whatever n_clips is (up to this size).
_PLAN_SIZE = 10_000


def demo_clip_plan(
    *, n_clips: int, seed: int, n_patients: int
) -> list[tuple[int, float]]:
    """(patient number from 1, latent quality) of each demo clip, in order.

    The panel's own model of a patient's clips (``modeling.synthetic.
    patient_qualities``): a patient has a mean quality and their clips scatter
    around it.
    """
    qualities, patients = patient_qualities(
        n_clips=max(n_clips, _PLAN_SIZE),
        n_patients=n_patients,
        rng=np.random.default_rng([seed, 7_000_001]),
    )
    return [(int(patients[i]) + 1, float(qualities[i])) for i in range(n_clips)]


def demo_clips_ensure(
    *, n_clips: int, seed: int, n_patients: int, log: Log = _quiet
) -> tuple[list[Clip], int]:
    """Render and store the demo clips that are missing; returns (clips, created)."""
    existing = list(_demo_clips())
    created = 0
    plan = demo_clip_plan(n_clips=n_clips, seed=seed, n_patients=n_patients)
    for index in range(len(existing), n_clips):
        patient_no, quality = plan[index]
        patient = services.patient_get_or_create(
            code=f"{PATIENT_PREFIX}{patient_no:02d}", is_synthetic=True
        )
        clip = render_clip(
            quality=quality,
            rng=np.random.default_rng([seed, index]),
            n_frames=CLIP_FRAMES,
            size=CLIP_SIZE,
            fps=CLIP_FPS,
        )
        existing.append(
            services.clip_create(
                patient=patient,
                frames=clip.frames,
                fps=CLIP_FPS,
                track=clip.field_track.round(3).tolist(),
                speed=round(clip.speed_px_s, 3),
                speed_unit=Clip.SpeedUnit.PX_PER_S,
                kinematics=clip_kinematics(clip.field_track, fps=CLIP_FPS),
                is_synthetic=True,
                latent_quality=round(quality, 6),
                video_bytes=encode_mp4(clip.frames, fps=CLIP_FPS),
            )
        )
        created += 1
        if created % 10 == 0 or index == n_clips - 1:
            log(f"  rendered clip {index + 1} of {n_clips}")
    return existing[:n_clips] if n_clips else [], created


def _demo_clips():
    return Clip.objects.filter(
        is_synthetic=True,
        recording__isnull=True,
        patient__code__startswith=PATIENT_PREFIX,
    ).order_by("id")


def demo_recordings_ensure(
    *,
    n_recordings: int,
    seed: int,
    n_patients: int,
    width: int = 1392,
    height: int = 976,
    n_frames: int = 48,
    n_sperm: int = 60,
    log: Log = _quiet,
) -> tuple[list[Recording], int]:
    """Full-field synthetic recordings (status "uploaded"), one per patient in turn.

    They are rendered like the clips (many cells of varied quality, debris, focus
    drift) and wait for preprocessing to turn them into clips.
    """
    existing = list(
        Recording.objects.filter(
            is_synthetic=True, original_name__startswith=RECORDING_PREFIX
        ).order_by("id")
    )
    created = 0
    for index in range(len(existing), n_recordings):
        patient = services.patient_get_or_create(
            code=f"{PATIENT_PREFIX}{index % n_patients + 1:02d}", is_synthetic=True
        )
        recording = render_recording(
            n_sperm=n_sperm,
            n_frames=n_frames,
            width=width,
            height=height,
            fps=CLIP_FPS,
            rng=np.random.default_rng([seed, 8_000_001, index]),
            n_debris=n_sperm,
            focus_drift=0.8,
        )
        name = f"{RECORDING_PREFIX}{index + 1:02d}-{patient.code}.mp4"
        row = demo_recording_store(
            name=name,
            patient=patient,
            rendered=recording,
            fps=CLIP_FPS,
            notes=(
                f"Synthetic recording rendered by the SpermGrade demo (seed {seed}, "
                f"{n_sperm} sperm, {UM_PER_PX} um/px). Not real data."
            ),
        )
        existing.append(row)
        created += 1
        log(f"  rendered recording {index + 1} of {n_recordings} ({name})")
    return existing[:n_recordings] if n_recordings else [], created


def demo_recording_store(
    *,
    name: str,
    patient: Patient,
    rendered,
    fps: float,
    notes: str,
    max_clips: int = 10,
) -> Recording:
    """Store a rendered synthetic recording as an upload (status "uploaded"),
    through the same service as a real upload."""
    data = encode_mp4(rendered.frames(), fps=fps)
    recording = services.recording_create_from_upload(
        file=ContentFile(data, name=name),
        patient=patient,
        original_name=name,
        um_per_px=UM_PER_PX,
        fps=fps,
        max_clips=max_clips,
        microscope_notes=notes,
        is_synthetic=True,
    )
    # What the worker's probe would find, the rendering already knows.
    services.recording_update_info(
        recording_id=recording.pk,
        fps=fps,
        width=rendered.width,
        height=rendered.height,
        n_frames=rendered.n_frames,
    )
    recording.refresh_from_db()
    return recording


def demo_logins_ensure(*, reset_passwords: bool = False) -> list[tuple[str, str, str]]:
    """The demo expert and admin; returns (role, username, password) per login."""
    expert = User.objects.filter(username=DEMO_EXPERT["username"]).first()
    if expert is None:
        services.expert_create(
            username=DEMO_EXPERT["username"],
            password=DEMO_EXPERT["password"],
            code=DEMO_EXPERT["code"],
            years_experience=5,
        )
    elif reset_passwords:
        expert.set_password(DEMO_EXPERT["password"])
        expert.save(update_fields=["password"])
    admin = User.objects.filter(username=DEMO_ADMIN["username"]).first()
    if admin is None:
        admin = services.admin_create(
            username=DEMO_ADMIN["username"], password=DEMO_ADMIN["password"]
        )
    elif reset_passwords:
        admin.set_password(DEMO_ADMIN["password"])
    if not (admin.is_superuser and admin.is_staff) or reset_passwords:
        admin.is_superuser = True
        admin.is_staff = True
        admin.save()
    return [
        ("expert", DEMO_EXPERT["username"], DEMO_EXPERT["password"]),
        ("admin", DEMO_ADMIN["username"], DEMO_ADMIN["password"]),
    ]


def demo_data_delete() -> dict[str, int]:
    """Delete every synthetic clip, recording and patient and the simulated experts.

    Votes on those clips go with them (including the demo expert's). Real data is
    never touched: a simulated expert who voted on a real clip is kept.
    """
    clips = Clip.objects.filter(is_synthetic=True)
    files = [
        name for pair in clips.values_list("array_file", "video_file") for name in pair
    ]
    recording_files = list(
        Recording.objects.filter(is_synthetic=True).values_list("source", flat=True)
    )
    deleted: dict[str, int] = {}
    with transaction.atomic():
        deleted["votes"] = Vote.objects.filter(clip__is_synthetic=True).count()
        deleted["clips"] = clips.count()
        clips.delete()
        deleted["recordings"] = Recording.objects.filter(is_synthetic=True).count()
        Recording.objects.filter(is_synthetic=True).delete()
        patients = Patient.objects.filter(
            is_synthetic=True, clips__isnull=True, recordings__isnull=True
        )
        deleted["patients"] = patients.count()
        patients.delete()
        deleted["simulated_experts"] = 0
        for user in User.objects.filter(expert_profile__is_simulated=True):
            try:
                with transaction.atomic():
                    user.delete()
                deleted["simulated_experts"] += 1
            except ProtectedError:
                pass  # they voted on real clips; keep them and their votes
    for name in files + recording_files:
        if name and default_storage.exists(name):
            default_storage.delete(name)
    _remove_empty_folders({str(PurePosixPath(name).parent) for name in files if name})
    return deleted


def _remove_empty_folders(folders: set[str]) -> None:
    """Drop the emptied clips/<id>/ folders when media is on the local disk."""
    for folder in folders:
        try:
            path = Path(default_storage.path(folder))
        except NotImplementedError:  # remote storage has no folders to clean
            return
        with contextlib.suppress(OSError):
            path.rmdir()  # only succeeds when empty


def demo_data_load(
    *,
    n_clips: int = 60,
    n_experts: int = 40,
    seed: int = 0,
    n_patients: int = 6,
    full_share: float = 0.85,
    repeat_share: float = REPEAT_SHARE,
    n_recordings: int = 0,
    reset: bool = False,
    log: Log = _quiet,
) -> DemoSummary:
    """Create (or complete) the synthetic demo; see the module docstring."""
    if n_clips < 0 or n_experts < 0 or n_recordings < 0 or n_patients < 1:
        raise ValueError("clips, experts, recordings >= 0 and patients >= 1")
    if not 0.0 <= full_share <= 1.0:
        raise ValueError(f"full_share must lie in [0, 1], got {full_share}")
    if not 0.0 <= repeat_share <= 0.5:
        raise ValueError(f"repeat_share must lie in [0, 0.5], got {repeat_share}")
    summary = DemoSummary()
    if reset:
        summary.deleted = demo_data_delete()
        log(
            "Deleted synthetic data: "
            + ", ".join(f"{v} {k}" for k, v in summary.deleted.items())
        )
    summary.logins = demo_logins_ensure(reset_passwords=reset)
    log(f"Rendering {n_clips} synthetic clips ({CLIP_FRAMES} frames, "
        f"{CLIP_SIZE}x{CLIP_SIZE} px, {CLIP_FPS:g} fps)...")  # fmt: skip
    clips, summary.clips_created = demo_clips_ensure(
        n_clips=n_clips, seed=seed, n_patients=n_patients, log=log
    )
    summary.clips_total = len(clips)
    summary.patients = len({c.patient_id for c in clips})
    log(f"Simulating a panel of {n_experts} experts...")
    experts = demo_experts_ensure(n_experts=n_experts)
    summary.simulated_experts = len(experts)
    summary.votes_created, summary.full_clips = demo_votes_ensure(
        clips=clips, experts=experts, seed=seed, full_share=full_share
    )
    summary.votes_total = Vote.objects.filter(clip__in=clips).count()
    summary.repeats_created = demo_repeats_ensure(
        clips=clips, experts=experts, seed=seed, share=repeat_share
    )
    summary.repeats_total = RepeatVote.objects.filter(clip__in=clips).count()
    if n_recordings:
        log(f"Rendering {n_recordings} full-field synthetic recordings...")
    recordings, summary.recordings_created = demo_recordings_ensure(
        n_recordings=n_recordings, seed=seed, n_patients=n_patients, log=log
    )
    summary.recordings_total = len(recordings)
    return summary

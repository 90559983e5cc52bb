"""Clips with frames and panel votes for the model-loop tests.

The frames carry the grade (a blob whose brightness falls from A to E), so even
the smoke-test network can learn something; votes go through the service that
writes the vote history, as grading does.
"""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from annotation import services
from annotation.models import GRADES
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory, ClipFactory, ExpertFactory, PatientFactory


def _frames(grade: int, rng, *, n_frames: int = 4, size: int = 32) -> bytes:
    frames = rng.integers(0, 40, (n_frames, size, size, 3), dtype=np.uint8)
    frames[:, size // 4 : size // 2, size // 4 : size // 2] = 240 - 45 * grade
    buffer = io.BytesIO()
    np.save(buffer, frames, allow_pickle=False)
    return buffer.getvalue()


def make_voted_clips(
    *,
    n_clips: int = 16,
    n_patients: int = 8,
    n_experts: int = 6,
    seed: int = 0,
    at=None,
) -> tuple[list, list]:
    """(clips, experts): each clip voted by every expert, mostly its true grade."""
    rng = np.random.default_rng(seed)
    at = at or timezone.now() - timedelta(hours=1)
    patients = [PatientFactory() for _ in range(n_patients)]
    experts = [ExpertFactory() for _ in range(n_experts)]
    clips, rows = [], []
    for i in range(n_clips):
        grade = i % 5
        clip = ClipFactory(patient=patients[i % n_patients], speed=50.0 - 8 * grade)
        clip.array_file.save(f"c{clip.pk}.npy", ContentFile(_frames(grade, rng)))
        clips.append(clip)
        for expert in experts:
            voted = grade if rng.random() < 0.7 else min(4, grade + 1)
            rows.append((expert.pk, clip.pk, GRADES[voted], at))
    services.votes_bulk_create_simulated(votes=rows, seconds_spent=5.0)
    return clips, experts


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def voted(db):
    return make_voted_clips()


@pytest.fixture
def admin_user(db):
    return AdminFactory()


@pytest.fixture
def admin_api(admin_user):
    return session_client(admin_user)


@pytest.fixture
def expert_api(db):
    return session_client(ExpertFactory())


@pytest.fixture
def eager_celery():
    from config.celery import app, ensure_broker_folders

    ensure_broker_folders()
    # A test elsewhere may have made its own producer app the current one.
    app.set_current()
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _broker_folders():
    # The filesystem broker (the default) needs its folders; no worker reads them
    # here, so a sent task simply waits, as with a worker that is not running.
    from config.celery import ensure_broker_folders

    ensure_broker_folders()

"""``manage.py demo_data`` builds the synthetic demo on the test database."""

import os
from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Clip, ClipDistribution, ExpertProfile, Patient, Vote
from video.io import probe

pytestmark = pytest.mark.django_db

User = get_user_model()
SMALL = ["--clips", "6", "--experts", "5", "--patients", "2", "--seed", "3"]


@pytest.fixture(autouse=True)
def own_media(settings, tmp_path):
    # Each test its own media folder: on SQLite a rolled-back test hands the same
    # clip ids out again, and files left by an earlier test would collide.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The demo logins hash two passwords per run; PBKDF2 would dominate the time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("demo_data", *args, stdout=out)
    return out.getvalue()


def test_demo_data_creates_synthetic_clips_with_files_and_votes():
    output = _run(*SMALL)
    clips = list(Clip.objects.order_by("id"))
    assert len(clips) == 6
    for clip in clips:
        assert clip.is_synthetic and clip.patient.is_synthetic
        assert 0.0 <= clip.latent_quality <= 1.0
        assert clip.n_frames == 16 and clip.size_px == 150 and clip.fps == 15.0
        info = probe(clip.video_file.path)
        assert info.codec == "h264" and info.n_frames == 16
        assert (info.width, info.height) == (150, 150)
        with clip.array_file.open("rb") as fh:
            frames = np.load(fh)
        assert frames.shape == (16, 150, 150, 3) and frames.dtype == np.uint8
        assert len(clip.track) == 16
        # the full WHO set, as clips cut from real recordings carry it
        assert set(clip.kinematics) >= {
            "vcl", "vsl", "vap", "lin", "str", "wob", "alh", "bcf", "motility_class"
        }  # fmt: skip
    assert {p.code for p in Patient.objects.all()} == {"SYN-P01", "SYN-P02"}
    sims = ExpertProfile.objects.filter(is_simulated=True)
    assert sorted(p.code for p in sims) == [f"SIM-0{i}" for i in range(1, 6)]
    assert all(not p.user.has_usable_password() for p in sims)
    votes = Vote.objects.filter(expert__expert_profile__is_simulated=True)
    per_clip = sorted(votes.filter(clip=c).count() for c in clips)
    assert per_clip[-1] == 5 and per_clip[0] < 5  # 85 % full, one clip awaits votes
    assert sum(d.n_votes for d in ClipDistribution.objects.all()) == votes.count()
    assert "expert / grade-sperm-demo" in output and "admin / admin-demo-pass" in output


def test_better_latent_quality_gets_better_panel_grades():
    _run("--clips", "8", "--experts", "12", "--seed", "1", "--full-share", "1")
    qualities, mean_grades = [], []
    for clip in Clip.objects.all():
        grades = [" ABCDE".index(g) for g in clip.votes.values_list("grade", flat=True)]
        qualities.append(clip.latent_quality)
        mean_grades.append(np.mean(grades))
    assert np.corrcoef(qualities, mean_grades)[0, 1] < -0.6


def test_demo_logins_work_with_the_printed_passwords():
    _run(*SMALL)
    expert = authenticate(username="expert", password="grade-sperm-demo")
    admin = authenticate(username="admin", password="admin-demo-pass")
    assert expert is not None and expert.groups.filter(name="experts").exists()
    assert expert.expert_profile.code == "DEMO-EXPERT"
    assert not expert.expert_profile.is_simulated
    assert admin is not None and admin.is_superuser and admin.is_staff
    assert admin.groups.filter(name="admins").exists()
    assert not Vote.objects.filter(expert=expert).exists()


def test_running_demo_data_twice_duplicates_nothing():
    _run(*SMALL)
    counts = (Clip.objects.count(), Vote.objects.count(), User.objects.count())
    output = _run(*SMALL)
    assert (Clip.objects.count(), Vote.objects.count(), User.objects.count()) == counts
    assert "(0 new)" in output


def test_reset_rebuilds_the_demo_and_removes_old_files():
    _run(*SMALL)
    old = Clip.objects.order_by("id").first()
    old_path = old.video_file.path
    demo_expert = User.objects.get(username="expert")
    Vote.objects.create(expert=demo_expert, clip=old, grade="B")
    _run(*SMALL, "--reset")
    assert not Clip.objects.filter(pk=old.pk).exists()
    assert Clip.objects.count() == 6
    assert not Vote.objects.filter(expert=demo_expert).exists()
    assert ExpertProfile.objects.filter(is_simulated=True).count() == 5
    assert not os.path.exists(old_path)
    assert not os.path.exists(os.path.dirname(old_path))


def test_growing_the_demo_renders_only_the_missing_clips():
    _run("--clips", "3", "--experts", "2", "--seed", "4")
    first = list(Clip.objects.order_by("id").values_list("id", "latent_quality"))
    _run("--clips", "5", "--experts", "2", "--seed", "4")
    after = list(Clip.objects.order_by("id").values_list("id", "latent_quality"))
    assert after[:3] == first and len(after) == 5


def test_bad_options_are_refused_with_a_message():
    with pytest.raises(CommandError, match="--clips"):
        _run("--clips", "-1")
    with pytest.raises(CommandError, match="--full-share"):
        _run("--full-share", "2")
    with pytest.raises(CommandError, match="--repeat-share"):
        _run("--repeat-share", "0.9")


def test_synthetic_recordings_are_stored_as_playable_uploads_once():
    from annotation.demo import demo_recordings_ensure
    from annotation.models import Recording

    kwargs = dict(n_recordings=1, seed=2, n_patients=2, width=160, height=128)
    recordings, created = demo_recordings_ensure(n_frames=6, n_sperm=4, **kwargs)
    assert created == 1
    recording = Recording.objects.get()
    assert recording.is_synthetic and recording.patient.code == "SYN-P01"
    assert recording.status == Recording.Status.UPLOADED
    assert (recording.width, recording.height, recording.n_frames) == (160, 128, 6)
    assert len(recording.sha256) == 64 and recording.um_per_px == 0.5
    info = probe(recording.source.path)
    assert (info.width, info.height, info.n_frames) == (160, 128, 6)
    _, created = demo_recordings_ensure(n_frames=6, n_sperm=4, **kwargs)
    assert created == 0 and Recording.objects.count() == 1


def test_the_simulated_panel_grades_a_share_of_clips_again_as_hidden_repeats():
    from annotation import selectors, services
    from annotation.agreement import test_retest_kappa
    from annotation.models import RepeatVote

    _run("--clips", "30", "--experts", "6", "--seed", "2", "--full-share", "1")
    votes = {
        (v.expert_id, v.clip_id): v
        for v in Vote.objects.filter(expert__expert_profile__is_simulated=True)
    }
    repeats = list(RepeatVote.objects.all())
    per_expert = np.bincount(
        [sorted({e for e, _ in votes}).index(r.expert_id) for r in repeats]
    )
    assert per_expert.tolist() == [6] * 6  # 15 % of 30, at least 6 each
    for repeat in repeats:
        first = votes[(repeat.expert_id, repeat.clip_id)]  # a repeat of a vote
        assert first.created_at < repeat.created_at
    # Repeats count for test–retest only: the distributions hold the votes.
    assert sum(d.n_votes for d in ClipDistribution.objects.all()) == len(votes)
    # Realistic test–retest: mostly the same grade or one step off, not always.
    steps = [
        abs(
            " ABCDE".index(r.grade)
            - " ABCDE".index(votes[(r.expert_id, r.clip_id)].grade)
        )
        for r in repeats
    ]
    assert max(steps) <= 2 and 0 < sum(s > 0 for s in steps) < len(steps) / 2
    kappas = [test_retest_kappa(*pair) for pair in selectors.repeat_pairs().values()]
    assert len(kappas) == 6 and np.nanmedian(kappas) > 0.6
    # The dashboards show a κ for every simulated expert, not "–".
    experts = services.panel_statistics_refresh(force=True).data["experts"]
    shown = {e["code"]: e["test_retest_kappa"] for e in experts}
    assert sorted(shown) == [f"SIM-0{i}" for i in range(1, 7)]
    assert all(kappa is not None for kappa in shown.values()), shown
    counts = (Vote.objects.count(), RepeatVote.objects.count())
    assert "36 hidden repeats (0 new)" in _run(
        "--clips", "30", "--experts", "6", "--seed", "2", "--full-share", "1"
    )
    assert (Vote.objects.count(), RepeatVote.objects.count()) == counts

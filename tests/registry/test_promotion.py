"""Automatic promotion on comparable evidence: the candidate and the active
version scored on the candidate's snapshot, each clip by a model that never
trained on it, with a paired patient bootstrap. Every panel votes A, and the
predictions are one-hot, so each clip's EMD is known by hand: a grade off by
one makes the CDFs differ in one of five bins (EMD 1/5), two grades off in two
(2/5)."""

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from annotation import services as annotation_services
from registry import selectors, services
from registry.models import ModelVersion, Snapshot, TrainingRun, VersionEvent
from tests.annotation.conftest import session_client
from tests.factories import ClipFactory, ExpertFactory, PatientFactory
from tests.registry.conftest import _frames

A, B, C = [1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0]


def _clips(*, n_patients: int, per_patient: int = 2) -> list:
    """Clips with frames, ``per_patient`` of each new patient, patient by patient."""
    import numpy as np

    rng = np.random.default_rng(0)
    clips = []
    for _ in range(n_patients):
        patient = PatientFactory()
        for _ in range(per_patient):
            clip = ClipFactory(patient=patient, is_synthetic=False, latent_quality=None)
            clip.array_file.save(f"c{clip.pk}.npy", ContentFile(_frames(0, rng)))
            clips.append(clip)
    return clips


def _snapshot(clips, *, hours_ago: float) -> Snapshot:
    """Three experts vote A on ``clips``; the snapshot holds every clip voted by
    then."""
    at = timezone.now() - timedelta(hours=hours_ago)
    experts = ExpertFactory.create_batch(3)
    annotation_services.votes_bulk_create_simulated(
        votes=[(e.pk, c.pk, "A", at) for c in clips for e in experts]
    )
    return services.snapshot_create(cutoff=at + timedelta(minutes=1), min_votes=1)


def _version(number: int, snapshot: Snapshot, oof: dict, final=None) -> ModelVersion:
    run = TrainingRun.objects.create(
        profile="tiny", queue="cpu", snapshot=snapshot, config={"model": {"name": "x"}}
    )
    version = ModelVersion.objects.create(
        number=number,
        run=run,
        snapshot=snapshot,
        profile="tiny",
        model_name="clinic",
        emd_mean=0.05,
        emd_std=0.01,
        artifact_path=f"registry/models/run-{run.pk}",
        code_version="test",
    )
    for source, rows in (("oof", oof), ("final", final or {})):
        services.predictions_store(
            version=version,
            rows=[(c.pk, probs, 0 if source == "oof" else None) for c, probs in rows],
            source=source,
        )
    return version


def _decision(version) -> VersionEvent:
    return selectors.version_decision(version=version)


@pytest.mark.django_db
def test_a_candidate_closer_on_every_clip_of_ten_patients_is_promoted():
    """v1 trained on the first 6 patients' clips; v2's snapshot adds 4 patients.
    v1 is scored out-of-fold on its own 12 clips and by its final model on the 8
    new ones: one grade off everywhere (1/5); v2 is exact (0)."""
    old, new = _clips(n_patients=6), _clips(n_patients=4)
    first = _snapshot(old, hours_ago=3)
    second = _snapshot(new, hours_ago=2)
    assert (first.n_clips, second.n_clips) == (12, 20)
    v1 = _version(1, first, [(c, B) for c in old], final=[(c, B) for c in new])
    assert services.version_auto_decide(version=v1) is True
    v2 = _version(2, second, [(c, A) for c in old + new])

    assert services.version_auto_decide(version=v2) is True
    assert selectors.version_active() == v2
    event = _decision(v2)
    assert event.action == VersionEvent.Action.AUTO_PROMOTED and event.previous == v1
    evidence = event.evidence
    assert (evidence["n_clips"], evidence["n_patients"], evidence["n_left_out"]) == (
        20,
        10,
        0,
    )
    assert evidence["active_sources"] == {"oof": 12, "final": 8}
    assert (evidence["active"], evidence["snapshot_sha256"]) == (1, second.sha256)
    assert evidence["candidate_emd"] == 0.0
    assert evidence["reference_emd"] == pytest.approx(0.2)
    assert (evidence["delta"], evidence["low"], evidence["high"]) == pytest.approx(
        (-0.2, -0.2, -0.2)
    )
    assert event.reason == (
        f"paired with v1 on 20 clips of snapshot {second.sha256[:12]} (10 patients): "
        "EMD difference −0.2000 (95 % interval −0.2000 … −0.2000) — better; promoted"
    )


@pytest.mark.django_db
def test_better_for_half_the_patients_and_worse_for_the_rest_is_held_and_says_why(
    admin_user,
):
    """v1 one grade off everywhere (1/5). Patients 1-5: v2 exact (difference
    -1/5); patients 6-10: v2 two grades off (2/5, difference +1/5). The mean is
    0; a resample's mean is 0.2 (2K - 10) / 10 with K ~ Binomial(10, 1/2)
    patients of the worse half, and K's 2.5th and 97.5th percentiles are 2 and
    8: the interval is ±0.12."""
    clips = _clips(n_patients=10)
    snapshot = _snapshot(clips, hours_ago=2)
    better, worse = clips[:10], clips[10:]
    v1 = _version(1, snapshot, [(c, B) for c in clips])
    services.version_auto_decide(version=v1)
    v2 = _version(2, snapshot, [(c, A) for c in better] + [(c, C) for c in worse])

    assert services.version_auto_decide(version=v2) is False
    assert selectors.version_active() == v1
    event = _decision(v2)
    assert event.action == VersionEvent.Action.HELD
    assert event.evidence["delta"] == pytest.approx(0.0, abs=1e-12)
    assert event.evidence["low"] == pytest.approx(-0.12)
    assert event.evidence["high"] == pytest.approx(0.12)
    assert event.reason.endswith(
        "(95 % interval −0.1200 … +0.1200) — not clearly better; waiting for an admin"
    )

    client = session_client(admin_user)
    page = client.get(reverse("registry_version", args=[v2.pk])).content.decode()
    assert "At registration: held for an admin" in page
    assert "not clearly better; waiting for an admin" in page
    compare = client.get(reverse("registry_compare"), {"v": [v1.pk, v2.pk]})
    html = compare.content.decode()
    row = html.split('data-paired="v2"')[1].split("</tr>")[0]
    assert "<td>20<br>" in row and "<td>10</td>" in row  # clips, patients
    assert "0.0000 (-0.1200 … 0.1200)" in row and "not clearly better" in row
    assert 'data-paired="v1"' not in html  # the active version itself


@pytest.mark.django_db
def test_clips_the_active_version_never_predicted_are_left_out_and_counted():
    """v1's final model predicted 5 of the 8 clips outside its snapshot; the 3
    others have no v1 prediction and are left out."""
    old, new = _clips(n_patients=6), _clips(n_patients=4)
    first = _snapshot(old, hours_ago=3)
    second = _snapshot(new, hours_ago=2)
    v1 = _version(1, first, [(c, B) for c in old], final=[(c, B) for c in new[:5]])
    services.version_auto_decide(version=v1)
    v2 = _version(2, second, [(c, A) for c in old + new])

    assert services.version_auto_decide(version=v2) is True
    evidence = _decision(v2).evidence
    assert evidence["n_snapshot_clips"] == 20
    assert (evidence["n_clips"], evidence["n_left_out"]) == (17, 3)
    assert evidence["active_sources"] == {"oof": 12, "final": 5}
    # Patients 1-8 whole, one clip of patient 9, none of patient 10.
    assert evidence["n_patients"] == 9
    assert (evidence["n_without_active"], evidence["n_without_candidate"]) == (3, 0)
    assert "(9 patients; 3 left out: 3 without a prediction from v1)" in (
        _decision(v2).reason
    )


@pytest.mark.django_db
def test_better_on_every_clip_of_too_few_patients_waits_for_an_admin():
    clips = _clips(n_patients=3, per_patient=4)
    snapshot = _snapshot(clips, hours_ago=2)
    v1 = _version(1, snapshot, [(c, B) for c in clips])
    services.version_auto_decide(version=v1)
    v2 = _version(2, snapshot, [(c, A) for c in clips])

    assert services.version_auto_decide(version=v2) is False
    event = _decision(v2)
    assert event.evidence["high"] == pytest.approx(-0.2)
    assert event.reason.endswith(
        "— too few patients for an interval (at least 5); waiting for an admin"
    )


@pytest.mark.django_db
def test_a_version_activated_meanwhile_is_the_one_compared_with(monkeypatch):
    """While v3 is being compared with v1 an admin promotes v2; v3 is not made
    active over a version it was never compared with: compared again with v2
    (as exact as v3 on every clip), it waits for an admin."""
    from registry.services import versions

    clips = _clips(n_patients=5)
    snapshot = _snapshot(clips, hours_ago=2)
    v1 = _version(1, snapshot, [(c, B) for c in clips])
    services.version_auto_decide(version=v1)
    v2 = _version(2, snapshot, [(c, A) for c in clips])
    v3 = _version(3, snapshot, [(c, A) for c in clips])
    real = versions.promotion_reason
    calls = []

    def an_admin_promotes_v2_meanwhile(**kwargs):
        answer = real(**kwargs)
        calls.append(kwargs["active"].number)
        if len(calls) == 1:
            services.model_version_promote(version_id=v2.pk, user=None)
        return answer

    monkeypatch.setattr(versions, "promotion_reason", an_admin_promotes_v2_meanwhile)
    assert services.version_auto_decide(version=v3) is False
    assert calls == [1, 2]
    assert selectors.version_active() == v2
    event = _decision(v3)
    assert event.action == VersionEvent.Action.HELD
    assert event.evidence["active"] == 2 and event.evidence["delta"] == 0.0
    assert event.reason.startswith("paired with v2 on 10 clips")

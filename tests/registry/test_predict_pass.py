"""A prediction pass loads the version's checkpoint once, however many batches
it stores."""

import pytest

from modeling import checkpoint as ckpt
from registry import services
from registry.models import ModelVersion, Prediction
from tests.factories import ClipFactory


@pytest.mark.django_db(transaction=True)
def test_a_prediction_pass_over_several_batches_loads_the_checkpoint_once(
    voted, eager_celery, settings, monkeypatch
):
    from workers.training import version_predict_run

    clips, _ = voted
    services.training_run_create(profile="tiny")
    version = ModelVersion.objects.get(is_active=True)
    new = []
    for _ in range(5):  # e.g. cut from a new recording
        clip = ClipFactory(patient=clips[0].patient)
        clip.array_file.name = clips[0].array_file.name
        clip.save()
        new.append(clip)
    settings.PREDICT_BATCH_CLIPS = 2  # three batches
    loads = []
    load = ckpt.checkpoint_load
    monkeypatch.setattr(
        ckpt, "checkpoint_load", lambda *a, **k: loads.append(a) or load(*a, **k)
    )
    result = version_predict_run(version_id=version.pk)
    assert result["predicted"] == 5
    assert len(loads) == 1
    stored = Prediction.objects.filter(version=version, clip__in=new)
    assert stored.count() == 5
    assert all(sum(p.probs) == pytest.approx(1.0, abs=1e-4) for p in stored)
    # Nothing left to predict: the checkpoint is not even loaded.
    assert version_predict_run(version_id=version.pk)["predicted"] == 0
    assert len(loads) == 1

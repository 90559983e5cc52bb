"""The whole loop in one process (Celery eager): snapshot -> folds -> register ->
promote -> predict, with the tiny profile. The real-worker tests are in
test_loop_worker.py."""

import json

import pytest
from django.db import DatabaseError, transaction

from registry import selectors, services, storage
from registry.models import (
    ModelVersion,
    Prediction,
    RunStatus,
    TrainingFold,
    TrainingRun,
    VersionEvent,
)
from tests.factories import ClipFactory


def _run_tiny(django_capture_on_commit_callbacks, **kwargs) -> TrainingRun:
    with django_capture_on_commit_callbacks(execute=True):
        run = services.training_run_create(profile="tiny", **kwargs)
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_tiny_run_registers_promotes_and_predicts_every_clip(
    voted, eager_celery, settings, tmp_path, monkeypatch
):
    clips, _ = voted
    # A cache every process shares (as Redis is in production).
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    outside = ClipFactory()  # no votes: outside the snapshot, predicted by final
    outside.array_file.name = clips[0].array_file.name
    outside.save()
    run = services.training_run_create(profile="tiny")
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error_message + run.log_tail
    folds = {f.index: f for f in run.folds.all()}
    assert set(folds) == {0, 1, TrainingFold.FINAL}
    assert all(f.status == RunStatus.DONE for f in folds.values())
    assert all(f.device_name.startswith("cpu") for f in folds.values())
    assert all(f.peak_memory_mb and f.peak_memory_mb > 0 for f in folds.values())
    assert folds[0].progress["epoch"] == 2 and "emd" in folds[0].progress["metrics"]
    assert "epoch 2/2" in folds[0].log_tail

    version = ModelVersion.objects.get(run=run)
    assert version.is_active and version.number == 1
    assert version.snapshot.sha256 == run.snapshot.sha256
    assert version.metrics["k"] == 2 and len(version.metrics["folds"]) == 2
    assert version.emd_mean == pytest.approx(version.metrics["mean"]["emd"])
    artifacts = storage.absolute(version.artifact_path)
    for name in (
        "final/model.safetensors",
        "final/checkpoint.json",
        "config.yaml",
        "metrics.json",
        "normalisation.json",
        "oof_predictions.jsonl",
        "version.json",
    ):
        assert (artifacts / name).is_file(), name
    meta = json.loads((artifacts / "version.json").read_text())
    assert meta["snapshot_sha256"] == run.snapshot.sha256 and meta["code_version"]
    assert not storage.registry_dir("runs", str(run.pk)).exists()
    assert not any(storage.registry_dir("tmp").iterdir())

    predictions = {p.clip_id: p for p in Prediction.objects.filter(version=version)}
    assert set(predictions) == {c.pk for c in clips} | {outside.pk}
    assert predictions[outside.pk].source == Prediction.Source.FINAL
    oof = [predictions[c.pk] for c in clips]
    assert all(p.source == Prediction.Source.OUT_OF_FOLD for p in oof)
    assert all(p.fold in (0, 1) for p in oof)
    assert all(
        sum(p.probs) == pytest.approx(1.0, abs=1e-4) for p in predictions.values()
    )
    # The out-of-fold rows are the ones the fold models wrote, clip for clip.
    lines = (artifacts / "oof_predictions.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert predictions[int(first["clip_id"])].probs == pytest.approx(
        first["pred"], abs=1e-6
    )
    event = VersionEvent.objects.get(version=version)
    assert event.action == VersionEvent.Action.AUTO_PROMOTED and event.by is None

    # The worker computed the version's dashboard figures once it was done: the
    # first view reads no out-of-fold file and runs no bootstrap.
    def refuse(**_):
        raise AssertionError("the figures were not precomputed")

    monkeypatch.setattr(selectors, "version_oof", refuse)
    assert selectors.version_panel_report(version=version)["n_clips"] > 0


@pytest.mark.django_db(transaction=True)
def test_a_run_is_registered_once_even_if_registration_is_claimed_twice(
    voted, eager_celery
):
    run = services.training_run_create(profile="tiny")
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert services.run_claim_registration(run_id=run.pk) is None  # run is done


@pytest.mark.django_db
def test_predictions_cannot_be_changed_in_the_database(voted):
    from registry.models import Snapshot

    clips, _ = voted
    snapshot = Snapshot.objects.create(
        sha256="0" * 64, cutoff="2026-01-01T00:00Z", min_votes=1, n_clips=1, n_votes=1
    )
    run = TrainingRun.objects.create(profile="tiny", queue="cpu", snapshot=snapshot)
    version = ModelVersion.objects.create(
        number=1,
        run=run,
        snapshot=snapshot,
        profile="tiny",
        model_name="clinic",
        emd_mean=0.1,
        emd_std=0.01,
        artifact_path="x",
        code_version="t",
    )
    services.predictions_store(
        version=version, rows=[(clips[0].pk, [0.2] * 5, 0)], source="oof"
    )
    # A second store of the same pair keeps the first values.
    services.predictions_store(
        version=version, rows=[(clips[0].pk, [0.0, 0, 0, 0, 1.0], 0)], source="oof"
    )
    assert Prediction.objects.get().probs == [0.2] * 5
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Prediction.objects.filter(version=version).update(p_a=0.9)
    assert Prediction.objects.get().p_a == 0.2


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_queued_run_cancels_it_without_training(voted, settings):
    # The broker is the filesystem one and no worker runs: the run stays queued.
    run = services.training_run_create(profile="tiny")
    run = services.training_run_cancel(run_id=run.pk)
    assert run.status == RunStatus.CANCELLED and run.finished_at
    from workers.training import training_run_start_run

    assert training_run_start_run(run_id=run.pk)["skipped"]
    assert not TrainingFold.objects.filter(run=run).exists()
    with pytest.raises(services.RunStateConflict):
        services.training_run_cancel(run_id=run.pk)
    retry = services.training_run_retry(run_id=run.pk)
    assert retry.retry_of_id == run.pk and retry.status == RunStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_folds_that_cannot_be_made_fail_the_run_before_training(voted, eager_celery):
    bad = services.training_run_create(profile="tiny", overrides={"k": 40})
    bad.refresh_from_db()
    assert bad.status == RunStatus.FAILED
    assert "cannot be split into 40 folds" in bad.error_message
    assert not TrainingFold.objects.filter(run=bad).exists()
    assert not storage.registry_dir("runs", str(bad.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_out_of_memory_in_a_fold_fails_the_run_with_the_reason(
    voted, eager_celery, monkeypatch
):
    import torch

    from workers import training

    def oom(**kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(training, "run_fold", oom)
    run = services.training_run_create(profile="tiny")
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "ran out of memory" in run.error_message
    assert "Lower the batch size" in run.error_message
    assert not ModelVersion.objects.filter(run=run).exists()
    assert not storage.registry_dir("runs", str(run.pk)).exists()
    assert not storage.registry_dir("models", f"run-{run.pk}").exists()


def test_code_version_names_the_commit(settings):
    storage.code_version.cache_clear()
    settings.CODE_VERSION = ""
    version = storage.code_version()
    assert version != "" and (version == "unknown" or len(version.split("-")[0]) == 12)
    storage.code_version.cache_clear()
    settings.CODE_VERSION = "1.2.3"
    assert storage.code_version() == "1.2.3"
    storage.code_version.cache_clear()


def test_pseudonyms_are_stable_keyed_and_hide_the_code(settings):
    settings.PSEUDONYM_KEY = "k1"
    a = storage.patient_pseudonym("PT-00001")
    assert a == storage.patient_pseudonym("PT-00001") and "00001" not in a
    settings.PSEUDONYM_KEY = "k2"
    assert storage.patient_pseudonym("PT-00001") != a


@pytest.mark.django_db(transaction=True)
def test_a_clip_created_after_promotion_is_predicted_by_the_active_version(
    voted, eager_celery
):
    clips, _ = voted
    services.training_run_create(profile="tiny")
    version = ModelVersion.objects.get(is_active=True)
    new = ClipFactory(patient=clips[0].patient)  # e.g. cut from a new recording
    new.array_file.name = clips[0].array_file.name
    new.save()
    assert not Prediction.objects.filter(clip=new).exists()
    from workers.tasks import predictions_catch_up

    outcome = predictions_catch_up.apply().get()
    assert outcome == {"active": version.number, "missing": 1}
    prediction = Prediction.objects.get(clip=new, version=version)
    assert prediction.source == Prediction.Source.FINAL and prediction.fold is None


@pytest.mark.django_db(transaction=True)
def test_schedules_start_a_run_only_when_one_is_due(voted, eager_celery, settings):
    from importlib import import_module

    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    # The migration installs both schedules, editable in the admin (a
    # transactional test's flush empties the table, so it runs again here; it
    # is idempotent).
    migration = import_module(
        "registry.migrations.0002_prediction_trigger_and_schedules"
    )
    migration.schedules_create(apps, None)
    migration.schedules_create(apps, None)
    tasks = PeriodicTask.objects.filter(task="workers.tasks.retrain_when_due")
    triggers = {json.loads(t.kwargs)["trigger"] for t in tasks}
    assert triggers == {"nightly", "votes"}
    clips, experts = voted
    settings.VOTES_PER_CLIP = 6  # every clip of the fixture is fully voted
    run = services.retrain_if_due(trigger="votes", profile="tiny", min_new_clips=16)
    assert run is not None and run.trigger == "votes"
    # The votes have not changed since that run's snapshot: nothing is due.
    assert services.retrain_if_due(trigger="nightly", profile="tiny") is None
    assert services.retrain_if_due(trigger="votes", profile="tiny") is None
    from django.utils import timezone

    from tests.registry.conftest import make_voted_clips

    make_voted_clips(n_clips=3, n_patients=2, seed=5, at=timezone.now())
    assert (
        services.retrain_if_due(trigger="votes", profile="tiny", min_new_clips=4)
        is None
    )
    nightly = services.retrain_if_due(trigger="nightly", profile="tiny")
    assert nightly is not None and nightly.trigger == "nightly"


@pytest.mark.django_db
def test_no_schedule_starts_a_run_while_one_is_under_way(voted):
    services.training_run_create(profile="tiny")  # queued: no worker here
    assert services.retrain_if_due(trigger="nightly", profile="tiny") is None
    assert TrainingRun.objects.count() == 1


@pytest.mark.django_db
def test_the_latent_quality_check_matches_a_hand_computed_spearman(voted):
    from registry import selectors
    from tests.registry.test_versions import _version

    clips, _ = voted
    version = _version(1, 0.05, 0.01)
    version.snapshot.is_synthetic = True
    version.snapshot.save()
    # Three clips: latent 0.1, 0.5, 0.9; predicted mean grades 3, 2, 1 (perfectly
    # ordered, rho = +1 after the sign flip) .
    for clip, latent, grade in zip(clips[:3], [0.1, 0.5, 0.9], [3, 2, 1], strict=True):
        clip.latent_quality = latent
        clip.save()
        probs = [0.0] * 5
        probs[grade] = 1.0
        services.predictions_store(
            version=version, rows=[(clip.pk, probs, 0)], source="oof"
        )
    result = selectors.version_vs_latent_quality(version=version)
    assert result["n"] == 3 and result["model_rho"] == pytest.approx(1.0)


@pytest.mark.django_db(transaction=True)
def _heartbeat(subject: str, *, attempt: int = 1, age_s: float = 0.0):
    """A task's heartbeat as another machine's worker left it ``age_s`` ago."""
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import Heartbeat

    at = timezone.now() - timedelta(seconds=age_s)
    return Heartbeat.objects.create(
        subject=subject,
        attempt=attempt,
        host="another-machine",
        pid=1,
        started_at=at,
        beat_at=at,
    )


def test_redelivered_tasks_restart_cleanly_and_register_once(voted):
    from workers.training import training_fold_run, training_run_start_run

    # No worker and no eager mode: the test plays the worker, delivering twice.
    run = services.training_run_create(profile="tiny")
    first = training_run_start_run(run_id=run.pk)
    again = training_run_start_run(run_id=run.pk)
    assert first["snapshot"] == again["snapshot"]
    assert TrainingFold.objects.filter(run=run).count() == 3
    assert training_fold_run(run_id=run.pk, index=0, attempt=1, host="a")["done"]
    # Fold 0 delivered again: done, so nothing happens.
    assert training_fold_run(run_id=run.pk, index=0, attempt=1, host="b")["skipped"]
    # Fold 1's worker died mid-training an hour ago, leaving a half-written folder.
    TrainingFold.objects.filter(run=run, index=1).update(status=RunStatus.RUNNING)
    _heartbeat(f"fold:{run.pk}:1", age_s=3600)
    junk = storage.registry_dir("runs", str(run.pk), "attempt-1", "fold_1")
    (junk / "checkpoint").mkdir(parents=True)
    (junk / "checkpoint" / "model.safetensors").write_bytes(b"half")
    # A fresh heartbeat means another worker is on it: a duplicate is refused.
    TrainingFold.objects.filter(run=run, index=-1).update(status=RunStatus.RUNNING)
    _heartbeat(f"fold:{run.pk}:-1")
    assert training_fold_run(run_id=run.pk, index=-1, attempt=1, host="c")["skipped"]
    # Fold 1's message delivered again: its worker is dead, so this delivery
    # takes the fold over as attempt 2, in a folder of its own.
    assert training_fold_run(run_id=run.pk, index=1, attempt=1, host="c")["done"]
    fold = TrainingFold.objects.get(run=run, index=1)
    assert fold.attempt == 2 and fold.status == RunStatus.DONE
    # The dead attempt's late writes are refused; its folder is not the one used.
    assert not services.fold_mark(
        run_id=run.pk, index=1, attempt=1, status=RunStatus.FAILED
    )
    assert services.fold_should_stop(run_id=run.pk, index=1, attempt=1)
    assert (junk / "checkpoint" / "model.safetensors").read_bytes() == b"half"
    # An older attempt's message is ignored.
    TrainingFold.objects.filter(run=run, index=-1).update(status=RunStatus.QUEUED)
    assert training_fold_run(run_id=run.pk, index=-1, attempt=0, host="d")["skipped"]
    last = training_fold_run(run_id=run.pk, index=-1, attempt=1, host="d")
    assert last["version"] == 1
    assert ModelVersion.objects.filter(run=run).count() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    version = ModelVersion.objects.get(run=run)
    weights = storage.absolute(version.artifact_path) / "final" / "model.safetensors"
    assert weights.stat().st_size > 100


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_running_run_with_no_fold_training_ends_it_at_once(
    voted, settings
):
    """No worker is up: the run was started (folds queued) but nothing trains,
    so nothing would ever read the cancel flag. Cancel ends it now; a fold
    delivered later finds the run ended and does nothing; schedules are free."""

    from workers.training import training_run_start_run

    run = services.training_run_create(profile="tiny")
    training_run_start_run(run_id=run.pk)  # snapshot, folds queued, no worker
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    # One fold whose worker died long ago: its heartbeat is stale.
    TrainingFold.objects.filter(run=run, index=0).update(status=RunStatus.RUNNING)
    _heartbeat(f"fold:{run.pk}:0", age_s=settings.JOB_HEARTBEAT_TIMEOUT_SECONDS + 60)
    run = services.training_run_cancel(run_id=run.pk)
    assert run.status == RunStatus.CANCELLED, run.status
    assert "no worker was on it" in run.error_message
    fold = TrainingFold.objects.get(run=run, index=1)
    assert (
        services.fold_claim(
            run_id=run.pk,
            index=1,
            attempt=fold.attempt,
            host="late@test",
            own_heartbeat=None,
        )
        is None
    )
    from registry import selectors

    assert not selectors.runs_active().exists()  # the schedules may start runs


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_run_whose_fold_is_training_asks_it_to_stop(voted):
    from workers.training import training_run_start_run

    run = services.training_run_create(profile="tiny")
    training_run_start_run(run_id=run.pk)
    TrainingFold.objects.filter(run=run, index=0).update(status=RunStatus.RUNNING)
    _heartbeat(f"fold:{run.pk}:0")  # a live worker trains it
    run = services.training_run_cancel(run_id=run.pk)
    assert run.status == RunStatus.RUNNING and run.cancel_requested
    # What that worker's heartbeat thread asks: stop.
    assert services.fold_should_stop(run_id=run.pk, index=0, attempt=1)

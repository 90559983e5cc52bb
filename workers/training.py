"""The model loop on the worker side: start a run, train a fold, register the
version, predict clips. Tasks (``workers.tasks``) call these; the training itself
is ``modeling`` (pure), given the snapshot's manifest and the run's config.

A run is fold-parallel: ``training_run_start_run`` takes the snapshot and queues
one task per fold plus one for the final model; any worker on the run's queue
picks them up. The fold that finishes last (claimed in the database, so exactly
one) registers the version, so no chord or result backend is needed and the
filesystem broker works too.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shutil
import time
from pathlib import Path

import torch
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from annotation.models import Clip
from jobs import liveness
from modeling.checkpoint import checkpoint_meta
from modeling.config import config_from_dict
from modeling.cv import CVError
from modeling.data import clipset_load
from modeling.manifest import ManifestError, manifest_write
from modeling.onnx_export import onnx_export
from modeling.predict import LoadedCheckpoint, checkpoint_open, predict
from modeling.results import fold_dirname, fold_result_load, json_write
from modeling.runtime import device_resolve
from modeling.training import (
    TrainingCancelled,
    cv_finish,
    cv_prepare,
    final_fold,
    folds_for,
    run_fold,
)
from registry import selectors, services, storage
from registry.models import FINISHED, RunStatus, TrainingFold
from registry.profiles import profile_get

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0


def _work_dir(run_id: int) -> Path:
    return storage.registry_dir("runs", str(run_id))


def _attempt_dir(run_id: int, attempt: int) -> Path:
    """Each attempt of a fold writes its own folder: a late, stale attempt never
    touches a newer one's files."""
    return _work_dir(run_id) / f"attempt-{attempt}"


def _fold_name(index: int) -> str:
    return "final model" if index == TrainingFold.FINAL else f"fold {index}"


def device_describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {torch.get_num_threads()} threads)"


def peak_memory_mb(device: torch.device) -> float:
    """GPU: the peak of allocated memory; CPU: the process's peak resident size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- start ----------------------------------------------------------------------


def training_run_start_run(*, run_id: int) -> dict:
    """Take the snapshot (votes as they stood when the run was requested), check
    that the folds can be made, create the fold rows and queue them.
    Idempotent: a re-delivered start only re-sends folds still queued."""
    run = selectors.run_get(run_id=run_id)
    if run is None or run.status in FINISHED:
        return {"run": run_id, "skipped": "ended or unknown"}
    if run.cancel_requested:
        services.run_finish(run_id=run_id, status=RunStatus.CANCELLED)
        return {"run": run_id, "cancelled": True}
    start = time.perf_counter()
    snapshot = run.snapshot
    liveness.stage("snapshot")
    if snapshot is None:
        try:
            snapshot = services.snapshot_create(cutoff=run.created_at)
        except services.NothingToSnapshot as exc:
            services.training_run_fail(run_id=run_id, message=exc.message)
            return {"run": run_id, "failed": exc.message}
    cfg = config_from_dict(run.config)
    try:
        clips = clipset_load(
            storage.absolute(snapshot.path), speed_features=cfg.data.speed_features
        )
        cv_prepare(cfg=cfg, clips=clips, out_dir=_work_dir(run_id))
    except (CVError, ManifestError, ValueError) as exc:
        message = f"The snapshot cannot be split into {cfg.cv.k} folds: {exc}"
        services.training_run_fail(run_id=run_id, message=message)
        return {"run": run_id, "failed": message}
    if not services.run_mark_running(
        run_id=run_id, snapshot=snapshot, n_folds=cfg.cv.k
    ):
        return {"run": run_id, "skipped": "ended meanwhile"}
    services.run_timings_update(run_id=run_id, snapshot_s=time.perf_counter() - start)
    run.refresh_from_db()
    liveness.stage("sending_folds")
    sent = services.folds_send(run=run)
    services.run_log(
        run_id=run_id,
        line=(
            f"snapshot {snapshot.sha256[:12]}: {snapshot.n_clips} clips, "
            f"{snapshot.n_votes} votes; {sent} tasks queued on {run.queue} "
            f"({cfg.cv.k} folds + the final model)"
        ),
    )
    return {"run": run_id, "snapshot": snapshot.sha256, "folds_sent": sent}


# --- one fold -------------------------------------------------------------------


class FoldReporter:
    """``on_progress`` for ``modeling.training``: stores progress and a log line
    per epoch, a heartbeat every few seconds, and stops on a cancel request."""

    def __init__(
        self, *, run_id: int, index: int, attempt: int, device: torch.device
    ) -> None:
        self.run_id, self.index, self.attempt = run_id, index, attempt
        self.device = device
        self.last = 0.0
        self.progress: dict = {"fold": index}
        self.pulse = liveness.current()

    def __call__(self, event: dict) -> None:
        if self.pulse is not None and self.pulse.stop_requested.is_set():
            # The heartbeat thread saw the run end or a newer attempt take over.
            raise TrainingCancelled(f"{_fold_name(self.index)}: stop requested")
        if event["event"] == "stage":
            liveness.stage(event["stage"], _fold_name(self.index))
            return
        line = None
        if event["event"] == "step":
            self.progress.update(
                epoch=event["epoch"],
                epochs=event["epochs"],
                step=event["step"],
                steps=event["steps"],
            )
        else:
            val = event.get("val") or {}
            self.progress["metrics"] = {
                "train_loss": round(event["train_loss"], 5),
                **{k: round(val[k], 5) for k in ("emd", "mse", "jsd") if k in val},
            }
            line = (
                f"{_fold_name(self.index)} epoch {event['epoch']}/{event['epochs']}: "
                f"train loss {event['train_loss']:.4f}"
                + (f", validation EMD {val['emd']:.4f}" if "emd" in val else "")
                + f", {event['clips_per_s']:.1f} clips/s"
            )
        now = time.monotonic()
        if line is None and now - self.last < HEARTBEAT_SECONDS:
            return
        self.last = now
        self.progress["peak_memory_mb"] = round(peak_memory_mb(self.device), 1)
        if services.fold_heartbeat(
            run_id=self.run_id,
            index=self.index,
            attempt=self.attempt,
            progress=self.progress,
            log_line=line,
        ):
            raise TrainingCancelled(f"{_fold_name(self.index)}: stop requested")


def _failure_text(exc: BaseException, index: int) -> str:
    where = _fold_name(index)
    if isinstance(exc, SoftTimeLimitExceeded):
        return (
            f"{where} ran past TRAINING_TIME_LIMIT_SECONDS "
            f"({settings.TRAINING_TIME_LIMIT_SECONDS} s); raise it or use fewer epochs."
        )
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError) or (
        "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc)
    ):
        return (
            f"{where} ran out of memory ({text[:600]}). Lower the batch size, or "
            "choose a smaller profile."
        )
    return f"{where} failed: {text[:1500]}"


def training_fold_run(*, run_id: int, index: int, attempt: int, host: str) -> dict:
    """Train one fold (or the final model) in its attempt's own folder; then
    register the version if this was the last fold to finish."""
    pulse = liveness.current()
    attempt = services.fold_claim(
        run_id=run_id,
        index=index,
        attempt=attempt,
        host=host,
        own_heartbeat=pulse.row_id if pulse else None,
    )
    if attempt is None:
        return {"run": run_id, "fold": index, "skipped": True}
    if pulse is not None:
        pulse.attempt_set(attempt)
        pulse.stop_check = lambda: services.fold_should_stop(
            run_id=run_id, index=index, attempt=attempt
        )
    run = selectors.run_get(run_id=run_id)
    cfg = config_from_dict(run.config)
    work = _attempt_dir(run_id, attempt)
    storage.remove_tree(work / fold_dirname(index))  # a re-delivery starts clean
    device = torch.device("cpu")
    mark = {"run_id": run_id, "index": index, "attempt": attempt}
    try:
        device = device_resolve(cfg.runtime.device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        clips = clipset_load(
            storage.absolute(run.snapshot.path),
            speed_features=cfg.data.speed_features,
        )
        fold = (
            final_fold(clips, cfg)
            if index == TrainingFold.FINAL
            else (folds_for(clips, cfg)[index])
        )
        services.run_log(
            run_id=run_id,
            line=f"{_fold_name(index)} started on {host} ({device_describe(device)})"
            + (f", attempt {attempt}" if attempt > 1 else ""),
        )
        liveness.stage("training", _fold_name(index))
        result = run_fold(
            cfg=cfg,
            clips=clips,
            fold=fold,
            out_dir=work,
            device=device,
            on_progress=FoldReporter(
                run_id=run_id, index=index, attempt=attempt, device=device
            ),
        )
    except TrainingCancelled:
        _free(device)
        if services.fold_mark(**mark, status=RunStatus.CANCELLED):
            services.run_finish(
                run_id=run_id,
                status=RunStatus.CANCELLED,
                message=f"cancelled during the {_fold_name(index)}",
            )
        return {"run": run_id, "fold": index, "cancelled": True}
    except Exception as exc:  # noqa: BLE001 - every trainer error ends the run
        _free(device)
        message = _failure_text(exc, index)
        logger.exception("run %s %s failed", run_id, _fold_name(index))
        if services.fold_mark(**mark, status=RunStatus.FAILED, message=message):
            services.training_run_fail(run_id=run_id, message=message)
        return {"run": run_id, "fold": index, "failed": message}
    done = services.fold_mark(
        **mark,
        status=RunStatus.DONE,
        metrics=result.metrics,
        device_name=device_describe(device),
        peak_memory_mb=round(peak_memory_mb(device), 1),
    )
    _free(device)
    if not done:  # a newer attempt holds the fold, or the run ended
        storage.remove_tree(work / fold_dirname(index))
        return {"run": run_id, "fold": index, "superseded": True}
    outcome = {"run": run_id, "fold": index, "done": True}
    token = services.run_claim_registration(run_id=run_id)
    if token is not None:
        with liveness.alive(
            f"register:{run_id}", task="registration after the last fold"
        ) as registering:
            liveness.stage("claimed_registration")
            outcome["version"] = version_register_run(
                run_id=run_id, token=token, attempt=registering.attempt
            )
    return outcome


def training_run_register_run(*, run_id: int) -> dict:
    """Claim and register a run whose folds are all done (the reaper re-sends
    this when the worker registering it died)."""
    token = services.run_claim_registration(run_id=run_id)
    if token is None:
        return {"run": run_id, "skipped": True}
    pulse = liveness.current()
    number = version_register_run(
        run_id=run_id, token=token, attempt=pulse.attempt if pulse else 1
    )
    return {"run": run_id, "version": number}


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- registration ---------------------------------------------------------------


def _artifacts_write(
    *, run, work: Path, final: Path, target: Path, summary: dict
) -> None:
    shutil.copytree(final / "checkpoint", target / "final")
    for name in ("config.yaml", "folds.json", "metrics.json", "oof_predictions.jsonl"):
        shutil.copy2(work / name, target / name)
    meta = checkpoint_meta(target / "final")
    json_write(
        target / "normalisation.json",
        {"speed_scaler": meta["speed_scaler"], "input": meta["input"]},
    )
    if profile_get(run.profile).onnx:
        onnx_export(target / "final", target / "model.onnx")
    json_write(
        target / "version.json",
        {
            "run": run.pk,
            "profile": run.profile,
            "snapshot_sha256": run.snapshot.sha256,
            "code_version": storage.code_version(),
            "final_model": "one model fitted on the whole snapshot (final/)",
            "out_of_fold": "oof_predictions.jsonl: each snapshot clip predicted by "
            "the fold model that never trained on it",
            "emd": {"mean": summary["mean"]["emd"], "std": summary["std"]["emd"]},
        },
    )


class _ClaimLost(Exception):
    pass


def version_register_run(*, run_id: int, token, attempt: int = 1) -> int | None:
    """Every fold is done: cross-validated metrics, artifacts written to a
    temporary folder and renamed into this attempt's place, then the version row
    (only while ``token``, the registration claim, still holds). On any error
    nothing is left behind and the run fails."""
    run = selectors.run_get(run_id=run_id)
    cfg = config_from_dict(run.config)
    work = _work_dir(run_id)
    attempts = {f.index: f.attempt for f in run.folds.all()}
    liveness.stage("registering")
    tmp = None
    target = storage.registry_dir("models", f"run-{run_id}-r{attempt}")
    start = time.perf_counter()
    try:
        clips = clipset_load(
            storage.absolute(run.snapshot.path),
            speed_features=cfg.data.speed_features,
        )
        folds = folds_for(clips, cfg)
        results = [
            fold_result_load(_attempt_dir(run_id, attempts[f.index]), f.index, clips)
            for f in folds
        ]
        wall = (run.registering_at - run.started_at).total_seconds()
        summary = cv_finish(
            cfg=cfg,
            clips=clips,
            folds=folds,
            results=results,
            out_dir=work,
            device=", ".join(
                sorted({f.device_name for f in run.folds.all() if f.device_name})
            ),
            wall_s=wall,
        )
        tmp = storage.tmp_dir(f"run-{run_id}")
        final = _attempt_dir(run_id, attempts[TrainingFold.FINAL]) / "final"
        _artifacts_write(run=run, work=work, final=final, target=tmp, summary=summary)
        if not services.run_registration_holds(run_id=run_id, token=token):
            raise _ClaimLost
        storage.remove_tree(target)  # an orphan from a crash before its row
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, target)
        tmp = None
        if not services.run_registration_holds(run_id=run_id, token=token):
            raise _ClaimLost
        oof = [
            (int(clips.clip_ids[i]), r.test_probs[j].tolist(), r.index)
            for r in results
            for j, i in enumerate(r.test_idx)
        ]
        version = services.model_version_register(
            run=run,
            artifact_dir=target,
            summary=summary,
            oof=oof,
            code_version=storage.code_version(),
        )
        if version.artifact_path != storage.relative(target):
            storage.remove_tree(target)  # registered before, by another attempt
    except _ClaimLost:
        # The run ended, or the reaper gave the registration to a newer attempt.
        storage.remove_tree(tmp)
        storage.remove_tree(target)
        return None
    except Exception as exc:  # noqa: BLE001 - no version without complete artifacts
        logger.exception("run %s: registration failed", run_id)
        storage.remove_tree(tmp)
        storage.remove_tree(target)
        services.training_run_fail(
            run_id=run_id,
            message=f"registration failed: {type(exc).__name__}: {exc}"[:2000],
        )
        return None
    services.run_timings_update(
        run_id=run_id,
        train_s=wall,
        register_s=time.perf_counter() - start,
    )
    services.run_log(
        run_id=run_id,
        line=(
            f"registered v{version.number}: EMD {version.emd_mean:.4f} ± "
            f"{version.emd_std:.4f} (mean distribution: "
            f"{version.baseline_emd or float('nan'):.4f})"
        ),
    )
    storage.remove_tree(work)
    # Promotion is decided before the run says done, so whoever sees "done" also
    # sees the version active (or held). A failure here leaves the version
    # registered and held for an admin.
    try:
        services.version_auto_decide(version=version)
    except Exception:  # noqa: BLE001
        logger.exception("run %s: the promotion decision failed", run_id)
    services.run_finish(run_id=run_id, status=RunStatus.DONE)
    # The dashboard's figures of the new version, computed by a cpu worker now
    # instead of at an admin's first view. Only a cache: a lost task loses nothing.
    services.version_figures_queue(version=version)
    return version.number


# --- prediction -----------------------------------------------------------------


def version_predict_run(*, version_id: int, clip_ids: list[int] | None = None) -> dict:
    """Predict, with the version's final model, every active clip it has no
    prediction for (or those of ``clip_ids``), in batches of PREDICT_BATCH_CLIPS.
    Idempotent: predicted clips are skipped, a batch is stored at once."""
    version = selectors.version_get(version_id=version_id)
    if version is None:
        return {"version": version_id, "skipped": "unknown version"}
    missing = selectors.clips_without_prediction(version=version)
    if clip_ids is not None:
        wanted = set(clip_ids)
        missing = [c for c in missing if c in wanted]
    checkpoint = storage.absolute(version.artifact_path) / "final"
    start, stored = time.perf_counter(), 0
    size = settings.PREDICT_BATCH_CLIPS

    clips = list(
        Clip.objects.filter(pk__in=missing).select_related("patient").order_by("pk")
    )
    # A batch stacks its clips: group them by frame count and size first.
    groups: dict[tuple[int, int], list] = {}
    for clip in clips:
        groups.setdefault((clip.n_frames, clip.size_px), []).append(clip)
    # Loaded once for the pass: every batch reuses the model.
    model = checkpoint_open(checkpoint, device="auto") if clips else None
    for group in groups.values():
        for offset in range(0, len(group), size):
            liveness.stage("predicting", f"{stored} of {len(clips)} clips stored")
            stored += _predict_batch(
                version=version,
                checkpoint=model,
                clips=group[offset : offset + size],
            )
    if stored and version.is_active:
        services.clip_priorities_refresh(version=version)
    seconds = time.perf_counter() - start
    return {
        "version": version.number,
        "predicted": stored,
        "seconds": round(seconds, 3),
        "clips_per_s": round(stored / seconds, 2) if stored and seconds else None,
    }


def _predict_batch(*, version, checkpoint: LoadedCheckpoint, clips: list) -> int:
    tmp = storage.tmp_dir(f"predict-v{version.number}")
    try:
        rows = []
        for clip in clips:
            storage.link_or_copy(
                Path(clip.array_file.path), tmp / "clips" / f"{clip.pk}.npy"
            )
            rows.append(
                {
                    "clip_id": str(clip.pk),
                    "patient_id": storage.patient_pseudonym(clip.patient.code),
                    "array": f"clips/{clip.pk}.npy",
                    "speed": float(clip.speed),
                    "kinematics": clip.kinematics or {},
                }
            )
        manifest_write(tmp, rows=rows)
        predict(checkpoint=checkpoint, data=tmp, out=tmp / "out", device="auto")
        lines = (tmp / "out" / "predictions.jsonl").read_text().splitlines()
        predicted = [json.loads(line) for line in lines]
        return services.predictions_store(
            version=version,
            rows=[(int(p["clip_id"]), p["pred"], None) for p in predicted],
            source="final",
        )
    finally:
        storage.remove_tree(tmp)


def predictions_catch_up_run() -> dict:
    """Periodic: the active version predicts clips created since (new recordings)."""
    version = selectors.version_active()
    if version is None:
        return {"active": None}
    missing = selectors.clips_without_prediction(version=version)
    if missing:
        services.version_predict_request(version=version)
    # New votes move the model-panel disagreement the queue may rank by.
    services.clip_priorities_refresh(version=version)
    return {"active": version.number, "missing": len(missing)}

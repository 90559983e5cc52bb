"""A registry with the shape of a lab's, in miniature, for the query-count tests:
voted clips of several patients, snapshots whose manifests are on disk, finished
runs with their folds, versions with decisions, a prediction of every clip by
every version and each version's out-of-fold file.

``versions_add`` grows it, so a test can show that a page's queries stay the
same however many versions (and runs, snapshots and predictions) there are.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.models import ClipDistribution
from registry import services, storage
from registry.models import (
    ModelVersion,
    Prediction,
    RunStatus,
    Snapshot,
    TrainingFold,
    TrainingRun,
    VersionEvent,
)

METRIC_KEYS = ("emd", "mse", "jsd", "ce", "hi", "macro_f1", "mode_accuracy")
MAX_QUERIES = 25


def _snapshot(clips, *, number: int) -> Snapshot:
    """The first two thirds of ``clips``, with a manifest on disk."""
    inside = clips[: max(2, 2 * len(clips) // 3)]
    counts = {
        d.clip_id: d.counts
        for d in ClipDistribution.objects.filter(clip__in=inside).order_by("pk")
    }
    sha = f"{number:064x}"
    folder = storage.registry_dir("snapshots", sha)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "array": f"clips/{c.pk}.npy",
            "clip_id": str(c.pk),
            "patient_id": storage.patient_pseudonym(c.patient.code),
            "votes": counts[c.pk],
        }
        for c in inside
    ]
    (folder / "manifest.jsonl").write_text(
        "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    )
    meta = {"format": "spermgrade-manifest", "version": 1, "n_clips": len(rows)}
    (folder / "dataset.json").write_text(json.dumps(meta | {"manifest_sha256": sha}))
    return Snapshot.objects.create(
        sha256=sha,
        cutoff=timezone.now() - timedelta(days=1),
        min_votes=1,
        n_clips=len(inside),
        n_votes=sum(sum(v) for v in counts.values()),
        clip_ids=[c.pk for c in inside],
        fully_voted_ids=[c.pk for c in inside],
        path=storage.relative(folder),
    )


def _probs(clip_pk: int, number: int) -> list[float]:
    raw = [1.0 + (clip_pk * (g + 1) + number) % 5 for g in range(5)]
    return [x / sum(raw) for x in raw]


def version_add(clips, *, snapshot: Snapshot, number: int) -> ModelVersion:
    """A finished run (3 folds and a final model) and its registered version,
    which predicted every clip (out of fold inside its snapshot, with its final
    model outside) and wrote its out-of-fold file."""
    run = TrainingRun.objects.create(
        profile="tiny",
        queue="cpu",
        snapshot=snapshot,
        status=RunStatus.DONE,
        config={"model": {"name": "clinic"}, "notes": "x" * 200},
        log_tail="epoch 1/1\n" * 5,
    )
    for index in (0, 1, 2, TrainingFold.FINAL):
        TrainingFold.objects.create(
            run=run, index=index, status=RunStatus.DONE, metrics={"emd": 0.05}
        )
    mean = {k: 0.5 for k in METRIC_KEYS} | {"emd": 0.06 - number / 1000}
    folder = storage.registry_dir("models", f"run-{run.pk}")
    folder.mkdir(parents=True, exist_ok=True)
    version = ModelVersion.objects.create(
        number=number,
        run=run,
        snapshot=snapshot,
        profile="tiny",
        model_name="clinic",
        metrics={"k": 3, "mean": mean, "std": {k: 0.01 for k in METRIC_KEYS}},
        emd_mean=mean["emd"],
        emd_std=0.01,
        baseline_emd=0.1,
        artifact_path=storage.relative(folder),
        code_version="test",
    )
    inside = set(snapshot.clip_ids)
    counts = {
        d.clip_id: d.counts for d in ClipDistribution.objects.filter(clip__in=clips)
    }
    oof = [(c.pk, _probs(c.pk, number), i % 3) for i, c in enumerate(clips)]
    services.predictions_store(
        version=version, rows=[r for r in oof if r[0] in inside], source="oof"
    )
    services.predictions_store(
        version=version,
        rows=[(pk, p, None) for pk, p, _ in oof if pk not in inside],
        source=Prediction.Source.FINAL,
    )
    lines = []
    for c in clips:
        if c.pk in inside:
            total = sum(counts[c.pk])
            row = {
                "clip_id": c.pk,
                "patient_id": storage.patient_pseudonym(c.patient.code),
                "target": [n / total for n in counts[c.pk]],
                "pred": _probs(c.pk, number),
            }
            lines.append(json.dumps(row) + "\n")
    (folder / "oof_predictions.jsonl").write_text("".join(lines))
    VersionEvent.objects.create(
        version=version,
        action=VersionEvent.Action.HELD,
        reason="waiting for an admin",
    )
    return version


def registry_build(clips, *, n_versions: int) -> dict:
    """``n_versions`` versions on one snapshot, the first active."""
    snapshot = _snapshot(clips, number=1)
    versions = [
        version_add(clips, snapshot=snapshot, number=n + 1) for n in range(n_versions)
    ]
    active = versions[0]
    ModelVersion.objects.filter(pk=active.pk).update(is_active=True)
    VersionEvent.objects.create(
        version=active, action=VersionEvent.Action.PROMOTED, reason="first"
    )
    active.refresh_from_db()
    return {"clips": clips, "versions": versions, "active": active}


def versions_add(data: dict, n: int) -> list[ModelVersion]:
    """``n`` more versions, on a new snapshot, each with its run and predictions."""
    number = max(v.number for v in data["versions"])
    snapshot = _snapshot(data["clips"], number=number + 1)
    added = [
        version_add(data["clips"], snapshot=snapshot, number=number + 1 + k)
        for k in range(n)
    ]
    data["versions"] += added
    return added


def queries_of(client, url: str) -> int:
    """SQL queries of one request, caches warm (the first request fills them)."""
    assert client.get(url).status_code == 200, url
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


def assert_few_queries_however_many_versions(client, url: str, data: dict) -> None:
    """The page needs at most MAX_QUERIES queries, and as many after four more
    versions (with their runs, snapshot and predictions) as before."""
    before = queries_of(client, url)
    assert before <= MAX_QUERIES, (url, before)
    versions_add(data, 4)
    assert queries_of(client, url) == before, url

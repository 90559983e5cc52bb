"""Backup and verified restore on PostgreSQL, as a lab runs them.

A live instance (clips with frames and a video, a recording, votes with their
history, a snapshot, a registered and promoted model version with artifacts and
predictions) is backed up with ``manage.py backup`` and restored with
``manage.py restore`` into a second, empty database on the same server and an
empty media folder. Every vote, distribution, snapshot hash (recomputed from
the restored files), artifact checksum and table count must match. A backup
whose checksums fail is refused, naming the file, before anything is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from django.core.files.base import ContentFile
from django.db import connection

from annotation import services as annotation_services
from annotation.models import Recording
from operations import checksums
from registry import services as registry_services
from registry import storage
from registry.models import ModelVersion, Prediction, TrainingRun
from tests.conftest import REPO_ROOT
from tests.factories import ExpertFactory, PatientFactory
from tests.registry.conftest import make_voted_clips

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _url(settings_dict: dict) -> str:
    s = settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def manage(*args: str, database_url: str, media: Path, check: bool = True):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media),
    }
    result = subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def fingerprint(database_url: str, media: Path) -> dict:
    out = manage(
        "-m", "tests.operations.fingerprint", database_url=database_url, media=media
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def live_media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "live-media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def empty_database(postgres_url):
    """A second, empty database on the throwaway server."""
    server = postgres_url.rsplit("/", 1)[0]
    name = f"restored_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _model_version(snapshot, clips) -> ModelVersion:
    """A registered version as the training worker leaves it: artifacts in their
    folder, a row, predictions."""
    run = TrainingRun.objects.create(
        profile="tiny", queue="cpu", snapshot=snapshot, config={"model": {"name": "x"}}
    )
    folder = storage.registry_dir("models", f"run-{run.pk}")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    (folder / "model.pt").write_bytes(rng.bytes(50_000))
    (folder / "config.yaml").write_text("model:\n  name: x\n")
    (folder / "metrics.json").write_text(json.dumps({"emd": 0.05}))
    version = ModelVersion.objects.create(
        number=1,
        run=run,
        snapshot=snapshot,
        profile="tiny",
        model_name="clinic",
        emd_mean=0.05,
        emd_std=0.01,
        artifact_path=storage.relative(folder),
        code_version="test",
    )
    registry_services.version_auto_decide(version=version)  # the first: promoted
    for clip in clips:
        p = rng.dirichlet(np.ones(5))
        Prediction.objects.create(
            clip=clip,
            version=version,
            source="oof",
            fold=0,
            **dict(zip(("p_a", "p_b", "p_c", "p_d", "p_e"), map(float, p))),
        )
    return version


@pytest.fixture
def live_instance(live_media):
    from config.celery import ensure_broker_folders

    ensure_broker_folders()  # the promotion queues the version's predictions
    clips, experts = make_voted_clips(n_clips=8, n_patients=4, n_experts=5)
    clips[0].video_file.save("c0.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42" * 40))
    recording = Recording.objects.create(patient=PatientFactory(), is_synthetic=True)
    recording.source.save("field.mp4", ContentFile(os.urandom(20_000)))
    annotation_services.vote_create(expert=ExpertFactory(), clip=clips[0], grade="E")
    snapshot = registry_services.snapshot_create(min_votes=1)
    _model_version(snapshot, clips)
    return _url(connection.settings_dict)


def _backup_folder(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.name.startswith("spermgrade-")]
    return folder


def test_a_backup_restores_into_an_empty_instance_with_every_vote_hash_and_checksum(
    live_instance, live_media, empty_database, tmp_path
):
    out = tmp_path / "backups"
    said = manage(
        "manage.py",
        "backup",
        "--out",
        str(out),
        database_url=live_instance,
        media=live_media,
    )
    backup = _backup_folder(out)
    assert f"Wrote {backup}" in said.stdout and "postgresql database" in said.stdout
    manifest = checksums.manifest_read(backup)
    assert manifest.database["engine"] == "postgresql"
    assert (backup / "database.pgdump").read_bytes()[:5] == b"PGDMP"
    assert manifest.media["missing_at_backup"] == []
    # Snapshot arrays are hard links of the clips' arrays, in the backup too.
    assert any(f.link for f in manifest.files)
    # sha256sum -c checks an off-site copy without Python.
    sums = subprocess.run(
        ["sha256sum", "--quiet", "-c", checksums.SUMS], cwd=backup, capture_output=True
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr

    restored_media = tmp_path / "restored-media"
    said = manage(
        "manage.py",
        "restore",
        str(backup),
        database_url=empty_database,
        media=restored_media,
    )
    assert "every checksum matching" in said.stdout, said.stdout

    live = fingerprint(live_instance, live_media)
    restored = fingerprint(empty_database, restored_media)
    assert live["votes"] and live["distributions"] and live["predictions"]
    assert live["artifacts"]["v1"]["model.pt"] and live["active_version"] == [1]
    for key in live:
        assert restored[key] == live[key], key
    for stored, recomputed in restored["snapshots"].items():
        assert stored == recomputed  # the restored snapshot files hash as recorded
    assert restored["hard_links"]  # snapshot arrays still share the clips' files
    # A second restore into the now-used instance is refused.
    again = manage(
        "manage.py",
        "restore",
        str(backup),
        database_url=empty_database,
        media=restored_media,
        check=False,
    )
    assert again.returncode != 0 and "not empty" in again.stderr


def _tables(database_url: str) -> list:
    with psycopg.connect(database_url) as db:
        return db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()


def test_a_backup_whose_checksums_fail_is_refused_naming_the_file(
    live_instance, live_media, empty_database, tmp_path
):
    out = tmp_path / "backups"
    manage(
        "manage.py",
        "backup",
        "--out",
        str(out),
        database_url=live_instance,
        media=live_media,
    )
    backup = _backup_folder(out)
    manifest = checksums.manifest_read(backup)
    artifact = next(f.path for f in manifest.files if f.path.endswith("model.pt"))
    damaged = bytearray((backup / artifact).read_bytes())
    damaged[100] ^= 0xFF  # one flipped bit's worth: same size, other content
    (backup / artifact).write_bytes(bytes(damaged))

    restored_media = tmp_path / "restored-media"
    for extra in (["--check"], []):
        result = manage(
            "manage.py",
            "restore",
            *extra,
            str(backup),
            database_url=empty_database,
            media=restored_media,
            check=False,
        )
        assert result.returncode != 0
        assert artifact in result.stderr and "checksum differs" in result.stderr
    # Nothing was written: the database has no table, the media folder no file.
    assert _tables(empty_database) == []
    assert not any(p.is_file() for p in restored_media.rglob("*"))

    (backup / artifact).unlink()
    result = manage(
        "manage.py",
        "restore",
        "--check",
        str(backup),
        database_url=empty_database,
        media=restored_media,
        check=False,
    )
    assert f"{artifact}: missing from the backup" in result.stderr

    (backup / "database.pgdump").write_bytes(b"PGDMP not really")
    result = manage(
        "manage.py",
        "restore",
        str(backup),
        database_url=empty_database,
        media=restored_media,
        check=False,
    )
    assert "database.pgdump" in result.stderr and _tables(empty_database) == []

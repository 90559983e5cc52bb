"""The rules around backups: retention touches only complete backups, an
interrupted backup leaves no folder that looks complete, a manifest cannot point
outside its backup, a backup never goes into MEDIA_ROOT, and files the database
names but MEDIA_ROOT lacks are named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.files.base import ContentFile

from operations import checksums, databases, services
from operations.services import BackupError
from tests.conftest import REPO_ROOT
from tests.factories import ClipFactory


def _fake_backup(out: Path, name: str) -> Path:
    folder = out / name
    folder.mkdir(parents=True)
    (folder / checksums.MANIFEST).write_text("{}")
    return folder


def test_retention_keeps_the_newest_backups_and_touches_nothing_else(tmp_path):
    names = [f"spermgrade-2027010{d}T020000Z" for d in range(1, 6)]
    for name in names:
        _fake_backup(tmp_path, name)
    unrelated = tmp_path / "spermgrade-notes"
    unrelated.mkdir()
    incomplete = tmp_path / "spermgrade-20261231T020000Z"  # no manifest
    incomplete.mkdir()
    (tmp_path / "offsite.log").write_text("copied")

    removed = services.backup_prune(out=tmp_path, keep=2)

    assert sorted(p.name for p in removed) == names[:3]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*names[3:], unrelated.name, incomplete.name, "offsite.log"])


def test_an_interrupted_backup_leaves_no_folder_that_looks_complete(
    tmp_path, settings, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path / "media"

    def dump_fails(*, folder):
        (folder / "database.pgdump").write_bytes(b"half")
        raise databases.DatabaseBackupError("pg_dump failed: connection lost")

    monkeypatch.setattr(databases, "database_dump", dump_fails)
    with pytest.raises(BackupError, match="connection lost"):
        services.backup_create(out=tmp_path / "backups")
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [".lock"]


def test_a_backup_is_never_written_inside_media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    with pytest.raises(BackupError, match="must not be inside one another"):
        services.backup_create(out=tmp_path / "media" / "backups")
    with pytest.raises(BackupError, match="--keep must be at least 1"):
        services.backup_create(out=tmp_path / "backups", keep=0)


@pytest.mark.parametrize("path", ["../outside.npy", "/etc/passwd", "media/../../x"])
def test_a_manifest_naming_a_path_outside_the_backup_is_refused(tmp_path, path):
    manifest = checksums.Manifest(
        created_at="2027-01-01T02:00:00+00:00",
        code_version="test",
        database={"engine": "sqlite", "file": "database.sqlite3"},
        media={"files": 1},
        files=[checksums.FileEntry(path, "0" * 64, 1)],
    )
    checksums.manifest_write(tmp_path, manifest)
    with pytest.raises(BackupError, match="unsafe path"):
        services.backup_verify(backup=tmp_path)


def test_a_folder_without_a_manifest_is_not_a_backup(tmp_path):
    with pytest.raises(BackupError, match="not a complete backup"):
        services.backup_verify(backup=tmp_path)
    (tmp_path / checksums.MANIFEST).write_text(json.dumps({"format": "zip"}))
    with pytest.raises(BackupError, match="not a SpermGrade backup manifest"):
        services.backup_verify(backup=tmp_path)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_files_the_database_names_but_media_lacks_are_named(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    present, gone = ClipFactory(), ClipFactory()
    present.array_file.save("kept.npy", ContentFile(b"frames"))
    gone.array_file.save("lost.npy", ContentFile(b"frames"))
    Path(gone.array_file.path).unlink()

    result = services.backup_create(out=tmp_path / "backups")

    assert result.missing == [gone.array_file.name]
    assert result.manifest.media["missing_at_backup"] == [gone.array_file.name]
    held = {f.path for f in result.manifest.files}
    assert f"media/{present.array_file.name}" in held
    # The counts were read in the dump's own snapshot.
    assert result.manifest.database["tables"]["annotation_clip"] == 2


def test_the_compose_backup_service_backs_up_the_media_volume_with_pg_dump():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    service = compose["services"]["backup"]
    command = " ".join(service["command"])
    assert "manage.py backup --out /backups --keep" in command
    assert "media:/data/media" in service["volumes"]
    assert any(v.endswith(":/backups") for v in service["volumes"])
    assert service["profiles"] == ["backup"]  # not started by `up`
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"apt-get install [^\n]*postgresql-client", dockerfile)
    # The host folder of the backups stays out of the image and the repository.
    assert "backups" in (REPO_ROOT / ".dockerignore").read_text().split()


def test_pg_dump_gets_libpq_options_only_not_djangos_or_psycopgs(monkeypatch):
    """DATABASE_URL's sslmode goes to pg_dump; server-side binding and the
    prepared-statement threshold (config.env adds both) would make libpq refuse
    the connection string ("invalid connection option")."""
    from config.env import database_from_url

    monkeypatch.delenv("DATABASE_PREPARE_THRESHOLD", raising=False)
    db = database_from_url(
        "DATABASE_URL", "postgres://grader:secret@db.lab:5433/sperm?sslmode=require"
    )
    assert db["OPTIONS"]["prepare_threshold"] is not None
    conninfo = databases._conninfo(db)
    assert "sslmode='require'" in conninfo and "port='5433'" in conninfo
    for word in ("prepare_threshold", "server_side_binding", "secret"):
        assert word not in conninfo

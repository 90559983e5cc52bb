"""import_recordings: a folder plus a CSV; clear per-row errors; re-runs skip files."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Clip, Recording
from annotation.services import enqueue
from tests.conftest import SHARED_DATA
from tests.workers import recording_files as rf

pytestmark = pytest.mark.django_db

REAL_VIDEO = SHARED_DATA / "svia_sperm_videos" / "videos" / "S_0001.mp4"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def sent(monkeypatch):
    calls = []

    class Broker:
        conf = SimpleNamespace(task_always_eager=False)

        def send_task(self, name, *, kwargs):
            assert name == enqueue.RECORDING_PREPROCESS
            calls.append(kwargs["recording_id"])

    monkeypatch.setattr(enqueue, "current_app", Broker())
    return calls


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "field.mp4").write_bytes(rf.synthetic_mp4())
    (folder / "other.mp4").write_bytes(rf.synthetic_mp4(seed=1))
    (folder / "photo.mp4").write_bytes(rf.png_bytes())
    return folder


def write_csv(folder, lines):
    (folder / "recordings.csv").write_text(
        "patient,filename,um_per_px,fps\n" + "\n".join(lines) + "\n"
    )


def test_good_rows_are_imported_and_queued_and_bad_rows_named(
    folder, sent, capsys, django_capture_on_commit_callbacks
):
    write_csv(
        folder,
        [
            "P-1,field.mp4,0.5,15",
            "P-2,other.mp4,,",
            "P-3,photo.mp4,0.5,",
            "P-4,missing.mp4,,",
            "P-5,field.mp4,abc,",
            ",other.mp4,,",
            "P-6,../../etc/passwd,,",
        ],
    )

    with (
        pytest.raises(CommandError, match="5 rows failed"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        call_command("import_recordings", str(folder))

    err = capsys.readouterr().err
    assert "line 4: photo.mp4: “photo.mp4” is not a video" in err
    assert "line 5: missing.mp4 is not in" in err
    assert "line 6: um_per_px 'abc' is not a number" in err
    assert "line 7: the patient code is empty" in err
    assert "line 8: filename '../../etc/passwd' must name a file inside" in err
    recordings = {r.original_name: r for r in Recording.objects.all()}
    assert set(recordings) == {"field.mp4", "other.mp4"}
    assert recordings["field.mp4"].um_per_px == 0.5
    assert recordings["field.mp4"].fps == 15.0
    assert recordings["other.mp4"].um_per_px is None
    assert sorted(sent) == sorted(r.pk for r in recordings.values())
    assert all(r.status == Recording.Status.QUEUED for r in recordings.values())


def test_running_the_import_again_skips_files_already_there(
    folder, sent, django_capture_on_commit_callbacks
):
    write_csv(folder, ["P-1,field.mp4,0.5,", "P-2,other.mp4,,"])
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_recordings", str(folder))
        call_command("import_recordings", str(folder))
    assert Recording.objects.count() == 2 and len(sent) == 2


def test_csv_without_the_required_columns_is_refused(folder, sent):
    (folder / "recordings.csv").write_text("name,file\nP-1,field.mp4\n")
    with pytest.raises(CommandError, match="missing: patient, filename"):
        call_command("import_recordings", str(folder))


def test_missing_csv_is_explained(folder):
    with pytest.raises(CommandError, match="give the CSV with --csv"):
        call_command("import_recordings", str(folder))


def test_sync_import_of_a_real_recording_cuts_clips(tmp_path):
    if not REAL_VIDEO.is_file():
        pytest.skip(f"real recording {REAL_VIDEO} is absent (no ../shared)")
    folder = tmp_path / "real"
    folder.mkdir()
    shutil.copy(REAL_VIDEO, folder / "S_0001.mp4")
    (folder / "list.csv").write_text("patient,filename\nSVIA-2,S_0001.mp4\n")

    call_command(
        "import_recordings",
        str(folder),
        "--csv",
        str(folder / "list.csv"),
        "--sync",
        "--max-clips",
        "2",
    )

    recording = Recording.objects.get()
    assert recording.status == Recording.Status.DONE, recording.error_message
    assert 1 <= Clip.objects.filter(recording=recording).count() <= 2

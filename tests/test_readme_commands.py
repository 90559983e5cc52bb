"""Every management command the README names runs as the README writes it.

The commands are read out of the README itself (code blocks and inline code), with
every optional ``[...]`` part included and the placeholders (FOLDER, SHA, N) filled
in, and run with ``manage.py`` in a scratch instance (an SQLite file, the
filesystem broker) the way a newcomer runs them. A command the README names that
no test here (or the one named in COVERED_ELSEWHERE) runs fails the first test.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.scratch import Instance

README = REPO_ROOT / "README.md"
RUN_HERE = {
    "demo_recordings",
    "import_recordings",
    "training_run",
    "export_dataset",
    "import_dataset",
    "createsuperuser",
    "backup",
    "restore",
}
COVERED_ELSEWHERE = {
    "check": "tests/test_settings.py::"
    "test_production_settings_pass_the_deploy_check_without_a_warning",
}


def readme_commands() -> dict[str, list[str]]:
    """{command name: [its argument lists as written]} from the README's code:
    fenced blocks line by line, inline spans (which may wrap) whole."""
    text = README.read_text()
    fence = r"```[a-z]*\n(.*?)```"
    lines = [
        line
        for block in re.findall(fence, text, flags=re.S)
        for line in block.replace("\\\n", " ").splitlines()
    ]
    spans = [
        " ".join(span.split())
        for span in re.findall(r"`([^`]+)`", re.sub(fence, "", text, flags=re.S))
    ]
    found: dict[str, list[str]] = {}
    for snippet in lines + spans:
        for match in re.finditer(r"manage\.py\s+([a-z_]+)([^#]*)", snippet):
            found.setdefault(match.group(1), []).append(
                " ".join(match.group(2).split())
            )
    return found


def written(name: str, **fill: str) -> list[str]:
    """The README's longest argument list for ``name``, optional parts included."""
    args = max(readme_commands()[name], key=len)
    args = args.replace("[", "").replace("]", "")
    return [name, *(fill.get(word, word) for word in shlex.split(args))]


def test_every_command_the_readme_names_is_run_by_a_test():
    named = set(readme_commands())
    assert named == RUN_HERE | set(COVERED_ELSEWHERE)
    for where in COVERED_ELSEWHERE.values():
        path, test = where.split("::")
        assert f"def {test}(" in (REPO_ROOT / path).read_text()


def test_the_readme_export_command_has_its_options():
    assert written("export_dataset", SHA="s", N="1") == [
        "export_dataset",
        "--out",
        "export.zip",
        "--snapshot",
        "s",
        "--model-version",
        "1",
        "--licence",
        "CC BY 4.0",
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Instance:
    lab = Instance(tmp_path_factory.mktemp("readme") / "lab")
    lab.manage("migrate", "--noinput")
    # A small demo panel (make demo's first step, smaller): 18 clips, 6 patients.
    lab.manage(
        "demo_data", "--clips", "18", "--experts", "6", "--patients", "6", "--seed", "2"
    )
    return lab


@pytest.mark.slow
def test_the_readme_commands_run_as_written(lab, tmp_path):
    from tests.workers import recording_files as rf

    # demo_recordings: a synthetic full-field recording cut into clips.
    out = lab.manage(*written("demo_recordings"))
    assert "done" in out
    assert lab.query("select count(*) from annotation_recording")[0][0] >= 1

    # import_recordings FOLDER --csv recordings.csv
    folder = lab.root / "incoming"
    folder.mkdir()
    (folder / "field.mp4").write_bytes(rf.synthetic_mp4())
    (lab.root / "recordings.csv").write_text(
        "patient,filename,um_per_px,fps\nP-readme,field.mp4,0.5,15\n"
    )
    out = lab.manage(*written("import_recordings", FOLDER=str(folder)))
    assert out.startswith("1 imported"), out

    # training_run --profile clinic --sync: the clinic profile, here, in minutes.
    out = lab.manage(*written("training_run"))
    assert re.search(r"Run \d+ done: v1", out), out
    sha = lab.query("select sha256 from registry_snapshot")[0][0]

    # export_dataset --out export.zip --snapshot SHA --model-version N --licence ...
    out = lab.manage(*written("export_dataset", SHA=sha, N="1"))
    bundle = lab.root / "export.zip"
    assert "Wrote" in out and bundle.is_file()
    with zipfile.ZipFile(bundle) as zf:
        assert {"folds.json", "predictions.csv", "snapshot.json"} <= set(zf.namelist())
        assert "CC BY 4.0" in zf.read("datasheet.md").decode()

    # import_dataset export.zip, into another instance; a second time changes nothing.
    other = Instance(tmp_path / "other")
    other.manage("migrate", "--noinput")
    os.link(bundle, other.root / "export.zip")
    out = other.manage(*written("import_dataset"))
    n_votes = other.query("select count(*) from annotation_vote")[0][0]
    assert n_votes == lab.query("select count(*) from annotation_vote")[0][0] > 0
    again = other.manage(*written("import_dataset"))
    assert again != out
    assert other.query("select count(*) from annotation_vote")[0][0] == n_votes


def test_the_readme_backup_and_restore_commands_run_as_written(lab, tmp_path):
    """Every backup and restore line the README writes, on the demo's SQLite: the
    backup of the lab restores into a fresh instance with the same rows and
    files (the PostgreSQL round trip is tests/operations/test_backup_restore.py)."""
    for args in readme_commands()["backup"]:
        out = lab.manage("backup", *shlex.split(args))
        assert "sqlite database" in out, out
    backups = sorted((lab.root / "backups").glob("spermgrade-*"))
    assert backups and len(backups) <= 7  # --keep 7
    other = Instance(tmp_path / "fresh")  # no database file, no media yet
    restored = other.root / "var" / "media"
    other.env["MEDIA_ROOT"] = str(restored)  # not the test session's, as lab's is
    # --check first: it changes nothing, so the restore after it still finds
    # the instance empty.
    forms = sorted(set(readme_commands()["restore"]), key=lambda a: "--check" not in a)
    assert forms == ["--check BACKUP", "BACKUP"], forms
    for args in forms:
        words = [str(backups[-1]) if w == "BACKUP" else w for w in shlex.split(args)]
        out = other.manage("restore", *words)
        assert ("files match" if "--check" in args else "every checksum") in out
    tables = [
        t for (t,) in lab.query("select name from sqlite_master where type = 'table'")
    ]
    for table in tables:
        if not table.startswith("sqlite_"):
            sql = f'select count(*) from "{table}"'
            assert other.query(sql) == lab.query(sql), table
    assert other.query("select * from annotation_vote order by id") == lab.query(
        "select * from annotation_vote order by id"
    )
    lab_media = Path(lab.env.get("MEDIA_ROOT") or lab.root / "var" / "media")

    def files(root: Path) -> list:  # empty folders are not kept, nor registry/tmp
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

    assert files(lab_media) == files(restored)


def _answer_prompts(fd: int, answers: list[tuple[str, str]], timeout: float) -> str:
    """Read a pseudo-terminal; type each answer, in turn, once its prompt (a
    regular expression matched at the end of the output) appears."""
    seen, pending = "", list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096).decode(errors="replace")
        except OSError:  # the command exited and closed its side
            break
        if not chunk:
            break
        seen += chunk
        if pending and re.search(pending[0][0] + r"\s*$", seen):
            os.write(fd, (pending.pop(0)[1] + "\n").encode())
            seen += "\n"
    return seen


def test_createsuperuser_as_written_makes_an_admin_who_can_sign_in(lab):
    # docker compose exec web python manage.py createsuperuser: interactive, on a
    # terminal (Django refuses without one).
    assert written("createsuperuser") == ["createsuperuser"]
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "manage.py"), *written("createsuperuser")],
        cwd=lab.root,
        env=lab.env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        close_fds=True,
    )
    os.close(secondary)
    password = "a-Lab-Admin-pass-2026"
    seen = _answer_prompts(
        primary,
        [
            (r"Username[^:]*:", "labhead"),
            (r"Email address:", "head@lab.example"),
            (r"Password:", password),
            (r"Password \(again\):", password),
        ],
        timeout=120,
    )
    assert process.wait(timeout=30) == 0, seen
    os.close(primary)
    assert "Superuser created successfully" in seen
    rows = lab.query(
        "select is_superuser, is_staff from auth_user where username = 'labhead'"
    )
    assert rows == [(1, 1)]

"""Hostile bundles: values the platform would never create, compression bombs,
names an export never writes and accounts that are not the bundle's are refused
with the reason, before anything is written; an import's memory stays bounded."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from annotation.models import Clip, Vote
from exports.bundle import bundle_write
from exports.importer import BundleError, bundle_import
from tests.conftest import REPO_ROOT
from tests.registry.conftest import make_voted_clips

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bundle(tmp_path) -> Path:
    make_voted_clips(n_clips=4, n_patients=2, n_experts=3)
    out = tmp_path / "export.zip"
    bundle_write(out)
    return out


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n != "checksums.sha256"}


def signed(path: Path, contents: dict[str, bytes], *, extra=()) -> Path:
    """A bundle whose checksums match its (changed) members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
        for name, data in extra:
            zf.writestr(name, data)
        zf.writestr(
            "checksums.sha256",
            "".join(
                f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                for n, d in sorted([*contents.items(), *extra])
            ),
        )
    return path


def clip_rows(contents) -> list[dict]:
    return [json.loads(line) for line in contents["clips.jsonl"].splitlines()]


def with_clip_rows(contents, rows) -> dict:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    return {**contents, "clips.jsonl": text.encode()}


def refused(path: Path, message: str) -> None:
    before = (Clip.objects.count(), Vote.objects.count())
    with pytest.raises(BundleError, match=message):
        bundle_import(path)
    assert (Clip.objects.count(), Vote.objects.count()) == before


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fps", float("nan"), "not JSON"),  # json.dumps writes NaN, loads took it
        ("source_fps", float("inf"), "not JSON"),
        ("fps", -3.0, "fps must lie in"),
        ("fps", "15", "fps must be a number"),
        ("track", "[[1, 2]]", "track must be a list"),
        ("track", [[1, float("nan")]], "not JSON"),
        ("track", [[1, "2"]], "a track coordinate must be a number"),
        ("speed", 1e300, "speed must lie in"),
        ("latent_quality", 7, "latent_quality must lie in"),
        ("n_frames", 10**9, "n_frames must lie in"),
        ("size_px", True, "size_px must be an integer"),
        ("speed_unit", "parsec", "speed_unit must be one of"),
        ("clip", "C-" + "a" * 298, "clip must be a clip pseudonym"),
        ("patient", "=HYPERLINK(1)", "patient must be a pseudonym"),
        ("kinematics", {"vcl": "=1+1"}, "is not plain text"),
        ("kinematics", {"=cmd": 1.0}, "is not plain text"),
        ("synthetic", "yes", "synthetic must be true or false"),
    ],
)
def test_a_clip_value_the_platform_never_creates_is_refused(
    bundle, tmp_path, field, value, message
):
    contents = members(bundle)
    rows = clip_rows(contents)
    rows[1][field] = value
    refused(signed(tmp_path / "bad.zip", with_clip_rows(contents, rows)), message)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("seconds_spent", "NaN", "seconds_spent must lie in"),
        ("seconds_spent", "inf", "seconds_spent must lie in"),
        ("seconds_spent", "86401", "seconds_spent must lie in"),
        ("created_at", "yesterday", "created_at 'yesterday' is not a time"),
        ("created_at", "2026-01-01T00:00:00", "must carry its time zone"),
        ("expert", "admin", "expert must be an expert pseudonym"),
        ("expert", "=HYPERLINK(1)", "expert must be an expert pseudonym"),
        ("is_repeat", "2", "is_repeat must be 0 or 1"),
    ],
)
def test_a_vote_value_the_platform_never_creates_is_refused(
    bundle, tmp_path, column, value, message
):
    contents = members(bundle)
    lines = contents["votes.csv"].decode().splitlines()
    header = lines[0].split(",")
    first = lines[1].split(",")
    first[header.index(column)] = value
    lines[1] = ",".join(first)
    changed = {**contents, "votes.csv": ("\n".join(lines) + "\n").encode()}
    refused(signed(tmp_path / "bad.zip", changed), message)


def test_votes_are_never_added_to_a_local_account_with_the_pseudonyms_name(
    bundle, tmp_path
):
    contents = members(bundle)
    name = contents["votes.csv"].decode().splitlines()[1].split(",")[1]
    assert re.fullmatch(r"E-[0-9a-f]{16}", name)
    local = get_user_model().objects.create_user(username=name, password="x-123456")
    refused(bundle, f"An account named {name} exists here and was not made by")
    assert not Vote.objects.filter(expert=local).exists()
    # Accounts an earlier import made are the same experts: a second bundle of
    # theirs adds to them.
    local.delete()
    first = bundle_import(bundle)
    assert first["experts"] == 3
    extra = tmp_path / "more.zip"
    rows = clip_rows(contents)
    changed = with_clip_rows(contents, rows)
    changed["datasheet.md"] = b"# Another bundle of the same panel\n"
    signed(extra, changed)
    n_users = get_user_model().objects.count()
    assert bundle_import(extra)["experts"] == 3
    assert get_user_model().objects.count() == n_users


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../etc/cron.d/x", "a file an export never writes"),
        ("/abs/path.npy", "a file an export never writes"),
        ("clips/" + "a" * 300 + ".npy", "a file an export never writes"),
        ("clips/C-0123456789abcdef.npy.exe", "a file an export never writes"),
    ],
)
def test_a_member_an_export_never_writes_is_refused(bundle, tmp_path, name, message):
    bad = signed(tmp_path / "bad.zip", members(bundle), extra=[(name, b"x")])
    refused(bad, message)


def test_a_member_listed_twice_is_refused(bundle, tmp_path):
    contents = members(bundle)
    bad = tmp_path / "dup.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        signed(bad, contents, extra=[("votes.csv", contents["votes.csv"])])
    refused(bad, "holds votes.csv twice")


def _npy(shape, dtype=np.uint8) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(shape, dtype))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (_npy((4, 32, 32, 3), np.float32), "a clip here is uint8"),
        (_npy((4, 32, 32)), "a clip here is uint8"),
        (_npy((241, 8, 8, 3)), "at most 240 frames"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': '|u1'", "not a readable clip array"),
        (_npy((4, 32, 32, 3))[:-10], "not as long as its header says"),
        (b"PK\x03\x04 not an array at all", "not a readable clip array"),
    ],
)
def test_a_clip_array_that_is_not_a_clip_is_refused(bundle, tmp_path, array, message):
    contents = members(bundle)
    name = next(n for n in contents if n.startswith("clips/"))
    refused(signed(tmp_path / "bad.zip", {**contents, name: array}), message)


def _bomb(path: Path, base: dict[str, bytes], name: str, size: int) -> Path:
    """``name`` becomes ``size`` zero bytes, deflated (about 1000:1), listed with
    its true checksum."""
    digest = hashlib.sha256()
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open(name, "w", force_zip64=True) as fh:
            for _ in range(size // len(block)):
                fh.write(block)
                digest.update(block)
        sums = {name: digest.hexdigest()}
        for other, data in base.items():
            if other != name:
                zf.writestr(other, data)
                sums[other] = hashlib.sha256(data).hexdigest()
        zf.writestr(
            "checksums.sha256", "".join(f"{h}  {n}\n" for n, h in sorted(sums.items()))
        )
    return path


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("FORMAT.json", "FORMAT.json declares 268,435,456 bytes; at most 65,536"),
        ("clips/ARRAY", "declares 268,435,456 bytes; at most"),
        ("clips.jsonl", "expands 1,0"),
    ],
)
def test_compression_bombs_are_refused_before_they_are_read(
    bundle, tmp_path, member, message
):
    contents = members(bundle)
    if member == "clips/ARRAY":
        member = next(n for n in contents if n.startswith("clips/"))
    bomb = _bomb(tmp_path / "bomb.zip", contents, member, 256 << 20)
    assert bomb.stat().st_size < 2 << 20
    refused(bomb, message)


@pytest.mark.slow
def test_importing_a_bomb_keeps_the_process_memory_bounded(bundle, tmp_path):
    """manage.py import_dataset on a 1 GiB FORMAT.json bomb (1 MB zipped): the
    command refuses it, and its peak resident memory stays under 400 MB (Django,
    numpy and torch's import alone take about 250 MB here; reading the member
    would add 1 GiB)."""
    from tests.scratch import Instance

    bomb = _bomb(tmp_path / "bomb.zip", members(bundle), "FORMAT.json", 1 << 30)
    lab = Instance(tmp_path / "lab")
    lab.manage("migrate", "--noinput")
    # A fresh wrapper process whose only child is the import: its children's
    # peak is that command's own peak resident size.
    wrapper = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, str(REPO_ROOT / "manage.py")]
        + ["import_dataset", str(bomb)],
        cwd=lab.root,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, peak_kb = map(int, result.stdout.split())
    assert code == 1, result.stderr
    assert "FORMAT.json declares 1,073,741,824 bytes" in result.stderr
    assert "Traceback" not in result.stderr
    assert 50 * 1024 < peak_kb < 400 * 1024, peak_kb


def test_the_command_line_says_why_without_a_traceback(bundle, tmp_path):
    from tests.scratch import Instance

    bad = signed(tmp_path / "bad.zip", members(bundle), extra=[("../evil", b"x")])
    lab = Instance(tmp_path / "lab")
    lab.manage("migrate", "--noinput")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "import_dataset", str(bad)],
        cwd=lab.root,
        env=lab.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "a file an export never writes (../evil)" in result.stderr
    assert "Traceback" not in result.stderr

"""Export bundles: the round trip into the instance reproduces clips, votes and
distributions; checksums refuse tampered, truncated and foreign zips; nothing
identifying leaks; modeling trains on the zip; the pages are for admins only."""

import csv
import io
import json
import re
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from annotation import services as annotation_services
from annotation.models import Clip, ClipDistribution, Job, Vote, VoteHistory
from exports.bundle import bundle_write
from exports.importer import BundleError, bundle_import
from exports.pseudonyms import clip_pseudonym, expert_pseudonym
from tests.factories import ExpertFactory
from tests.modeling.conftest import TINY_TRAIN_SETS
from tests.registry.conftest import (  # noqa: F401 (fixtures)
    _broker_folders,
    eager_celery,
    make_voted_clips,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world():
    clips, experts = make_voted_clips(n_clips=8, n_patients=4, n_experts=4)
    for i, expert in enumerate(experts):
        expert.email = f"person{i}@clinic.example"
        expert.first_name, expert.last_name = f"Given{i}", f"Family{i}"
        expert.save()
    return clips, experts


def _export(tmp_path, **kwargs) -> Path:
    out = tmp_path / "export.zip"
    bundle_write(out, **kwargs)
    return out


def test_the_round_trip_reproduces_clips_votes_and_distributions(world, tmp_path):
    clips, experts = world
    # one clip sampled from a 30 fps recording (every 2nd frame, 15 fps)
    Clip.objects.filter(pk=clips[0].pk).update(
        fps=15.0, source_fps=30.0, frame_stride=2.0
    )
    clips[0].refresh_from_db()
    out = _export(tmp_path)
    result = bundle_import(out)
    assert result["clips"] == len(clips) and result["votes"] == 8 * 4
    new_of = result["clip_ids"]
    User = get_user_model()
    for clip in clips:
        copy = Clip.objects.get(pk=new_of[clip_pseudonym(clip.pk)])
        assert (
            Path(copy.array_file.path).read_bytes()
            == Path(clip.array_file.path).read_bytes()
        )
        assert copy.speed == clip.speed and copy.kinematics == clip.kinematics
        assert (copy.fps, copy.frame_stride) == (clip.fps, clip.frame_stride)
        assert copy.source_fps == (clip.source_fps or clip.fps)
        assert (copy.frame_start, copy.frame_end) == (clip.frame_start, clip.frame_end)
        # times travel rounded down to EXPORT_TIME_RESOLUTION_SECONDS (1)
        original = sorted(
            (
                expert_pseudonym(v.expert_id),
                v.grade,
                v.created_at.replace(microsecond=0),
                v.seconds_spent,
            )
            for v in Vote.objects.filter(clip=clip)
        )
        imported = sorted(
            (
                User.objects.get(pk=v.expert_id).username,
                v.grade,
                v.created_at,
                v.seconds_spent,
            )
            for v in Vote.objects.filter(clip=copy)
        )
        assert imported == original
        a = ClipDistribution.objects.get(clip=clip)
        b = ClipDistribution.objects.get(clip=copy)
        assert [a.n_a, a.n_b, a.n_c, a.n_d, a.n_e] == [
            b.n_a,
            b.n_b,
            b.n_c,
            b.n_d,
            b.n_e,
        ]
    # the same bundle again changes nothing
    before = (Clip.objects.count(), Vote.objects.count())
    assert bundle_import(out)["already_imported"] is True
    assert (Clip.objects.count(), Vote.objects.count()) == before


def _rewrite(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            data = change(name, a.read(name))
            if data is not None:
                b.writestr(name, data)


def test_tampered_truncated_and_foreign_bundles_are_refused_and_write_nothing(
    world, tmp_path
):
    out = _export(tmp_path)
    n_clips = Clip.objects.count()
    imported = Path(settings.MEDIA_ROOT) / "clips" / "imported"
    files_before = set(imported.rglob("*")) if imported.exists() else set()
    tampered = tmp_path / "tampered.zip"
    _rewrite(
        out, tampered, lambda n, d: d.replace(b",B,", b",E,") if n == "votes.csv" else d
    )
    with pytest.raises(BundleError, match="votes.csv does not match its checksum"):
        bundle_import(tampered)
    dropped = tmp_path / "dropped.zip"
    _rewrite(out, dropped, lambda n, d: None if n == "vote_history.csv" else d)
    with pytest.raises(BundleError, match="do not match its checksum list"):
        bundle_import(dropped)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    with pytest.raises(BundleError):
        bundle_import(truncated)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(BundleError, match="not a SpermGrade export"):
        bundle_import(foreign)
    assert Clip.objects.count() == n_clips
    files_after = set(imported.rglob("*")) if imported.exists() else set()
    assert files_after == files_before


def _resign(src: Path, dst: Path, change) -> None:
    """Rewrite members and their checksums: a consistent-looking bundle."""
    contents = {}
    with zipfile.ZipFile(src) as a:
        for name in a.namelist():
            if name != "checksums.sha256":
                contents[name] = change(name, a.read(name))
    import hashlib

    with zipfile.ZipFile(dst, "w") as b:
        for name, data in contents.items():
            b.writestr(name, data)
        b.writestr(
            "checksums.sha256",
            "".join(
                f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                for n, d in sorted(contents.items())
            ),
        )


def test_history_is_linked_to_the_imported_votes(world, tmp_path):
    clips, _ = world
    out = _export(tmp_path)
    result = bundle_import(out)
    new_ids = list(result["clip_ids"].values())
    history = VoteHistory.objects.filter(clip_id__in=new_ids)
    assert history.count() == 8 * 4
    for row in history:
        assert row.vote is not None
        assert (row.vote.clip_id, row.vote.expert_id) == (row.clip_id, row.expert_id)


@pytest.mark.parametrize(
    "change, message",
    [
        # a vote for a clip the bundle does not list
        (
            lambda n, d: (
                re.sub(rb"\nC-[0-9a-f]{16}", b"\nC-" + b"0" * 16, d, count=1)
                if n == "votes.csv"
                else d
            ),
            "names clips",
        ),
        # a grade this instance cannot store
        (
            lambda n, d: d.replace(b",B,", b",Q,", 1) if n == "votes.csv" else d,
            "votes.csv line [0-9]+: grade must be one of A-E",
        ),
    ],
)
def test_inconsistent_rows_are_refused_whole(world, tmp_path, change, message):
    out = _export(tmp_path)
    bad = tmp_path / "bad.zip"
    _resign(out, bad, change)
    before = (Clip.objects.count(), Vote.objects.count(), VoteHistory.objects.count())
    with pytest.raises(BundleError, match=message):
        bundle_import(bad)
    after = (Clip.objects.count(), Vote.objects.count(), VoteHistory.objects.count())
    assert after == before


def test_nothing_identifying_is_in_the_bundle(world, tmp_path):
    clips, experts = world
    out = _export(tmp_path)
    secrets = {settings.MEDIA_ROOT.as_posix(), str(Path(settings.MEDIA_ROOT))}
    for user in get_user_model().objects.all():
        secrets |= {user.username, user.email, user.first_name, user.last_name}
    for clip in clips:
        secrets.add(clip.patient.code)
        secrets.add(clip.array_file.name)  # the stored name carries the id
    secrets.discard("")
    with zipfile.ZipFile(out) as bundle:
        for name in bundle.namelist():
            text = bundle.read(name).decode("utf-8", errors="ignore")
            for secret in secrets:
                assert secret not in text and secret not in name, (secret, name)
        votes = bundle.read("votes.csv").decode().splitlines()
        header = votes[0].split(",")
        assert header[:3] == ["clip", "expert", "grade"]
        assert all(row.split(",")[0].startswith("C-") for row in votes[1:])
        assert all(row.split(",")[1].startswith("E-") for row in votes[1:])
        sheet = bundle.read("datasheet.md").decode()
        assert "Synthetic**: yes" in sheet and "votes: 32" in sheet


def test_pseudonyms_are_stable_here_and_differ_on_another_instance(settings):
    first = expert_pseudonym(7)
    assert expert_pseudonym(7) == first
    settings.PSEUDONYM_KEY = "another instance"
    assert expert_pseudonym(7) != first


def test_modeling_trains_on_the_zip_without_the_platform(db, tmp_path, settings):
    from modeling import cli

    # Eight patients: with four, the greedy stratified split may put three in one
    # fold (the pseudonyms, and so the visiting order, follow the database ids),
    # leaving a training side of one patient.
    clips, _ = make_voted_clips(n_clips=16, n_patients=8, n_experts=5)
    # Clips below the snapshots' minimum: one with 4 votes, one with 1, one with none.
    Vote.objects.filter(clip=clips[0]).first().delete()
    for vote in Vote.objects.filter(clip=clips[1])[1:]:
        vote.delete()
    Vote.objects.filter(clip=clips[2]).delete()
    assert settings.SNAPSHOT_MIN_VOTES == 5

    out = _export(tmp_path)
    with zipfile.ZipFile(out) as zf:
        rule = json.loads(zf.read("FORMAT.json"))["training_manifest"]
        rows = [json.loads(line) for line in zf.read("manifest.jsonl").splitlines()]
        listed = [json.loads(line) for line in zf.read("clips.jsonl").splitlines()]
        datasheet = zf.read("datasheet.md").decode()
        names = set(zf.namelist())
    assert rule["min_votes"] == 5
    assert (rule["n_clips"], rule["n_clips_below_min_votes"]) == (13, 3)
    below = {clip_pseudonym(c.pk) for c in clips[:3]}
    assert {r["clip_id"] for r in rows}.isdisjoint(below) and len(rows) == 13
    assert all(sum(r["votes"]) == 5 for r in rows)
    assert {c["clip"] for c in listed if not c["in_training_manifest"]} == below
    assert {f"clips/{name}.npy" for name in below} <= names  # still exported
    assert "13 clips with at least 5 votes" in datasheet
    code = cli.main(
        [
            "train",
            "--data",
            str(out),
            "--out",
            str(tmp_path / "run"),
            *TINY_TRAIN_SETS,
        ]
    )
    assert code == 0
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["n_clips"] == 13 and np.isfinite(summary["mean"]["emd"])


def test_the_training_manifest_follows_the_configured_minimum(db, tmp_path, settings):
    make_voted_clips(n_clips=6, n_patients=3, n_experts=3)
    settings.SNAPSHOT_MIN_VOTES = 4
    with zipfile.ZipFile(_export(tmp_path)) as zf:
        assert zf.read("manifest.jsonl") == b""
        assert json.loads(zf.read("FORMAT.json"))["training_manifest"]["n_clips"] == 0
    settings.SNAPSHOT_MIN_VOTES = 3
    with zipfile.ZipFile(_export(tmp_path)) as zf:
        assert len(zf.read("manifest.jsonl").splitlines()) == 6


@pytest.mark.django_db(transaction=True)
def test_an_admin_exports_in_the_browser_flow_and_downloads_it(
    world,
    eager_celery,  # noqa: F811
    tmp_path,
):
    admin = Client()
    admin.force_login(
        annotation_services.admin_create(username="ex", password="x-123456")
    )
    response = admin.post(reverse("export_start"), {"licence": "CC BY 4.0"})
    assert response.status_code == 302
    job = Job.objects.get(kind="export")
    assert job.status == Job.Status.DONE, job.error_message
    download = admin.get(reverse("export_download", args=[job.pk]))
    assert download.status_code == 200
    path = tmp_path / "downloaded.zip"
    path.write_bytes(b"".join(download.streaming_content))
    with zipfile.ZipFile(path) as bundle:
        assert "CC BY 4.0" in bundle.read("datasheet.md").decode()
    page = admin.get(reverse("export_home"))
    assert page.status_code == 200 and b"download" in page.content


def test_export_pages_are_for_admins_only(world, client, tmp_path):
    expert = Client()
    expert.force_login(ExpertFactory())
    for method, name, args in [
        ("get", "export_home", []),
        ("post", "export_start", []),
        ("get", "export_download", [1]),
        ("post", "import_upload", []),
    ]:
        url = reverse(name, args=args)
        assert getattr(expert, method)(url).status_code == 403, url
        anonymous = getattr(client, method)(url)
        assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_an_admin_imports_through_the_page_and_a_bad_file_is_refused(
    world,
    tmp_path,
    eager_celery,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """The page only uploads and queues; a worker job imports (here in the same
    process) and the page shows each import's outcome."""
    from annotation.models import Job

    out = _export(tmp_path)
    admin = Client()
    admin.force_login(
        annotation_services.admin_create(username="im", password="x-123456")
    )
    bad = tmp_path / "bad.zip"
    shutil.copy(out, bad)
    with bad.open("r+b") as fh:
        fh.seek(200)
        fh.write(b"garbage!")
    before = Clip.objects.count()
    with bad.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
        refused = admin.post(reverse("import_upload"), {"bundle": fh}, follow=True)
    assert b"queued" in refused.content and Clip.objects.count() == before
    failed = Job.objects.get(kind="import")
    assert failed.status == "failed" and failed.error_message.startswith(
        "not imported:"
    )
    page = admin.get(reverse("export_home")).content.decode()
    assert "not imported:" in page and "bad.zip" in page
    with out.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("import_upload"), {"bundle": fh}, follow=True)
    done = Job.objects.filter(kind="import").latest("id")
    assert done.status == "done" and done.result["clips"] == 8
    assert (
        "8 clips, 32 votes from 4 experts"
        in admin.get(reverse("export_home")).content.decode()
    )
    assert not any((Path(settings.MEDIA_ROOT) / "imports").iterdir())  # uploads gone


def _csv(bundle: zipfile.ZipFile, name: str) -> list[dict]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(bundle.read(name).decode())))


def test_crowdkit_rows_are_the_first_presentations_of_votes_csv(world, tmp_path):
    from annotation.models import RepeatVote

    clips, experts = world
    RepeatVote.objects.create(expert=experts[0], clip=clips[0], grade="E")
    out = _export(tmp_path)
    with zipfile.ZipFile(out) as bundle:
        votes = _csv(bundle, "votes.csv")
        crowd = _csv(bundle, "crowdkit.csv")
    assert sum(v["is_repeat"] == "1" for v in votes) == 1
    first = sorted(
        (v["clip"], v["expert"], v["grade"]) for v in votes if v["is_repeat"] == "0"
    )
    assert sorted((c["task"], c["worker"], c["label"]) for c in crowd) == first
    assert len(first) == 8 * 4


def test_distribution_rows_match_a_hand_computation(world, tmp_path):
    import math

    clips, _ = world
    out = _export(tmp_path)
    with zipfile.ZipFile(out) as bundle:
        rows = {r["clip"]: r for r in _csv(bundle, "distributions.csv")}
    for clip in clips:
        d = ClipDistribution.objects.get(clip=clip)
        counts = [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        n = sum(counts)
        p = [c / n for c in counts]
        row = rows[clip_pseudonym(clip.pk)]
        assert [int(row[f"n_{g}"]) for g in "abcde"] == counts
        assert int(row["n_votes"]) == n
        assert [float(row[f"p_{g}"]) for g in "abcde"] == pytest.approx(p, abs=1e-6)
        assert row["mode"] == "ABCDE"[counts.index(max(counts))]
        mean = sum(share * grade for share, grade in zip(p, range(1, 6)))
        assert float(row["mean_grade"]) == pytest.approx(mean, abs=1e-6)
        bits = -sum(share * math.log2(share) for share in p if share)
        assert float(row["entropy_bits"]) == pytest.approx(bits, abs=1e-6)
        # Leik's ordinal dispersion: 2 * sum min(F, 1 - F) / (K - 1)
        cum, leik = 0.0, 0.0
        for share in p[:-1]:
            cum += share
            leik += 2 * min(cum, 1 - cum)
        assert float(row["ordinal_dispersion"]) == pytest.approx(leik / 4, abs=1e-6)


def test_the_import_form_takes_bundles_past_the_small_body_limit(
    world,
    tmp_path,
    settings,
    eager_celery,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # The form streams to a temporary file: up to MAX_UPLOAD_MB for admins, while
    # everybody else's bodies stay under DATA_UPLOAD_MAX_MEMORY_SIZE.
    out = _export(tmp_path)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    assert out.stat().st_size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    Clip.objects.all().delete()
    expert = Client()
    expert.force_login(ExpertFactory())
    with out.open("rb") as fh:
        response = expert.post(reverse("import_upload"), {"bundle": fh})
    assert response.status_code == 403 and Clip.objects.count() == 0
    admin = Client()
    admin.force_login(
        annotation_services.admin_create(username="big", password="x-123456")
    )
    with out.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("import_upload"), {"bundle": fh}, follow=True)
    assert Clip.objects.count() == 8  # the worker job imported the large upload


def test_rows_come_in_pseudonym_order_with_rounded_times_and_a_key_id(
    world, tmp_path, settings
):
    clips, _ = world
    settings.EXPORT_TIME_RESOLUTION_SECONDS = 60
    Vote.objects.update(created_at=datetime(2026, 3, 4, 5, 6, 37, 123456, tzinfo=UTC))
    out = _export(tmp_path)
    with zipfile.ZipFile(out) as zf:
        listed = [
            json.loads(line)["clip"] for line in zf.read("clips.jsonl").splitlines()
        ]
        manifest = [
            json.loads(line)["clip_id"]
            for line in zf.read("manifest.jsonl").splitlines()
        ]
        votes = list(csv.DictReader(io.StringIO(zf.read("votes.csv").decode())))
        history = list(
            csv.DictReader(io.StringIO(zf.read("vote_history.csv").decode()))
        )
        distributions = [
            row.split(",")[0] for row in zf.read("distributions.csv").decode().split()
        ][1:]
        fmt = json.loads(zf.read("FORMAT.json"))
    # The clips' pseudonyms in id order are not sorted (else sorting would pair
    # them with ids); the bundle's rows are.
    by_id = [clip_pseudonym(c.pk) for c in sorted(clips, key=lambda c: c.pk)]
    assert by_id != sorted(by_id)
    assert listed == sorted(by_id) and manifest == sorted(manifest)
    assert distributions == sorted(distributions)
    keys = [(v["clip"], v["expert"]) for v in votes]
    assert keys == sorted(keys)
    assert [(h["clip"], h["expert"]) for h in history] == sorted(
        (h["clip"], h["expert"]) for h in history
    )
    assert {datetime.fromisoformat(v["created_at"]) for v in votes} == {
        datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    }
    assert fmt["time_resolution_seconds"] == 60
    key = fmt["pseudonym_key_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", key) and key not in settings.PSEUDONYM_KEY
    settings.PSEUDONYM_KEY = "another instance's key"
    (tmp_path / "other").mkdir()
    with zipfile.ZipFile(_export(tmp_path / "other")) as zf:
        assert json.loads(zf.read("FORMAT.json"))["pseudonym_key_id"] != key

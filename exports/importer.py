"""Import a bundle (``exports.bundle``) into this instance, after checking it.

Every checksum is verified before anything is written; a tampered, truncated or
foreign zip is refused with a clear message. The import itself is one database
transaction (media files written for it are removed if it fails), and a bundle
already imported is recognised by the hash of its checksums file and skipped.
Imported experts get accounts named by their pseudonym, with no usable password
(an admin may activate them); patients keep the bundle's pseudonyms as codes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import OuterRef, Subquery

from annotation.errors import DomainError
from annotation.models import (
    Clip,
    ExpertProfile,
    Patient,
    RepeatVote,
    Vote,
    VoteHistory,
)
from annotation.roles import EXPERTS_GROUP
from exports.bundle import FORMAT, VERSION
from exports.models import ImportedBundle


class BundleError(DomainError):
    status_code = 400


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(
            f"{Path(path).name} is not a readable zip file ({exc}); export it again."
        ) from None


def bundle_verify(path: str | Path) -> str:
    """Check format, version and every checksum; returns the checksums' hash."""
    with _open(Path(path)) as bundle:
        names = set(bundle.namelist())
        if "FORMAT.json" not in names or "checksums.sha256" not in names:
            raise BundleError(
                "This zip is not a SpermGrade export (FORMAT.json or "
                "checksums.sha256 is missing)."
            )
        try:
            fmt = json.loads(bundle.read("FORMAT.json"))
            listing = bundle.read("checksums.sha256")
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise BundleError(f"The bundle is damaged: {exc}") from None
        if fmt.get("format") != FORMAT:
            raise BundleError(f"Unknown bundle format {fmt.get('format')!r}.")
        if fmt.get("version") != VERSION:
            raise BundleError(
                f"Bundle format version {fmt.get('version')!r}; this SpermGrade "
                f"reads version {VERSION}."
            )
        expected = {}
        for line in listing.decode().splitlines():
            digest, _, name = line.partition("  ")
            expected[name] = digest
        members = names - {"checksums.sha256"}
        if set(expected) != members:
            extra = sorted(members - set(expected))[:3]
            missing = sorted(set(expected) - members)[:3]
            raise BundleError(
                f"The bundle's files do not match its checksum list (unlisted: "
                f"{extra}, missing: {missing}); it was altered or truncated."
            )
        for name, digest in expected.items():
            sha = hashlib.sha256()
            try:
                with bundle.open(name) as fh:
                    while block := fh.read(1 << 20):
                        sha.update(block)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise BundleError(f"{name} is damaged or truncated: {exc}") from None
            if sha.hexdigest() != digest:
                raise BundleError(
                    f"{name} does not match its checksum: the bundle was altered."
                )
        return hashlib.sha256(listing).hexdigest()


BATCH = 5000


def _rows(bundle: zipfile.ZipFile, name: str):
    with bundle.open(name) as fh:
        yield from csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8"))


def _when(text: str):
    return datetime.fromisoformat(text) if text else None


def bundle_import(path: str | Path) -> dict:
    """Import a verified bundle; returns what was created (or that it was there)."""
    fingerprint = bundle_verify(path)
    if ImportedBundle.objects.filter(checksums_sha256=fingerprint).exists():
        return {"already_imported": True, "clips": 0, "votes": 0}
    written: list[str] = []
    try:
        with _open(Path(path)) as bundle, transaction.atomic():
            result = _import(bundle, written)
            ImportedBundle.objects.create(
                checksums_sha256=fingerprint,
                n_clips=result["clips"],
                n_votes=result["votes"],
            )
    except Exception:
        for name in written:
            default_storage.delete(name)
        raise
    return {"already_imported": False, **result}


def _import(bundle: zipfile.ZipFile, written: list[str]) -> dict:
    User = get_user_model()
    from django.contrib.auth.models import Group

    experts_group, _ = Group.objects.get_or_create(name=EXPERTS_GROUP)
    meta = [json.loads(line) for line in bundle.read("clips.jsonl").splitlines()]
    synthetic = json.loads(bundle.read("FORMAT.json")).get("synthetic", False)
    clip_of: dict[str, Clip] = {}
    for row in meta:
        patient, _ = Patient.objects.get_or_create(
            code=row["patient"][:64], defaults={"is_synthetic": row["synthetic"]}
        )
        clip = Clip(
            patient=patient,
            frame_start=row["frame_start"],
            frame_end=row["frame_end"],
            n_frames=row["n_frames"],
            fps=row["source_fps"],
            size_px=row["size_px"],
            track=row["track"],
            speed=row["speed"],
            speed_unit=row["speed_unit"],
            kinematics=row["kinematics"] or {},
            is_synthetic=row["synthetic"],
            latent_quality=row.get("latent_quality"),
        )
        array = f"clips/{row['clip']}.npy"
        if array in bundle.namelist():
            name = default_storage.save(
                f"clips/imported/{row['clip']}.npy", ContentFile(bundle.read(array))
            )
            written.append(name)
            clip.array_file.name = name
        if row.get("video"):
            name = default_storage.save(
                f"clips/imported/{row['clip']}.mp4",
                ContentFile(bundle.read(row["video"])),
            )
            written.append(name)
            clip.video_file.name = name
        clip.save()
        clip_of[row["clip"]] = clip
    # Votes and history stream through in batches: memory does not grow with them.
    expert_of: dict[str, object] = {}

    def expert(pseudonym: str):
        if pseudonym not in expert_of:
            user, created = User.objects.get_or_create(username=pseudonym)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(experts_group)
                ExpertProfile.objects.get_or_create(
                    user=user,
                    defaults={"code": pseudonym[:32], "is_simulated": synthetic},
                )
            expert_of[pseudonym] = user
        return expert_of[pseudonym]

    n_votes = 0
    plain, repeats = [], []

    def flush() -> None:
        Vote.objects.bulk_create(plain, batch_size=BATCH)
        RepeatVote.objects.bulk_create(repeats, batch_size=BATCH)
        plain.clear()
        repeats.clear()

    for v in _rows(bundle, "votes.csv"):
        model = RepeatVote if v["is_repeat"] == "1" else Vote
        row = model(
            clip=clip_of[v["clip"]],
            expert=expert(v["expert"]),
            grade=v["grade"],
            created_at=_when(v["created_at"]),
            updated_at=_when(v["updated_at"]),
            seconds_spent=float(v["seconds_spent"] or 0),
        )
        (repeats if model is RepeatVote else plain).append(row)
        n_votes += 1
        if len(plain) + len(repeats) >= BATCH:
            flush()
    flush()
    history = []
    for h in _rows(bundle, "vote_history.csv"):
        history.append(
            VoteHistory(
                expert=expert(h["expert"]),
                clip=clip_of[h["clip"]],
                action=h["action"],
                grade=h["grade"],
                previous_grade=h["previous_grade"],
                is_repeat=h["is_repeat"] == "1",
                at=_when(h["at"]),
            )
        )
        if len(history) >= BATCH:
            VoteHistory.objects.bulk_create(history)
            history.clear()
    VoteHistory.objects.bulk_create(history)
    # Link each history row to its vote, in the database.
    VoteHistory.objects.filter(
        clip__in=[c.pk for c in clip_of.values()], is_repeat=False, vote__isnull=True
    ).update(
        vote_id=Subquery(
            Vote.objects.filter(
                clip_id=OuterRef("clip_id"), expert_id=OuterRef("expert_id")
            ).values("pk")[:1]
        )
    )
    return {
        "clips": len(clip_of),
        "votes": n_votes,
        "experts": len(expert_of),
        "clip_ids": {name: clip.pk for name, clip in clip_of.items()},
    }

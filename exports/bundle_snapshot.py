"""A bundle exported with a snapshot trains on that snapshot: its ``manifest.jsonl``
holds the snapshot's own rows (each clip's votes as they stood at the cutoff, its
speed, kinematics and array hash as frozen then), not today's votes.

The snapshot's manifest names clips by their database ids, which a bundle never
carries, so each row's ``clip_id`` becomes the clip's pseudonym and ``array``
``clips/<pseudonym>.npy``; every other key is the snapshot's, byte for byte. The
exporting instance, which holds the pseudonym key, gets the snapshot's manifest
back by the recipe in ``REBUILD``, and its SHA-256 is the snapshot's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from annotation.errors import DomainError
from exports.pseudonyms import clip_pseudonym
from registry import storage

# Written into FORMAT.json, snapshot.json and the datasheet.
REBUILD = (
    "On the exporting instance (it holds the pseudonym key): give each row of "
    "manifest.jsonl back its clip's database id as clip_id (the id whose clip "
    "pseudonym it is) and clips/<id>.npy as array, order the rows by id, and write "
    "each as json.dumps(row, sort_keys=True) plus a newline (modeling.manifest."
    "manifest_write does this): the SHA-256 of those lines is snapshot.json's sha256."
)
TARGET = (
    "the snapshot's clips and each one's normalised vote histogram as it stood at "
    "the snapshot's cutoff (each expert's grade then, hidden repeats excluded)"
)
# The keys a snapshot row may have: all are carried as they are but the two
# that name the clip by its id. A key added to snapshots later must be judged
# here before it can leave the instance.
_CARRIED = {
    "patient_id",
    "votes",
    "speed",
    "kinematics",
    "synthetic",
    "array_sha256",
    "latent_quality",
}


class SnapshotUnexportable(DomainError):
    status_code = 409


class SnapshotManifest:
    """The snapshot's manifest.jsonl, checked against its SHA-256 and indexed by
    clip id (offsets only: a hundred thousand rows are not held in memory)."""

    def __init__(self, snapshot) -> None:
        self.snapshot = snapshot
        self.root = storage.absolute(snapshot.path)
        self.path = self.root / "manifest.jsonl"
        label = f"Snapshot {snapshot.sha256[:12]}"
        if not self.path.is_file():
            raise SnapshotUnexportable(
                f"{label}'s manifest is missing from the media storage, so its "
                "frozen votes cannot be exported; export without it or take a new "
                "snapshot."
            )
        self._at: dict[int, tuple[int, int]] = {}
        digest = hashlib.sha256()
        offset = 0
        with self.path.open("rb") as fh:
            for line in fh:
                digest.update(line)
                row = json.loads(line)
                extra = set(row) - _CARRIED - {"clip_id", "array"}
                if extra:
                    raise SnapshotUnexportable(
                        f"{label}'s rows carry {sorted(extra)}, which the export "
                        "does not know how to pseudonymise."
                    )
                self._at[int(row["clip_id"])] = (offset, len(line))
                offset += len(line)
        if digest.hexdigest() != snapshot.sha256:
            raise SnapshotUnexportable(
                f"{label}'s manifest no longer matches its SHA-256 (the file changed "
                "on disk); export without it or take a new snapshot."
            )

    @property
    def clip_ids(self) -> set[int]:
        return set(self._at)

    def rows(self) -> Iterator[tuple[int, dict, Path]]:
        """(clip id, pseudonymised row, the snapshot's array file) in pseudonym
        order."""
        with self.path.open("rb") as fh:
            for clip_id in sorted(self._at, key=clip_pseudonym):
                offset, length = self._at[clip_id]
                fh.seek(offset)
                row = json.loads(fh.read(length))
                name = clip_pseudonym(clip_id)
                source = self.root / row["array"]
                carried = {k: v for k, v in row.items() if k in _CARRIED}
                yield (
                    clip_id,
                    {**carried, "clip_id": name, "array": f"clips/{name}.npy"},
                    source,
                )

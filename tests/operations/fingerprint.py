"""What an instance holds, as one JSON-able dict, to compare a restored instance
with the one it was backed up from.

Run against any instance: ``python -m tests.operations.fingerprint`` prints it
for the database and MEDIA_ROOT of the environment (DATABASE_URL, MEDIA_ROOT).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): _sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def fingerprint() -> dict:
    from django.conf import settings

    from annotation.models import RepeatVote, Vote, VoteHistory
    from annotation.selectors import distribution_for_clips
    from modeling.manifest import manifest_sha256
    from operations.databases import table_counts
    from registry import storage
    from registry.models import ModelVersion, Prediction, Snapshot, VersionEvent

    media = Path(settings.MEDIA_ROOT)
    inodes: dict[tuple[int, int], list[str]] = {}
    for path in sorted(media.rglob("*")):
        if path.is_file():
            stat = path.stat()
            key = (stat.st_dev, stat.st_ino)
            inodes.setdefault(key, []).append(path.relative_to(media).as_posix())
    return {
        "tables": table_counts(),
        "votes": list(Vote.objects.order_by("pk").values()),
        "repeat_votes": list(RepeatVote.objects.order_by("pk").values()),
        "vote_history": list(VoteHistory.objects.order_by("pk").values()),
        "distributions": {
            str(k): v for k, v in sorted(distribution_for_clips().items())
        },
        # Stored hash -> the hash of the manifest on disk, recomputed.
        "snapshots": {
            s.sha256: manifest_sha256(storage.absolute(s.path))
            for s in Snapshot.objects.order_by("pk")
        },
        "artifacts": {
            f"v{v.number}": _files(storage.absolute(v.artifact_path))
            for v in ModelVersion.objects.order_by("number")
        },
        "active_version": list(
            ModelVersion.objects.filter(is_active=True).values_list("number", flat=True)
        ),
        "version_events": list(VersionEvent.objects.order_by("pk").values()),
        "predictions": list(Prediction.objects.order_by("pk").values()),
        "media": _files(media),
        "hard_links": sorted(group for group in inodes.values() if len(group) > 1),
    }


if __name__ == "__main__":
    import django
    from django.core.serializers.json import DjangoJSONEncoder

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    print(json.dumps(fingerprint(), cls=DjangoJSONEncoder, sort_keys=True))

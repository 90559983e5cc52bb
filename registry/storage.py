"""Where the model loop keeps its files (under MEDIA_ROOT), patient pseudonyms and
the code version recorded with every model.

    registry/snapshots/<sha256>/     a snapshot's manifest (arrays hard-linked)
    registry/runs/<run id>/          a run's working folder (deleted when it ends)
    registry/models/run-<run id>/    a registered version's artifacts
    registry/tmp/                    half-written folders, renamed into place
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from django.conf import settings


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def registry_dir(*parts: str) -> Path:
    return media_root().joinpath("registry", *parts)


def relative(path: Path) -> str:
    return str(Path(path).relative_to(media_root()))


def absolute(relative_path: str) -> Path:
    return media_root() / relative_path


def tmp_dir(prefix: str) -> Path:
    """A fresh folder on the same filesystem as the final place (so a rename is
    atomic)."""
    path = registry_dir("tmp", f"{prefix}-{uuid.uuid4().hex[:12]}")
    path.mkdir(parents=True)
    return path


def remove_tree(path: Path | None) -> None:
    if path is not None and Path(path).exists():
        shutil.rmtree(path, ignore_errors=True)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` at ``target`` (a copy only across filesystems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def patient_pseudonym(code: str) -> str:
    """A stable pseudonym for a patient code: keyed HMAC, so it cannot be reversed
    without PSEUDONYM_KEY and stays the same across snapshots."""
    key = settings.PSEUDONYM_KEY.encode()
    digest = hmac.new(key, code.encode(), hashlib.sha256).hexdigest()
    return f"P-{digest[:16]}"


@functools.cache
def code_version() -> str:
    """SPERMGRADE_CODE_VERSION, else the git commit of the checkout, else
    'unknown' (an image built without .git should set the variable)."""
    if settings.CODE_VERSION:
        return settings.CODE_VERSION
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if result.returncode != 0:
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=5,
    ).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "")

"""A scratch SpermGrade instance for tests that run ``manage.py`` as a person does."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


class Instance:
    """A scratch SpermGrade: its own var folder, SQLite database and broker."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "SPERMGRADE_"))
        }
        self.env.update(
            DEBUG="true",
            SPERMGRADE_VAR_DIR=str(root / "var"),
            PYTHONWARNINGS="ignore",
        )

    def manage(self, *args: str, timeout: int = 600) -> str:
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"manage.py {' '.join(args)}: {result.stdout[-3000:]}"
            f"{result.stderr[-3000:]}"
        )
        return result.stdout

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.root / "var" / "spermgrade.sqlite3") as db:
            return db.execute(sql).fetchall()

    def demo_export(self, out: str = "export.zip", *demo_args: str) -> Path:
        """A fresh small demo (panel clips and a recording's unvoted clips),
        exported to ``out`` under the instance's folder."""
        self.manage("migrate", "--noinput")
        self.manage("demo_data", *demo_args)
        self.manage("demo_recordings")
        self.manage("export_dataset", "--out", out)
        return self.root / out

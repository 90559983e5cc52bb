"""The modeling package installs on its own (no Django) and trains on an export
from any folder: a fresh virtual environment, no network, no checkout on the path."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.modeling.conftest import TINY_TRAIN_SETS, tiny_manifest


def test_the_modeling_extra_pins_what_requirements_pin():
    extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["modeling"]
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line.strip()):
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    for requirement in extra:
        name, version = requirement.split("==")
        assert pins.get(name.lower()) == version, requirement


@pytest.mark.slow
def test_pip_installs_modeling_into_a_fresh_venv_and_it_trains_from_anywhere(
    tmp_path,
):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("modeling", "video"):
        shutil.copytree(
            REPO_ROOT / name,
            source / name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # The dependencies come from this environment's site-packages (no network);
    # the package itself from the source folder.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # The wheel is built with this environment's setuptools (offline), then
    # installed into the fresh environment as a researcher's pip would.
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-index",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("spermgrade-*.whl"))
    import zipfile

    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"modeling", "video"}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    data = tiny_manifest(tmp_path / "data", n_clips=8, n_patients=4)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run(
        [str(python), "-c", "import modeling, sys; print(modeling.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(site), where  # the installed copy, not the checkout
    train = subprocess.run(
        [
            str(venv / "bin" / "spermgrade-model"),
            "train",
            "--data",
            str(data),
            "--out",
            str(work / "run"),
            *TINY_TRAIN_SETS,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    assert (work / "run" / "metrics.json").is_file()

"""The modeling package installs on its own (no Django) and trains on an export
from any folder: a fresh virtual environment, no network, no checkout on the path."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile

import pytest

from tests.conftest import REPO_ROOT


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


def readme_offline_block() -> str:
    """The README's offline-training commands, exactly as written."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text[text.index("**Offline training without the platform.**") :]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


def test_the_readme_offline_block_uses_the_cpu_build_the_profile_and_held_out_folds():
    block = readme_offline_block()
    assert "--index-url https://download.pytorch.org/whl/cpu" in block
    assert 'pip install ".[modeling]"' in block
    assert "train --profile clinic" in block
    assert "--held-out" in block


@pytest.mark.slow
def test_the_readme_offline_block_runs_as_written_in_a_fresh_venv(tmp_path):
    """HOME is a scratch folder with the clone in ~/spermgrade and a fresh demo's
    export in ~/exports; the README's block runs in bash as written. Offline: the
    fresh environment sees this one's packages (a .pth file) and pip may not use an
    index, so every requirement is found installed and only the package is new."""
    from tests.scratch import Instance

    home = tmp_path / "home"
    clone = home / "spermgrade"
    clone.mkdir(parents=True)
    for name in ("modeling", "video"):
        shutil.copytree(
            REPO_ROOT / name, clone / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, clone / name)
    before = sorted(p.relative_to(clone) for p in clone.rglob("*"))

    lab = Instance(tmp_path / "lab")
    bundle = lab.demo_export(
        "export.zip", "--clips", "12", "--experts", "6", "--patients", "6"
    )
    (home / "exports").mkdir()
    shutil.copy(bundle, home / "exports" / "export.zip")

    # `python3` is the interpreter this environment was made from (same version);
    # right after the venv line, a .pth file lets the fresh environment see this
    # one's packages, and the old setuptools the venv is seeded with goes (it
    # would hide this one's, which torch needs): the test's only additions.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys._base_executable)
    first, rest = readme_offline_block().split("\n", 1)
    assert first.startswith("python3 -m venv ~/sg")
    see_deps = (
        'python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_path('
        f"'purelib'), 'deps.pth').write_text('{sysconfig.get_path('purelib')}')\""
    )
    script = (
        f"set -euo pipefail\n{first}\n{see_deps}\n"
        f"pip uninstall --yes --quiet setuptools\n{rest}"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PIP_")
    }
    env.update(
        HOME=str(home),
        PATH=f"{bin_dir}:/usr/bin:/bin",
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE="/dev/null",
        PIP_NO_BUILD_ISOLATION="0",
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    # Only the package was installed: no CUDA libraries, no second torch.
    installed = re.findall(r"Successfully installed (.*)", result.stdout)
    assert installed == ["spermgrade-0.1.0"], installed
    assert "Warning" not in result.stderr, result.stderr[-3000:]

    # The clone is as it was: no build/, no *.egg-info, nothing else new.
    assert sorted(p.relative_to(clone) for p in clone.rglob("*")) == before

    # The installed copy trained the clinic profile and scored held-out clips.
    run = home / "exports" / "run1"
    config = (run / "config.yaml").read_text()
    assert "name: clinic" in config and "size: 64" in config
    assert "optimizer: adamw" in config
    folds = json.loads((run / "folds.json").read_text())
    evaluated = json.loads((home / "exports" / "eval1" / "metrics.json").read_text())
    assert evaluated["n_clips"] == len(folds["fold_0"]["test"]) > 0
    predicted = [
        json.loads(line)["clip_id"]
        for line in (home / "exports" / "eval1" / "predictions.jsonl").open()
    ]
    assert sorted(predicted) == sorted(folds["fold_0"]["test"])
    cv = json.loads((run / "metrics.json").read_text())
    with zipfile.ZipFile(home / "exports" / "export.zip") as zf:
        rule = json.loads(zf.read("FORMAT.json"))["training_manifest"]
    assert cv["n_clips"] == rule["n_clips"] and rule["n_clips_below_min_votes"] > 0

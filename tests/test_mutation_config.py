"""Mutation testing stays set up and out of CI's time: ``make mutate`` exists, mutmut
mutates the files issue 28 names, and neither ``make test`` nor .ci/run calls it
(docs/mutation.md). Nothing here runs mutmut."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT

MUTATED = (
    "modeling/losses.py",
    "modeling/metrics.py",
    "modeling/cv.py",
    "modeling/paired.py",
    "modeling/controls.py",
    "modeling/models/rostfine.py",
)


def _makefile() -> str:
    return (REPO_ROOT / "Makefile").read_text()


def _recipe(target: str) -> str:
    """The lines of ``target``'s rule in the Makefile, its header included."""
    match = re.search(
        rf"^{target}:.*\n(?:\t.*\n|.*\\\n)*", _makefile(), flags=re.MULTILINE
    )
    assert match, f"no `{target}:` rule in the Makefile"
    return match.group(0)


def test_make_mutate_is_a_documented_target_that_runs_mutmut():
    rule = _recipe("mutate")
    assert "## " in rule.splitlines()[0], "make help lists only targets with ## text"
    assert "mutmut run" in rule
    assert "--max-children" in rule
    names = re.search(
        r"^MUTATE_NAMES \?=(.*?)(?<!\\)\n", _makefile(), flags=re.MULTILINE | re.DOTALL
    )
    assert names, "MUTATE_NAMES is not set in the Makefile"
    for path in MUTATED:
        module = path.removesuffix(".py").replace("/", ".")
        assert module in names.group(1), f"make mutate does not run {module}"


def test_mutmut_mutates_the_six_files_and_runs_only_the_modeling_tests():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert set(MUTATED) <= set(config["only_mutate"])
    selection = config["pytest_add_cli_args_test_selection"]
    assert selection[0] == "tests/modeling"
    assert "not slow" in selection
    assert "mutmut==3.8.1" in (REPO_ROOT / "requirements-dev.txt").read_text()
    assert (REPO_ROOT / "docs" / "mutation.md").is_file()


def test_neither_make_test_nor_ci_runs_the_mutation_tests():
    assert "mutate" not in _recipe("test")
    assert "mutate" not in _recipe("test-sqlite")
    assert "mutate" not in (REPO_ROOT / ".ci" / "run").read_text()

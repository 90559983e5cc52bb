"""The one-way house: imports between the top-level packages flow one way.

workers -> registry -> annotation -> video and workers -> modeling -> video
(annotation and registry may use modeling's pure helpers: grades, the synthetic
panel, the manifest and config); dashboards -> registry, annotation; nothing
outside workers imports it (Celery finds tasks by name); modeling and video import
no Django, Celery or app code; jobs (liveness) imports no app and every app may
use it; operations (health, backups) reads annotation and registry and is
imported by none. Read from the code's own imports, so the rule holds
by itself.
"""

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = (
    "annotation",
    "config",
    "dashboards",
    "exports",
    "jobs",
    "modeling",
    "operations",
    "registry",
    "video",
    "workers",
)
# Which app packages each may import (config only by workers' Celery app use).
ALLOWED = {
    "jobs": set(),
    "annotation": {"jobs", "modeling", "video"},
    "registry": {"annotation", "jobs", "modeling", "video"},
    "dashboards": {"annotation", "jobs", "registry", "modeling"},
    "exports": {"annotation", "jobs", "registry", "modeling"},
    # Health checks, backup and restore: read the apps' models, imported by none.
    "operations": {"annotation", "jobs", "registry"},
    "workers": {
        "annotation",
        "exports",
        "jobs",
        "registry",
        "modeling",
        "video",
        "config",
    },
}
PURE = {"modeling": {"video"}, "video": set()}  # package -> app packages it may use
FRAMEWORKS = {"django", "rest_framework", "celery", "kombu"}


def _modules(package: str):
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _imported_tops(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _edges() -> dict[str, set[str]]:
    edges = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in _modules(package):
            edges[package] |= (_imported_tops(path) & set(PACKAGES)) - {package}
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if not state.get(target) and (found := visit(target, [*stack, target])):
                return found
        state[node] = 2
        return None

    for node in sorted(edges):
        if not state.get(node) and (found := visit(node, [node])):
            return found
    return None


def test_no_import_cycle_between_top_level_packages():
    assert _cycle(_edges()) is None, f"import cycle: {_cycle(_edges())}"


def test_the_cycle_finder_finds_a_cycle():
    # Guards the test above: a finder that never finds anything passes vacuously.
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_apps_import_only_the_packages_below_them(package):
    extra = _edges()[package] - ALLOWED[package]
    assert not extra, f"{package} imports {sorted(extra)}"


def test_nothing_outside_workers_imports_workers():
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for package in PACKAGES
        if package != "workers"
        for path in _modules(package)
        if "workers" in _imported_tops(path)
    ]
    assert not offenders, offenders


@pytest.mark.parametrize("package", sorted(PURE))
def test_pure_packages_import_no_framework_or_app_code(package):
    allowed = PURE[package] | {package}
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(bad)
        for path in _modules(package)
        if (bad := _imported_tops(path) & (FRAMEWORKS | set(PACKAGES)) - allowed)
    }
    assert not offenders, offenders


def test_modeling_and_video_import_without_django():
    # A subprocess where importing Django fails: the pure packages must still import.
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0] in {'django', 'rest_framework', 'celery'}:\n"
        "        raise ImportError('forbidden in pure code: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import pkgutil, importlib, modeling, video\n"
        "for pkg in (modeling, video):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if m.name.endswith('__main__'):\n"
        "            continue\n"
        "        importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_modules_stay_under_600_lines():
    long = {
        str(path.relative_to(REPO_ROOT)): n
        for package in PACKAGES
        for path in _modules(package)
        if (n := path.read_text().count("\n")) > 600
    }
    assert not long, f"split these by topic: {long}"


def test_grades_are_defined_once():
    from annotation.models import GRADES as APP_GRADES
    from annotation.models import Grade
    from modeling.grades import GRADES

    assert tuple(APP_GRADES) == GRADES == ("A", "B", "C", "D", "E")
    assert [choice.value for choice in Grade] == list(GRADES)
    assert Grade.A.label == "A (good)" and Grade.E.label == "E (bad)"

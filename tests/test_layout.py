import subprocess
import sys

from tests.conftest import REPO_ROOT


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
        "import pkgutil, importlib, modeling, workers.video\n"
        "for pkg in (modeling, workers.video):\n"
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

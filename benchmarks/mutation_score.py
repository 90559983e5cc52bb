"""Mutation score per file from mutmut's results (``make mutate``, docs/mutation.md).

mutmut writes one ``mutants/<path>.meta`` per mutated file, a JSON object whose
``exit_code_by_key`` maps every mutant's name to the exit code of its test run
(1 or 3: killed; 0: survived; none: not run). Prints, for the mutants whose names
match the patterns given (those ``make mutate`` runs, fnmatch globs), killed /
total per file and overall, then every survivor, then one JSON line.

    .venv/bin/python benchmarks/mutation_score.py 'modeling.losses.*' ...
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {1, 3}
# mutmut's own codes for a run that outlasted its time limit count as killed
# (mutmut's score does the same).
TIMEOUT = {24, -24, 36, 152, 255}


def results_read(root: Path, patterns: list[str]) -> dict[str, dict[str, int | None]]:
    """{source file: {mutant name: exit code}} for the mutants matching ``patterns``."""
    by_file: dict[str, dict[str, int | None]] = defaultdict(dict)
    for meta in sorted(root.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        source = meta.relative_to(root).as_posix().removesuffix(".meta")
        for name, code in codes.items():
            if not patterns or any(fnmatch.fnmatch(name, p) for p in patterns):
                by_file[source][name] = code
    return dict(by_file)


def status_of(code: int | None) -> str:
    if code is None:
        return "not run"
    if code in KILLED or code in TIMEOUT:
        return "killed"
    if code == 0:
        return "survived"
    return f"exit {code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="mutant name globs (default all)")
    parser.add_argument("--root", type=Path, default=Path("mutants"))
    args = parser.parse_args()
    by_file = results_read(args.root, args.patterns)
    if not by_file:
        raise SystemExit(f"no mutmut results under {args.root}/; run `make mutate`")
    summary = {}
    survivors = []
    for source, codes in by_file.items():
        counts = Counter(status_of(code) for code in codes.values())
        summary[source] = {"killed": counts["killed"], "total": len(codes)}
        summary[source].update({k: v for k, v in counts.items() if k != "killed"})
        survivors += sorted(n for n, c in codes.items() if status_of(c) == "survived")
        print(
            f"{source:34} {counts['killed']:5} / {len(codes):5} killed"
            f"  ({100 * counts['killed'] / len(codes):5.1f} %)"
            + "".join(f"  {k} {v}" for k, v in sorted(counts.items()) if k != "killed")
        )
    killed = sum(s["killed"] for s in summary.values())
    total = sum(s["total"] for s in summary.values())
    share = 100 * killed / total
    print(f"{'overall':34} {killed:5} / {total:5} killed  ({share:5.1f} %)")
    for name in survivors:
        print("survived", name)
    print(json.dumps({"files": summary, "killed": killed, "total": total}))


if __name__ == "__main__":
    main()

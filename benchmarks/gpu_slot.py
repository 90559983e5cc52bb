"""The GPU issue's figures in one prepared run, item by item in priority order
(2, 1, 4, 3), for a device slot of about 15 minutes (10 per command).

Items (the issue's numbering):
  2  the 3-fold CV of 615 clips x 100 epochs, measured (benchmarks/cv_walltime.py)
  1  TimeSformer training throughput against the Hugging Face peer, every
     trainer option of ``train_throughput.VARIANTS`` in one process
  4  the clinic model distilled from a trained full-size TimeSformer, same folds
     (item 2's teacher when it beat the mean distribution, else an AdamW one)
  3  the full-size comparison (benchmarks/compare_models.py, EMD loss, negative
     controls, paired intervals), resumable across slots

Each item runs as its own process with its log in the work folder; after each,
one JSON line {"item", "rc", "wall_s", "result"} goes to stdout and to
``figures.jsonl``. ``return/`` holds what a slot brings back (at most 8 files:
figures.jsonl, the logs' tails, the comparison's state without checkpoints),
written when the run ends or when ``wait`` times out before that. ``--restore``
unpacks an earlier slot's state.tar.gz:
items already measured are not run again and the comparison resumes.

    # here, on the CPU: the carried packages, then the whole script, tiny
    make gpu-carry
    python benchmarks/gpu_slot.py run --smoke --work /tmp/slot_smoke
    # on the device machine: start in the background, collect until 560 s
    export PYTHONPATH=$PWD/.gpu_site PYTHONUNBUFFERED=1
    python3 benchmarks/gpu_slot.py start --work /tmp/slot --budget-s 1500
    python3 benchmarks/gpu_slot.py wait --work /tmp/slot --out $OUT --timeout 560
    # a later call on the warm machine collects the rest
    python3 benchmarks/gpu_slot.py wait --work /tmp/slot --out $OUT --timeout 200

The last line of ``run`` and ``wait`` is one JSON object: the figures so far.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (2, 1, 4, 3)
LOG_TAIL_BYTES = 400_000
# A teacher "learned" when its test EMD is this far below the mean distribution's.
LEARNED_RATIO = 0.9
MIN_START_S = 60  # no item starts with less of the budget left


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def figures_read(work: Path) -> dict[int, dict]:
    """The last entry of each item in ``work/figures.jsonl``."""
    path = work / "figures.jsonl"
    found: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                found[row["item"]] = row
    return found


def teacher_learned(result: dict | None) -> bool:
    if not result or result.get("teacher_test_emd_mean") is None:
        return False
    return (
        result["teacher_test_emd_mean"]
        < LEARNED_RATIO * result["mean_distribution_emd"]
    )


def _budget(left_s: float, margin_s: float) -> list[str]:
    """An item's own ``--budget-s`` (start nothing new after it): what is left
    of the slot's budget less a margin for the work already started."""
    if left_s == float("inf"):
        return []
    return ["--budget-s", str(max(0, int(left_s - margin_s)))]


def item_command(item: int, work: Path, smoke: bool, figures: dict, left_s: float):
    """(script, arguments) for one item."""
    cv = work / "cv"
    # the CV of items 2 and 4: the paper's 100 epochs, or tiny on the CPU
    size = (
        ["--smoke", "--epochs", "2", "--workers", "2"]
        if smoke
        else ["--epochs", "100", "--batch-size", "64"]
    )
    if item == 2:
        return "cv_walltime.py", ["--out", str(cv), *size]
    if item == 1:
        args = ["--variants", "all", "--out", str(work / "throughput.json")]
        args += _budget(left_s, 180)
        args += ["--smoke", "--n-clips", "64", "--epochs", "1"] if smoke else []
        return "train_throughput.py", args
    if item == 4:
        item2 = (figures.get(2) or {}).get("result")
        distill = ["--distill-epochs", "2" if smoke else "100"]
        if teacher_learned(item2) and (cv / "teacher" / "metrics.json").is_file():
            return "cv_walltime.py", [
                "--out",
                str(cv),
                "--reuse-teacher",
                *size,
                *distill,
            ]
        if teacher_learned(item2):  # learned, but that run's files are gone
            return "cv_walltime.py", ["--out", str(work / "cv4"), *size, *distill]
        # SGD at lr 1e-3 from random weights learned nothing: AdamW, warm-up, cosine
        adamw = ["--optimizer", "adamw", "--lr", "1e-4", "--scheduler", "cosine"]
        adamw += ["--warmup-epochs", "5"]
        return "cv_walltime.py", ["--out", str(work / "cv4"), *size, *adamw, *distill]
    if item == 3:
        out = work / "compare"
        args = ["--losses", "emd", "--resume", "--out", str(out)]
        args += ["--doc", str(out / "model_comparison_gpu.md")]
        args += ["--controls", "video_zeroed,video_shuffled,speed_zeroed"]
        # as the CPU tables (docs/model_comparison_600.md): no class balancing,
        # each run's own loss reported beside validation EMD, seed by seed
        args += ["--no-balanced", "--also-select-by", "loss"]
        args += ["--seeds", "5" if smoke else "5,6,7"]
        args += _budget(left_s, 240)
        if smoke:
            args += ["--tiny", "--n-clips", "30", "--epochs", "1", "--batch-size", "4"]
            args += ["--models", "clinic,timesformer", "--n-boot", "50"]
        else:
            args += ["--n-clips", "615", "--epochs", "30", "--batch-size", "32"]
        return "compare_models.py", args
    raise ValueError(f"unknown item {item}")


def state_pack(work: Path) -> Path:
    """What a later slot needs to go on: figures, the comparison's finished runs
    (metrics, predictions, configs; no checkpoints, no clips)."""
    target = work / "return" / "state.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for name in ("figures.jsonl", "throughput.json"):
            if (work / name).is_file():
                tar.add(work / name, arcname=name)
        compare = work / "compare"
        if compare.is_dir():
            for path in sorted(compare.rglob("*")):
                rel = path.relative_to(work)
                if not path.is_file() or "checkpoint" in path.parts:
                    continue
                if path.suffix == ".npy" or "synthetic_" in str(rel.parent):
                    continue
                tar.add(path, arcname=str(rel))
    return target


def return_refresh(work: Path) -> None:
    """work/return: at most 8 files, each small, for the device tool's $OUT."""
    back = work / "return"
    back.mkdir(parents=True, exist_ok=True)
    for old in back.iterdir():
        old.unlink()
    if (work / "figures.jsonl").is_file():
        (back / "figures.jsonl").write_bytes((work / "figures.jsonl").read_bytes())
    for log in sorted(work.glob("item_*.log"))[:4] + [work / "slot.log"]:
        if log.is_file():
            data = log.read_bytes()[-LOG_TAIL_BYTES:]
            (back / log.name).write_bytes(data)
    doc = work / "compare" / "model_comparison_gpu.md"
    if doc.is_file():
        (back / doc.name).write_bytes(doc.read_bytes())
    state_pack(work)


def environment() -> dict:
    import platform

    info = {"python": platform.python_version()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
    except Exception as exc:  # the slot still reports why nothing ran
        info["torch_error"] = repr(exc)[:200]
    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        info["driver"] = smi.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["driver"] = None
    return info


def run(args: argparse.Namespace) -> int:
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if args.restore:
        with tarfile.open(args.restore) as tar:
            tar.extractall(work, filter="data")
    (work / "done").unlink(missing_ok=True)
    began = time.perf_counter()
    figures = figures_read(work)
    print(json.dumps({"environment": environment()}), flush=True)
    for item in args.items:
        if item in figures and figures[item]["rc"] == 0 and item != 3:
            print(json.dumps({"item": item, "skipped": "measured already"}), flush=True)
            continue
        left = (
            float("inf")
            if args.budget_s is None
            else args.budget_s - (time.perf_counter() - began)
        )
        if left < MIN_START_S:
            row = {"item": item, "rc": None, "skipped": "budget spent"}
            print(json.dumps(row), flush=True)
            continue
        script, item_args = item_command(item, work, args.smoke, figures, left)
        log = work / f"item_{item}.log"
        start = time.perf_counter()
        with log.open("w") as fh:
            try:
                proc = subprocess.run(
                    [sys.executable, str(HERE / script), *item_args],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    timeout=None if left == float("inf") else left,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        row = {
            "item": item,
            "command": f"{script} {' '.join(item_args)}",
            "rc": rc,
            "wall_s": round(time.perf_counter() - start, 1),
            "result": _last_json(log.read_text(errors="replace")),
        }
        figures[item] = row
        with (work / "figures.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return_refresh(work)  # ``wait`` refreshes it itself while this still runs
    (work / "done").write_text("done\n")
    print(json.dumps(_summary(figures)), flush=True)
    return 0


def _summary(figures: dict[int, dict]) -> dict:
    def get(item: int, key: str):
        result = (figures.get(item) or {}).get("result") or {}
        return result.get(key)

    return {
        "cv_100_epochs_wall_s": get(2, "cv_100_epochs_wall_s"),
        "cv_100_epochs_how": get(2, "cv_100_epochs_how"),
        "throughput_ratio_to_peer": get(1, "ratio"),
        "throughput_best_variant": get(1, "best_variant"),
        "clinic_emd_ratio_to_timesformer": get(4, "clinic_emd_ratio_to_timesformer"),
        "teacher_learned": teacher_learned((figures.get(4) or {}).get("result")),
        "teacher_test_emd_mean": get(4, "teacher_test_emd_mean"),
        "mean_distribution_emd": get(4, "mean_distribution_emd"),
        "comparison_runs_skipped": get(3, "skipped"),
        "items_done": sorted(i for i, r in figures.items() if r.get("rc") == 0),
        "gpu": get(2, "gpu") or get(1, "gpu"),
    }


def start(args: argparse.Namespace) -> int:
    """``run`` in a new process session, so it outlives this command."""
    args.work.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "run",
        "--work",
        str(args.work),
    ]
    argv += ["--items", ",".join(map(str, args.items))]
    if args.budget_s is not None:
        argv += ["--budget-s", str(args.budget_s)]
    if args.smoke:
        argv.append("--smoke")
    if args.restore:
        argv += ["--restore", str(args.restore)]
    (args.work / "done").unlink(missing_ok=True)
    with (args.work / "slot.log").open("w") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (args.work / "pid").write_text(f"{proc.pid}\n")
    print(json.dumps({"started": proc.pid, "work": str(args.work)}), flush=True)
    return 0


def wait(args: argparse.Namespace) -> int:
    """Until ``run`` is done or ``--timeout``; copies ``return/`` to ``--out``.
    Exit 0 when done, 3 while it is still running."""
    deadline = time.monotonic() + args.timeout
    seen = 0
    while True:
        log = args.work / "slot.log"
        if log.is_file():  # pass the slot's lines on as they come
            lines = log.read_text(errors="replace").splitlines()
            for line in lines[seen:]:
                print(line, flush=True)
            seen = len(lines)
        done = (args.work / "done").is_file()
        if done or time.monotonic() > deadline:
            break
        time.sleep(5)
    if not done:
        return_refresh(args.work)  # what is finished so far
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in (args.work / "return").iterdir():
            (args.out / path.name).write_bytes(path.read_bytes())
    summary = _summary(figures_read(args.work))
    summary["running"] = not done
    print(json.dumps(summary), flush=True)
    return 0 if done else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb in ("run", "start", "wait"):
        p = sub.add_parser(verb)
        p.add_argument("--work", type=Path, required=True, help="work folder")
        if verb == "wait":
            p.add_argument("--out", type=Path, default=None, help="copy return/ here")
            p.add_argument("--timeout", type=float, default=560)
            continue
        p.add_argument(
            "--items",
            type=lambda s: [int(x) for x in s.split(",")],
            default=list(ORDER),
            help="comma list, in the order to run (default 2,1,4,3)",
        )
        p.add_argument("--budget-s", type=float, default=None)
        p.add_argument("--smoke", action="store_true", help="tiny settings, CPU")
        p.add_argument("--restore", type=Path, default=None, help="a state.tar.gz")
    args = parser.parse_args(argv)
    return {"run": run, "start": start, "wait": wait}[args.verb](args)


if __name__ == "__main__":
    raise SystemExit(main())

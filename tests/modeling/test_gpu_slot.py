"""benchmarks/gpu_slot.py, the GPU issue's prepared slot, checked on the CPU with
tiny settings: items in order, one JSON line each, what comes back, a restored
slot going on where the last one stopped, and the teacher choice for item 4."""

import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _slot():
    spec = importlib.util.spec_from_file_location(
        "gpu_slot", REPO / "benchmarks" / "gpu_slot.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_slot"] = module
    spec.loader.exec_module(module)
    return module


def _lines(text: str) -> list[dict]:
    return [json.loads(x) for x in text.splitlines() if x.startswith("{")]


@pytest.mark.slow
def test_a_slot_runs_its_items_in_order_and_a_restored_slot_goes_on(tmp_path, capsys):
    slot = _slot()
    work = tmp_path / "slot"
    assert slot.main(["run", "--smoke", "--work", str(work), "--items", "2,4"]) == 0
    rows = _lines(capsys.readouterr().out)
    items = [r for r in rows if "item" in r]
    assert [r["item"] for r in items] == [2, 4]
    assert all(r["rc"] == 0 for r in items)
    item2, item4 = (r["result"] for r in items)
    # item 2: the CV's own figure, from cv_walltime.py's last line
    assert item2["k"] == 2 and item2["cv_wall_s"] > 0
    # item 4: a tiny teacher learns nothing in 2 epochs, so an AdamW teacher
    # is trained in its own folder and the clinic model distilled from it
    assert "cv4" in items[1]["command"] and "adamw" in items[1]["command"]
    assert item4["clinic_emd_ratio_to_timesformer"] > 0
    summary = rows[-1]
    assert summary["items_done"] == [2, 4]
    assert summary["teacher_learned"] is False
    back = sorted(p.name for p in (work / "return").iterdir())
    assert back == ["figures.jsonl", "item_2.log", "item_4.log", "state.tar.gz"]
    assert len(back) <= 8  # the device tool brings back at most 8 files
    with tarfile.open(work / "return" / "state.tar.gz") as tar:
        assert "figures.jsonl" in tar.getnames()

    # A later slot restores the state: measured items are not run again.
    again = tmp_path / "again"
    state = work / "return" / "state.tar.gz"
    code = slot.main(
        [
            "run",
            "--smoke",
            "--work",
            str(again),
            "--items",
            "2,4",
            "--restore",
            str(state),
        ]
    )
    assert code == 0
    rows = _lines(capsys.readouterr().out)
    assert [r.get("skipped") for r in rows if "item" in r] == ["measured already"] * 2
    assert rows[-1]["items_done"] == [2, 4]
    assert not (again / "cv").exists()


def test_item_4_reuses_a_teacher_only_when_it_beat_the_mean_distribution(tmp_path):
    slot = _slot()
    learned = {"teacher_test_emd_mean": 0.05, "mean_distribution_emd": 0.085}
    flat = {"teacher_test_emd_mean": 0.0865, "mean_distribution_emd": 0.0852}
    assert slot.teacher_learned(learned) and not slot.teacher_learned(flat)
    assert not slot.teacher_learned(None)

    def command(result):
        figures = {2: {"rc": 0, "result": result}}
        script, args = slot.item_command(4, tmp_path, False, figures, 900)
        assert script == "cv_walltime.py"
        return args

    # learned, files gone (a new slot): the same SGD recipe again, 100 epochs
    args = command(learned)
    assert "--reuse-teacher" not in args and "adamw" not in args
    assert args[args.index("--distill-epochs") + 1] == "100"
    (tmp_path / "cv" / "teacher").mkdir(parents=True)
    (tmp_path / "cv" / "teacher" / "metrics.json").write_text("{}")
    assert "--reuse-teacher" in command(learned)
    assert "adamw" in command(flat)  # item 2's teacher learned nothing


def test_budget_reaches_the_items_and_nothing_starts_once_it_is_spent(tmp_path, capsys):
    slot = _slot()
    _, args = slot.item_command(1, tmp_path, False, {}, 600)
    assert args[args.index("--budget-s") + 1] == "420"
    _, args = slot.item_command(3, tmp_path, False, {}, float("inf"))
    assert "--budget-s" not in args
    work = tmp_path / "w"
    assert slot.main(["run", "--work", str(work), "--budget-s", "10"]) == 0
    rows = _lines(capsys.readouterr().out)
    skipped = [r for r in rows if "item" in r]
    assert [r["item"] for r in skipped] == [2, 1, 4, 3]
    assert {r["skipped"] for r in skipped} == {"budget spent"}
    assert not (work / "figures.jsonl").exists()
    assert (work / "done").is_file()

"""Part 8 floors on a small version of the comparison (CPU, registry tiny configs).

The tiny-config run of the comparison (the published table in
docs/model_comparison.md uses the larger 'small' profile; this is
benchmarks/compare_models.py --tiny --n-clips 96 --n-patients 24 --seed 5
--source-frames 8 --source-size 64 --frames 4 --size 32 --epochs 20 --batch-size 8
--optimizer adamw --lr 3e-3 --no-balanced).
"""

import pytest
import torch

from modeling.compare import best_row, compare_run
from modeling.config import config_from_dict
from modeling.data import clipset_load

VIDEO_MODELS = ["timesformer", "rostfine"]


@pytest.fixture
def one_thread():
    # One thread: the numbers match the CPU table, and a busy 2-core runner does
    # not thrash (two spinning threads per op were many times slower there).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_small_comparison_beats_the_mean_baseline(tmp_path, one_thread):
    from modeling.models import TINY_KWARGS
    from modeling.synthetic import write_synthetic_manifest

    data = write_synthetic_manifest(
        tmp_path / "syn", n_clips=96, n_patients=24, seed=5, n_frames=8, size=64
    )
    clips = clipset_load(data, speed_features=["speed"])
    base = config_from_dict(
        {
            "data": {"n_frames": 4, "size": 32, "speed_features": ["speed"]},
            "optim": {
                "optimizer": "adamw",
                "lr": 3e-3,
                "epochs": 20,
                "batch_size": 8,
            },
            "cv": {"k": 3, "seed": 5, "balanced_sampling": False},
            "runtime": {"progress": False, "device": "cpu"},
        }
    )
    result = compare_run(
        clips=clips,
        base=base,
        models=["resnet_image", *VIDEO_MODELS],
        losses=["emd"],
        model_kwargs=TINY_KWARGS,
        out_dir=tmp_path / "runs",
    )
    baseline = result["baseline"]["mean"]["emd"]
    best = best_row(result)
    video = best_row(result, video_only=True)
    image = best_row(result, image_only=True)
    table = {r["model"]: round(r["mean"]["emd"], 5) for r in result["rows"]}
    # Only what the comparison documents claim: every model is far below the
    # training-set mean distribution. Whether video beats the image model is
    # not claimed (the intervals in docs/model_comparison_600.md do not back
    # it), so it is not asserted here either.
    assert best["mean"]["emd"] <= 0.5 * baseline, (table, baseline)
    for row in (video, image):
        assert row["mean"]["emd"] < 0.75 * baseline, (table, baseline)

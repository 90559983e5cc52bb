"""A checkpoint loaded once predicts several manifests exactly as loading it for
each does."""

from modeling import checkpoint as ckpt
from modeling import predict as predict_module
from tests.modeling.conftest import tiny_checkpoint, tiny_manifest


def test_a_checkpoint_opened_once_predicts_each_manifest_as_a_fresh_load_does(
    tmp_path, monkeypatch
):
    data = [tiny_manifest(tmp_path / f"data{i}", n_clips=3, seed=i) for i in range(3)]
    saved = tiny_checkpoint(tmp_path / "checkpoint", data[0])
    fresh = []
    for i, manifest in enumerate(data):
        out = tmp_path / f"fresh{i}"
        predict_module.predict(checkpoint=saved, data=manifest, out=out, device="cpu")
        fresh.append((out / "predictions.jsonl").read_bytes())

    loads = []
    load = ckpt.checkpoint_load
    monkeypatch.setattr(
        ckpt, "checkpoint_load", lambda *a, **k: loads.append(a) or load(*a, **k)
    )
    opened = predict_module.checkpoint_open(saved, device="cpu")
    for i, manifest in enumerate(data):
        out = tmp_path / f"opened{i}"
        predict_module.predict(checkpoint=opened, data=manifest, out=out)
        assert (out / "predictions.jsonl").read_bytes() == fresh[i]
    assert len(loads) == 1

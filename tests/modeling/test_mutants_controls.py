"""The controls, pinned where mutation testing found them loose (docs/mutation.md):
which clip each clip takes its frames from (by hand), the one-patient case,
patient ids of any type, each split's seed, and black videos left on their
device."""

import numpy as np
import torch

from modeling.controls import control_apply, shuffle_across_patients
from modeling.cv import Fold
from modeling.training import DeviceData


def test_each_clip_takes_the_clip_the_largest_block_further_on_in_patient_order():
    # Patients A, A, B, C, D; seed 0 ranks them A 2, B 0, C 1, D 3
    # (np.random.default_rng(0).permutation(4) == [2, 0, 1, 3]), so the clips in
    # patient order are 2 (B), 3 (C), 0, 1 (A), 4 (D). The largest block is A's,
    # 2 clips: each clip takes the clip 2 places further on, cyclically.
    assert np.array_equal(np.random.default_rng(0).permutation(4), [2, 0, 1, 3])
    patients = np.array(["A", "A", "B", "C", "D"])
    source = shuffle_across_patients(np.arange(5), patients, seed=0)
    # clip 2 <- 0, 3 <- 1, 0 <- 4, 1 <- 2, 4 <- 3
    assert source.tolist() == [4, 2, 0, 1, 3]


def test_one_patients_clips_each_take_the_next_clip():
    for clips in ([4, 7], [4, 7, 9]):
        source = shuffle_across_patients(np.array(clips), np.array(["x"] * 10), seed=0)
        assert source.tolist() == clips[1:] + clips[:1]


def test_patient_ids_pair_the_same_whether_numbers_or_text():
    ids = [2, 10, 2, 10, 33, 9]
    for seed in range(6):
        as_numbers = shuffle_across_patients(np.arange(6), np.array(ids), seed=seed)
        as_text = shuffle_across_patients(
            np.arange(6), np.array([str(i) for i in ids]), seed=seed
        )
        assert as_numbers.tolist() == as_text.tolist()


def _data(videos: torch.Tensor) -> DeviceData:
    n = len(videos)
    return DeviceData(
        videos=videos,
        targets=torch.zeros(n, 5),
        speed=torch.ones(n, 1),
        modes=np.zeros(n, dtype=int),
    )


def test_black_videos_stay_on_the_device_of_the_videos():
    # The meta device stands for a GPU: the control must not move them to the CPU.
    videos = torch.empty((4, 2, 3, 3, 3), dtype=torch.uint8, device="meta")
    fold = Fold(index=0, train=np.arange(2), val=np.array([2]), test=np.array([3]))
    data = control_apply(
        _data(videos),
        fold=fold,
        patient_ids=list("abcd"),
        control="video_zeroed",
        seed=0,
    )
    assert data.videos.device.type == "meta"
    assert data.videos.shape == videos.shape


def test_each_split_is_shuffled_with_its_own_seed_seed_plus_101_per_split():
    # train, validation and test are shuffled with seeds s, s + 101, s + 202
    patients = np.array(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
    videos = torch.arange(9, dtype=torch.uint8)[:, None, None, None, None]
    fold = Fold(
        index=0,
        train=np.array([0, 1, 2]),
        val=np.array([3, 4, 5]),
        test=np.array([6, 7, 8]),
    )
    data = control_apply(
        _data(videos), fold=fold, patient_ids=patients, control="video_shuffled", seed=7
    )
    got = data.videos[:, 0, 0, 0, 0].tolist()
    for part, idx in enumerate((fold.train, fold.val, fold.test)):
        want = shuffle_across_patients(idx, patients, seed=7 + 101 * part)
        assert [got[i] for i in idx] == want.tolist()

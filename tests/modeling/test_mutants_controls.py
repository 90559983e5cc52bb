"""The shuffled-video control's pairing, by hand (docs/mutation.md): which clip
each clip takes its frames from, the one-patient case, and patient ids of any
type."""

import numpy as np

from modeling.controls import shuffle_across_patients


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

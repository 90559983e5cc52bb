"""Presentation handles: a keyed permutation of (expert, clip, repeat bit)."""

import itertools

from annotation.handles import (
    presentation_for,
    presentation_handle,
    presentation_parse,
)


def test_a_handle_names_exactly_its_presentation():
    seen = set()
    for expert, clip, repeat in itertools.product([1, 2, 999], [1, 2, 10**12], [0, 1]):
        handle = presentation_handle(
            expert_id=expert, clip_id=clip, repeat=bool(repeat)
        )
        assert len(handle) == 26 and handle.isalnum() and handle == handle.lower()
        found = presentation_parse(handle)
        assert (found.expert_id, found.clip_id, found.repeat) == (expert, clip, repeat)
        seen.add(handle)
    assert len(seen) == 3 * 3 * 2


def test_neighbouring_ids_give_unrelated_handles():
    a = presentation_handle(expert_id=5, clip_id=41, repeat=False)
    b = presentation_handle(expert_id=5, clip_id=42, repeat=False)
    r = presentation_handle(expert_id=5, clip_id=41, repeat=True)
    # no shared prefix longer than chance would give (the page shows 8 characters)
    for other in (b, r):
        assert a[:4] != other[:4]


def test_the_key_is_the_secret_key(settings):
    before = presentation_handle(expert_id=1, clip_id=1, repeat=False)
    settings.SECRET_KEY = "another-instance-" + "x" * 40
    after = presentation_handle(expert_id=1, clip_id=1, repeat=False)
    assert before != after
    assert presentation_for(expert_id=1, handle=before) != presentation_parse(after)


def test_anything_else_is_no_handle():
    good = presentation_handle(expert_id=3, clip_id=7, repeat=False)
    last = "a" if good[-1] != "a" else "b"  # the last character's spare bits
    for text in ["", "1", good.upper(), good[:-1], good + "a", "0" * 26, None, 7]:
        assert presentation_parse(text) is None, text
    assert presentation_for(expert_id=4, handle=good) is None
    assert presentation_for(expert_id=3, handle=good).clip_id == 7
    changed = presentation_parse(good[:-1] + last)
    assert changed is None or changed.clip_id != 7

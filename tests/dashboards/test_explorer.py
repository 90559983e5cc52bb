"""The expert page and the clip explorer read aggregates and one page from the
database (issue 26), and show what they showed when they read every vote and
every clip into Python: the former implementation is kept here as the reference
and compared on a small panel with months, gaps, inactive clips and repeats."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.core.cache import cache

from annotation import agreement, dispersion, selectors, services
from annotation.models import GRADES, Clip, ClipDistribution, RepeatVote, Vote
from tests.annotation.conftest import session_client
from tests.factories import AdminFactory, ClipFactory, ExpertFactory, PatientFactory

# --- the former implementation (every vote, every clip into Python) -----------------


def _reference_expert_detail(expert_id: int) -> dict | None:
    votes = list(
        Vote.objects.filter(expert_id=expert_id, clip__is_active=True).values_list(
            "grade", "created_at", "seconds_spent", "clip_id"
        )
    )
    if not votes:
        return None
    counts_of = {
        d.clip_id: [d.n_a, d.n_b, d.n_c, d.n_d, d.n_e]
        for d in ClipDistribution.objects.all()
    }
    grade = np.searchsorted(np.array(GRADES), np.array([v[0] for v in votes]))
    month = np.array([v[1].astimezone(UTC).strftime("%Y-%m") for v in votes])
    seconds = np.array([v[2] for v in votes], dtype=np.float64)
    counts = np.array([counts_of[v[3]] for v in votes], dtype=np.float64)
    against = agreement.votes_against_rest(grade, counts)
    usable = against["usable"]
    confusion = np.zeros((len(GRADES), len(GRADES)), dtype=np.int64)
    np.add.at(confusion, (against["mode"], grade[usable]), 1)
    months = sorted(set(month.tolist()))
    usable_month = month[usable]
    bias_by_month = [
        float(against["bias"][usable_month == m].mean())
        if (usable_month == m).any()
        else None
        for m in months
    ]
    firsts, repeats = selectors.repeat_pairs().get(expert_id, ([], []))

    def mean(values) -> float | None:
        return float(values.mean()) if len(values) else None

    return {
        "expert_id": expert_id,
        "n_votes": len(votes),
        "bias": mean(against["bias"]),
        "emd": mean(against["emd"]),
        "within_one": mean(against["within_one"]),
        "confusion": confusion.tolist(),
        "months": months,
        "bias_by_month": bias_by_month,
        **selectors.expert_consistency(firsts=firsts, repeats=repeats, seconds=seconds),
    }


def _reference_explorer(sort: str, descending: bool, min_votes: int) -> list[dict]:
    rows = (
        ClipDistribution.objects.filter(clip__is_active=True)
        .order_by("clip_id")
        .values_list(
            "clip_id", "clip__is_synthetic", "clip__video_file", *_COUNT_FIELDS
        )
    )
    table = np.array(
        [(r[0], r[1], 1 if r[2] else 0, *r[3:]) for r in rows], dtype=np.int64
    ).reshape(-1, 8)
    ids, counts = table[:, 0], table[:, 3:]
    probs = counts / np.maximum(counts.sum(axis=1), 1)[:, None]
    d = dispersion.clip_dispersion(counts)
    key = {
        "ordinal_dispersion": d.ordinal_dispersion,
        "n_votes": d.n_votes.astype(np.float64),
        "ci_width": d.ci_width_max,
        "entropy": d.entropy_bits,
        "id": ids.astype(np.float64),
    }[selectors.CLIP_SORTS[sort]]
    order = np.flatnonzero(d.n_votes >= min_votes)
    values = key[order]
    missing = np.isnan(values)
    ranked = np.argsort(-values if descending else values, kind="stable")
    ranked = np.concatenate([ranked[~missing[ranked]], ranked[missing[ranked]]])

    def finite(value):
        return float(value) if np.isfinite(value) else None

    return [
        {
            "id": int(ids[i]),
            "is_synthetic": bool(table[i, 1]),
            "has_video": bool(table[i, 2]),
            "n_votes": int(d.n_votes[i]),
            "counts": counts[i].tolist(),
            "probs": probs[i].tolist(),
            "ci_low": d.ci_low[i].tolist(),
            "ci_high": d.ci_high[i].tolist(),
            "ci_width": float((d.ci_high[i] - d.ci_low[i]).max()),
            "entropy": finite(d.entropy_bits[i]),
            "std": finite(d.std[i]),
            "ordinal_dispersion": finite(d.ordinal_dispersion[i]),
        }
        for i in order[ranked]
    ]


_COUNT_FIELDS = [f"n_{g.lower()}" for g in GRADES]

# --- a small panel -------------------------------------------------------------------


@pytest.fixture
def panel(db, settings):
    """60 clips (some without votes, some inactive, some with video) graded by a
    varying share of 7 experts over 5 months, many clips sharing their counts;
    hidden repeats for two experts; varied seconds per vote."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    rng = np.random.default_rng(7)
    patient = PatientFactory()
    clips = [ClipFactory(patient=patient) for _ in range(60)]
    Clip.objects.filter(pk__in=[c.pk for c in clips[::9]]).update(is_active=False)
    Clip.objects.filter(pk__in=[c.pk for c in clips[::4]]).update(
        video_file="clips/v.mp4"
    )
    experts = [ExpertFactory() for _ in range(7)]
    rows = []
    for i, clip in enumerate(clips[:-4]):  # the last four: no votes
        truth = i % 5
        share = rng.choice([0.3, 0.6, 1.0])
        for expert in experts:
            if rng.random() > share:
                continue
            grade = int(
                np.clip(truth + rng.integers(-1, 2) * (rng.random() < 0.4), 0, 4)
            )
            month = int(rng.integers(1, 6))
            at = datetime(2026, month, 28, 23, 30, tzinfo=UTC)
            rows.append((expert.pk, clip.pk, GRADES[grade], at))
    services.votes_bulk_create_simulated(votes=rows)
    votes = list(Vote.objects.all())
    for vote in votes:
        vote.seconds_spent = float(rng.choice([1.5, 2.0, 4.25, 7.0, 12.5]))
    Vote.objects.bulk_update(votes, ["seconds_spent"])
    for expert in experts[:2]:
        for vote in Vote.objects.filter(expert=expert)[:5]:
            again = GRADES[min(4, GRADES.index(vote.grade) + int(rng.integers(0, 2)))]
            RepeatVote.objects.create(expert=expert, clip=vote.clip, grade=again)
    return {"clips": clips, "experts": experts}


def _assert_same_detail(new: dict, old: dict) -> None:
    assert new.keys() == old.keys()
    for key, value in old.items():
        if isinstance(value, float):
            assert new[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        elif key == "bias_by_month":
            assert [v is None for v in new[key]] == [v is None for v in value]
            assert [v for v in new[key] if v is not None] == pytest.approx(
                [v for v in value if v is not None], rel=1e-12, abs=1e-15
            )
        else:
            assert new[key] == value, key


def test_expert_figures_equal_the_former_implementation(panel):
    for expert in panel["experts"]:
        old = _reference_expert_detail(expert.pk)
        new = selectors.expert_detail(expert_id=expert.pk)
        assert old is not None and len(old["months"]) > 1
        _assert_same_detail(new, old)
    assert selectors.expert_detail(expert_id=AdminFactory().pk) is None


def test_an_expert_with_an_even_number_of_votes_has_the_median_of_the_middle_two(
    panel,
):
    expert = panel["experts"][0]
    voted = Vote.objects.filter(expert=expert, clip__is_active=True)
    if voted.count() % 2:
        voted.first().delete()
    Vote.objects.filter(expert=expert).update(seconds_spent=3.0)
    Vote.objects.filter(pk=voted.order_by("pk").first().pk).update(seconds_spent=100)
    _assert_same_detail(
        selectors.expert_detail(expert_id=expert.pk),
        _reference_expert_detail(expert.pk),
    )


@pytest.mark.parametrize("sort", list(selectors.CLIP_SORTS))
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("min_votes", [0, 4])
def test_explorer_pages_equal_the_former_implementation(
    panel, sort, descending, min_votes
):
    old = _reference_explorer(sort, descending, min_votes)
    table = selectors.clips_explorer(
        sort=sort, descending=descending, min_votes=min_votes
    )
    assert len(table) == len(old)
    pages = [table.rows(start, start + 7) for start in range(0, len(table) + 7, 7)]
    assert [row for page in pages for row in page] == old
    assert table.rows(3, 11) == old[3:11]


def test_explorer_reads_two_queries_whatever_the_page(panel, django_assert_num_queries):
    for sort in selectors.CLIP_SORTS:
        with django_assert_num_queries(2):
            table = selectors.clips_explorer(sort=sort)
            assert len(table.rows(24, 48)) == min(24, len(table) - 24)


def test_expert_detail_reads_three_queries(panel, django_assert_num_queries):
    with django_assert_num_queries(3):
        selectors.expert_detail(expert_id=panel["experts"][0].pk)


def test_explorer_page_shows_the_clips_of_its_slice(panel):
    client = session_client(AdminFactory())
    old = _reference_explorer("entropy", False, 0)
    html = client.get("/dashboards/clips/?sort=entropy&order=asc&page=2").content
    shown = [int(part.split(b'"')[0]) for part in html.split(b'data-clip="')[1:]]
    assert shown == [row["id"] for row in old[24:48]]

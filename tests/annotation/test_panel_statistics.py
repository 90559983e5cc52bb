"""The panel statistics refresh reads every vote on an active clip exactly (grade,
expert, seconds, the month in UTC, across month and century boundaries), and the
figures it caches equal the reference packages and a plain per-vote loop on a
random panel: Krippendorff's α overall and per month (krippendorff), the pairwise
weighted κ (scikit-learn), each expert's figures against the rest of the panel
and their median seconds. On PostgreSQL and SQLite."""

from __future__ import annotations

import datetime as dt
import statistics
import warnings

import numpy as np
import pytest

from annotation import selectors, services, sql_panel
from annotation.models import Vote
from tests.factories import ClipFactory, ExpertFactory, VoteFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
GRADES = "ABCDE"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _vote(expert, clip, grade: str, when: dt.datetime, seconds: float) -> Vote:
    return VoteFactory(
        expert=expert,
        clip=clip,
        grade=grade,
        created_at=when,
        updated_at=when,
        seconds_spent=seconds,
    )


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "unpacked"])
def test_panel_votes_reads_each_vote_with_its_month_in_utc_in_clip_expert_order(
    packed, monkeypatch
):
    if not packed:  # ids too large to pack clip, expert and grade in one bigint
        monkeypatch.setattr(sql_panel, "PACKED_LIMIT", 0)
    clips = ClipFactory.create_batch(3)
    inactive = ClipFactory(is_active=False)
    experts = ExpertFactory.create_batch(3)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    moments = [
        dt.datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),  # still January
        dt.datetime(2026, 2, 1, 0, 30, tzinfo=plus_two),  # 31 Jan 22:30 UTC
        dt.datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),  # before PostgreSQL's epoch
        dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ]
    written = []
    # Written in an order unlike the one expected back.
    for n, (clip, expert) in enumerate(
        [(c, e) for e in reversed(experts) for c in reversed(clips)][:8]
    ):
        when = moments[n % len(moments)]
        written.append(_vote(expert, clip, GRADES[n % 5], when, 0.5 + n))
    _vote(experts[0], inactive, "E", moments[0], 99.0)

    votes = selectors.panel_votes()

    expected = sorted(
        (
            v.clip_id,
            v.expert_id,
            GRADES.index(v.grade) + 1,
            v.created_at,
            v.seconds_spent,
        )
        for v in written
    )
    assert votes.clip.tolist() == [row[0] for row in expected]
    assert votes.expert.tolist() == [row[1] for row in expected]
    assert votes.grade.tolist() == [row[2] for row in expected]
    assert votes.seconds.tolist() == [row[4] for row in expected]
    months = [row[3].astimezone(UTC).strftime("%Y-%m") for row in expected]
    assert [str(m) for m in votes.month] == months
    assert {"1999-12", "2000-01", "2026-01", "2026-02"} == set(months)
    assert votes.clip.dtype == votes.expert.dtype == votes.grade.dtype == np.int64


def test_panel_votes_of_an_empty_panel_are_empty_arrays():
    ClipFactory()
    votes = selectors.panel_votes()
    assert len(votes) == 0 and votes.month.dtype == np.dtype("datetime64[M]")
    assert services.panel_statistics_refresh(force=True).data["n_votes"] == 0


@pytest.fixture
def random_panel():
    """24 clips, 6 experts each voting on about 80 % of them over three months;
    expert 0 is one grade harsher; one clip deactivated."""
    rng = np.random.default_rng(7)
    clips = ClipFactory.create_batch(24)
    experts = ExpertFactory.create_batch(6)
    months = [dt.datetime(2026, m, 10, 12, tzinfo=UTC) for m in (3, 4, 5)]
    for clip in clips:
        truth = int(rng.integers(0, 5))
        for e, expert in enumerate(experts):
            if rng.random() < 0.2:
                continue
            grade = int(np.clip(truth + rng.integers(-1, 2) + (e == 0), 0, 4))
            when = months[int(rng.integers(0, 3))]
            _vote(expert, clip, GRADES[grade], when, float(rng.integers(2, 40)))
    clips[5].is_active = False
    clips[5].save(update_fields=["is_active"])
    return clips, experts


def _active_votes() -> list[tuple[int, int, int, str, float]]:
    return [
        (
            v.clip_id,
            v.expert_id,
            "ABCDE".index(v.grade) + 1,
            v.created_at,
            v.seconds_spent,
        )
        for v in Vote.objects.filter(clip__is_active=True)
    ]


def _alpha(rows) -> float:
    import krippendorff

    clips = sorted({r[0] for r in rows})
    experts = sorted({r[1] for r in rows})
    table = np.full((len(experts), len(clips)), np.nan)
    for clip, expert, grade, *_ in rows:
        table[experts.index(expert), clips.index(clip)] = grade
    return krippendorff.alpha(reliability_data=table, level_of_measurement="ordinal")


def test_cached_alpha_and_kappa_equal_the_reference_packages(random_panel):
    from sklearn.metrics import cohen_kappa_score

    data = services.panel_statistics_refresh(force=True).data
    rows = _active_votes()
    assert data["n_votes"] == len(rows)
    assert data["alpha"]["value"] == pytest.approx(_alpha(rows), abs=1e-12)
    by_month = {}
    for row in rows:
        by_month.setdefault(row[3].astimezone(UTC).strftime("%Y-%m"), []).append(row)
    assert [m["month"] for m in data["alpha_by_month"]] == sorted(by_month)
    for shown in data["alpha_by_month"]:
        month_rows = by_month[shown["month"]]
        assert shown["n_votes"] == len(month_rows)
        assert shown["value"] == pytest.approx(_alpha(month_rows), abs=1e-12)

    code_of = {e["code"]: e["expert_id"] for e in data["experts"]}
    ids = [code_of[label] for label in data["kappa"]["labels"]]
    grade_of = {(r[1], r[0]): r[2] for r in rows}
    checked = 0
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            shared = sorted(c for (e, c) in grade_of if e == a and (b, c) in grade_of)
            assert data["kappa"]["overlap"][i][j] == len(shared)
            if i == j or len(shared) < 10:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference = cohen_kappa_score(
                    [grade_of[a, c] for c in shared],
                    [grade_of[b, c] for c in shared],
                    weights="quadratic",
                )
            assert data["kappa"]["matrix"][i][j] == pytest.approx(reference, abs=1e-12)
            checked += 1
    assert checked >= 20


def test_cached_expert_figures_equal_a_plain_loop_over_the_votes(random_panel):
    data = services.panel_statistics_refresh(force=True).data
    rows = _active_votes()
    on_clip = {}
    for clip, expert, grade, *_ in rows:
        on_clip.setdefault(clip, []).append((expert, grade))
    assert data["n_experts"] == len({r[1] for r in rows})
    for shown in data["experts"]:
        mine = [r for r in rows if r[1] == shown["expert_id"]]
        bias, emd, within = [], [], []
        for clip, expert, grade, *_ in mine:
            rest = [g for e, g in on_clip[clip] if e != expert]
            if not rest:
                continue
            share = [rest.count(g) / len(rest) for g in range(1, 6)]
            mode = 1 + max(range(5), key=lambda g: (share[g], -g))
            bias.append(grade - sum(g * p for g, p in zip(range(1, 6), share)))
            cdf = np.cumsum(share)
            emd.append(
                np.mean([(float(g >= grade) - cdf[g - 1]) ** 2 for g in range(1, 6)])
            )
            within.append(float(abs(grade - mode) <= 1))
        assert shown["n_votes"] == len(mine)
        assert shown["bias"] == pytest.approx(np.mean(bias), abs=1e-12)
        assert shown["emd"] == pytest.approx(np.mean(emd), abs=1e-12)
        assert shown["within_one"] == pytest.approx(np.mean(within), abs=1e-12)
        assert shown["median_seconds"] == statistics.median(r[4] for r in mine)
    harsh = next(e for e in data["experts"] if e["expert_id"] == random_panel[1][0].pk)
    assert harsh["bias"] > 0.5
    median_emds = sorted(e["emd"] for e in data["experts"])
    assert data["human_baseline_emd"] == pytest.approx(statistics.median(median_emds))

"""The demo's simulated panel: experts SIM-01.., their votes on the demo clips and
their hidden repeats, all drawn from the panel model of ``modeling.synthetic``
(the same seed gives the same panel). Loaded by ``annotation.demo``."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.utils import timezone
from scipy.special import ndtr, ndtri

from annotation import services
from annotation.models import Clip, ExpertProfile, RepeatVote, Vote
from modeling.grades import GRADES
from modeling.synthetic import Panel, quality_to_score, simulate_panel

SIM_PREFIX = "SIM-"
# Share of a simulated expert's votes they give again as hidden repeats: above the
# live REPEAT_SHARE, so that the demo's test–retest κ rests on several pairs.
REPEAT_SHARE = 0.15
MIN_REPEATS = 6
# Correlation of an expert's perception noise on a clip between two showings:
# part of it is how this expert sees this clip (it stays), the rest the occasion.
# At 0.5 the demo's experts repeat their grade about two times in three, with a
# median test–retest κ (quadratic) near 0.85; at 0 the repeat would be a stranger's.
RETEST_PERSISTENCE = 0.5


def demo_experts_ensure(*, n_experts: int) -> list:
    """Simulated experts SIM-01.. with unusable passwords (they never log in)."""
    experts = []
    for number in range(1, n_experts + 1):
        code = f"{SIM_PREFIX}{number:02d}"
        profile = ExpertProfile.objects.select_related("user").filter(code=code).first()
        if profile is not None:
            experts.append(profile.user)
            continue
        experts.append(
            services.expert_create(
                username=f"sim-{number:02d}",
                # None gives an unusable password (and skips slow hashing).
                password=None,  # type: ignore[arg-type]
                code=code,
                years_experience=int(1 + (number * 7) % 20),
                is_simulated=True,
            )
        )
    return experts


def demo_votes_ensure(
    *,
    clips: list[Clip],
    experts: list,
    seed: int,
    full_share: float = 0.85,
) -> tuple[int, int]:
    """Fill the panel's votes: most clips get every expert, the rest only some.

    Returns (votes created, clips with every simulated expert's vote). Pairs that
    already have a vote are left alone, so running twice adds nothing.
    """
    if not clips or not experts:
        return 0, 0
    panel, rng = _demo_panel(clips=clips, n_experts=len(experts), seed=seed)
    n_partial = int(round(len(clips) * (1.0 - full_share)))
    partial = set(rng.choice(len(clips), size=n_partial, replace=False).tolist())
    existing = set(
        Vote.objects.filter(
            clip_id__in=[c.pk for c in clips], expert_id__in=[e.pk for e in experts]
        ).values_list("expert_id", "clip_id")
    )
    now = timezone.now()
    rows = []
    for i, clip in enumerate(clips):
        voters = np.arange(len(experts))
        if i in partial:
            low = max(1, len(experts) // 4)
            high = max(low, (3 * len(experts)) // 4)
            k = int(rng.integers(low, high + 1))
            voters = np.sort(rng.choice(len(experts), size=k, replace=False))
        for e in voters:
            expert = experts[int(e)]
            ago = timedelta(minutes=float(rng.uniform(10, 14 * 24 * 60)))
            if (expert.pk, clip.pk) in existing:
                continue
            grade = GRADES[int(panel.votes[i, e])]
            rows.append((expert.pk, clip.pk, grade, now - ago))
    created = services.votes_bulk_create_simulated(votes=rows, seconds_spent=9.0)
    return created, len(clips) - n_partial


def _demo_panel(
    *, clips: list[Clip], n_experts: int, seed: int
) -> tuple[Panel, np.random.Generator]:
    """The simulated panel of the demo's clips (the same for the same seed), and
    the generator that drew it, for the draws that follow."""
    rng = np.random.default_rng([seed, 7_000_003])
    qualities = np.array([c.latent_quality or 0.0 for c in clips], dtype=float)
    return simulate_panel(qualities=qualities, n_experts=n_experts, rng=rng), rng


def demo_repeats_ensure(
    *,
    clips: list[Clip],
    experts: list,
    seed: int,
    share: float = REPEAT_SHARE,
) -> int:
    """Hidden repeats of the simulated panel; returns how many were created.

    Each simulated expert sees a share (at least MIN_REPEATS) of the clips they
    voted on again, later, without being told, as the grading queue does with
    REPEAT_SHARE. The repeat is a second perception of the same clip by the same
    expert in the panel's own model (``modeling.synthetic``): the clip's
    ambiguity and the expert's severity stay, and the expert's noise on the first
    showing (drawn where it gives the first vote's grade) carries over with
    correlation RETEST_PERSISTENCE. Test–retest disagreement comes from that
    noise alone, so a noisier expert is a less consistent one. Pairs already
    repeated are left alone, so running twice adds nothing.
    """
    if not clips or not experts or share <= 0:
        return 0
    panel, _ = _demo_panel(clips=clips, n_experts=len(experts), seed=seed)
    index_of = {clip.pk: i for i, clip in enumerate(clips)}
    firsts: dict[int, list[tuple[int, str, object]]] = {}
    for expert_id, clip_id, grade, at in (
        Vote.objects.filter(clip_id__in=index_of, expert_id__in=[e.pk for e in experts])
        .order_by("clip_id")
        .values_list("expert_id", "clip_id", "grade", "created_at")
    ):
        firsts.setdefault(expert_id, []).append((clip_id, grade, at))
    repeated = set(
        RepeatVote.objects.filter(clip_id__in=index_of).values_list(
            "expert_id", "clip_id"
        )
    )
    now = timezone.now()
    rows = []
    for e, expert in enumerate(experts):
        voted = firsts.get(expert.pk, [])
        rng = np.random.default_rng([seed, 7_000_005, e])
        k = min(len(voted), max(MIN_REPEATS, int(round(share * len(voted)))))
        for j in sorted(rng.choice(len(voted), size=k, replace=False).tolist()):
            clip_id, first_grade, first_at = voted[j]
            i = index_of[clip_id]
            grade = _retest_grade(
                mean=float(
                    quality_to_score(clips[i].latent_quality or 0.0)
                    + panel.ambiguity[i]
                    + panel.severity[e]
                ),
                noise=float(panel.noise[e]),
                first=GRADES.index(first_grade),
                thresholds=panel.thresholds,
                rng=rng,
            )
            at = first_at + (now - first_at) * float(rng.uniform(0.2, 0.9))
            if (expert.pk, clip_id) not in repeated:
                rows.append((expert.pk, clip_id, grade, at))
    return services.repeat_votes_bulk_create_simulated(votes=rows, seconds_spent=9.0)


def _retest_grade(
    *,
    mean: float,
    noise: float,
    first: int,
    thresholds: tuple[float, ...],
    rng: np.random.Generator,
) -> str:
    """A repeat's grade: the first showing's noise is drawn from the normal
    truncated to the first grade's interval, then carried over with correlation
    RETEST_PERSISTENCE beside fresh noise."""
    edges = np.array([-np.inf, *thresholds, np.inf])
    a, b = (edges[first : first + 2] - mean) / noise  # the grade's noise interval
    first_noise = float(ndtri(rng.uniform(ndtr(a), ndtr(b))))
    if not np.isfinite(first_noise):  # an interval far out in a tail
        first_noise = float(a if np.isfinite(a) else b)
    rho = RETEST_PERSISTENCE
    again = mean + noise * (
        rho * first_noise + np.sqrt(1.0 - rho**2) * rng.standard_normal()
    )
    return GRADES[int(np.searchsorted(thresholds, again))]

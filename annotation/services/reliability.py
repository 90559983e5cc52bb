"""The panel's reliability and effort, added to the cached panel statistics:
Fleiss' κ and the ICC on the clips that have every vote, each expert's
Dawid–Skene confusion and accuracy, and the expert-hours spent and saved by the
vote budget. Pure helpers (arrays in, JSON-ready numbers out) plus one entry
point, ``panel_reliability``, that ``panel_statistics_compute`` calls."""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.db.models import Sum

from annotation import agreement, budget_emd, dispersion
from annotation.models import GRADES, RepeatVote
from annotation.selectors.panel import PanelVotes, finite_or_none

N_GRADES = len(GRADES)


def complete_clip_agreement(clip, grade, *, votes_per_clip: int) -> dict:
    """Fleiss' κ and the one-way ICC (form 1,1: one expert's grade; form 1,k: the
    panel's mean grade over k = ``votes_per_clip`` experts) on the clips that
    have exactly ``votes_per_clip`` votes. Both need the same number of votes per
    clip; the experts differ from clip to clip, hence the one-way ICC. None where
    fewer than two such clips exist or the statistic is undefined."""
    counts, _ = agreement.unit_value_counts(
        clip, grade, categories=np.arange(1, N_GRADES + 1)
    )
    _, index = agreement.value_codes(clip)
    complete = np.flatnonzero(counts.sum(axis=1) == votes_per_clip)
    out = {
        "votes_per_clip": int(votes_per_clip),
        "n_clips": int(len(complete)),
        "fleiss_kappa": None,
        "icc_single": None,
        "icc_mean": None,
    }
    if len(complete) < 2 or votes_per_clip < 2:
        return out
    keep = (counts.sum(axis=1) == votes_per_clip)[index]
    table = np.sort(
        np.asarray(grade)[keep][np.argsort(index[keep], kind="stable")].reshape(
            len(complete), votes_per_clip
        ),
        axis=1,
    ).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["fleiss_kappa"] = finite_or_none(agreement.fleiss_kappa(counts[complete]))
        out["icc_single"] = finite_or_none(agreement.icc(table, form="1,1"))
        out["icc_mean"] = finite_or_none(agreement.icc(table, form="1,k"))
    return out


def dawid_skene_experts(clip, expert, grade) -> dict:
    """{expert id (as text): {"confusion", "accuracy"}} from Dawid–Skene: the
    estimated confusion (5 × 5, rows the true grade, columns the expert's grade,
    each row the probability of each grade given the true one; zero rows for
    grades nobody gave) and the accuracy Σ_k π_k θ_kk, the chance the expert gives
    a clip its true grade, with π the estimated share of each true grade."""
    if not len(grade):
        return {}
    posteriors, confusions = agreement.dawid_skene(clip, expert, grade)
    used = np.unique(grade) - 1  # the categories dawid_skene found, as 0..4
    prior = np.zeros(N_GRADES)
    prior[used] = posteriors.mean(axis=0)
    out = {}
    for expert_id, confusion in zip(np.unique(expert).tolist(), confusions):
        full = np.zeros((N_GRADES, N_GRADES))
        full[np.ix_(used, used)] = confusion
        out[str(expert_id)] = {
            "confusion": [[round(float(x), 4) for x in row] for row in full],
            "accuracy": finite_or_none(float(prior @ np.diag(full))),
        }
    return out


def votes_not_asked(counts, *, votes_per_clip: int, budget: dict | None) -> dict:
    """Votes the vote budget did not ask for: on each clip it has closed with fewer
    than ``votes_per_clip`` votes, ``votes_per_clip`` minus the votes it received.
    A clip is closed by either rule that is on: the interval rule (``budget``'s
    ``ci_width`` > 0, settled with ``min_votes``) or the expected-EMD rule
    (``budget``'s ``emd`` > 0 with its prior ``alpha``; ``budget_emd.stops``).
    Zero with the budget off (``budget`` None)."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, N_GRADES)
    n = counts.sum(axis=1)
    if budget is None or not len(counts):
        return {"n_clips_closed": 0, "votes_not_asked": 0}
    closed = np.zeros(len(counts), dtype=bool)
    if budget.get("ci_width", 0) > 0:
        closed |= dispersion.clip_settled(
            counts, ci_width=budget["ci_width"], min_votes=budget["min_votes"]
        )
    if budget.get("emd", 0) > 0 and budget.get("alpha") is not None:
        closed |= budget_emd.stops(
            counts,
            alpha=np.asarray(budget["alpha"], dtype=np.float64),
            total=votes_per_clip,
            threshold=budget["emd"],
            min_votes=budget["min_votes"],
        )
    closed &= n < votes_per_clip
    return {
        "n_clips_closed": int(closed.sum()),
        "votes_not_asked": int((votes_per_clip - n[closed]).sum()),
    }


def expert_hours(*, expert, seconds, repeat_seconds: float, not_asked: int) -> dict:
    """Hours spent (final votes' and hidden repeats' seconds) and saved: votes not
    asked × the median over experts of each expert's median seconds per clip."""
    seconds = np.asarray(seconds, dtype=np.float64)
    medians = [float(np.median(own)) for own in seconds_by_expert(expert, seconds)]
    typical = float(np.median(medians)) if medians else None
    return {
        "hours_votes": float(seconds.sum()) / 3600.0,
        "hours_repeats": float(repeat_seconds) / 3600.0,
        "hours_spent": (float(seconds.sum()) + float(repeat_seconds)) / 3600.0,
        "typical_seconds": typical,
        "votes_not_asked": int(not_asked),
        "hours_saved": (not_asked * typical / 3600.0) if typical is not None else 0.0,
    }


def seconds_by_expert(expert, seconds) -> list[np.ndarray]:
    """Each expert's seconds (experts by ascending id, votes in their order), from
    one stable sort rather than one pass over all votes per expert."""
    _, index = agreement.value_codes(expert)
    if not len(index):
        return []
    small = index.astype(np.uint16) if index.max() < 2**16 else index  # radix sort
    ordered = np.asarray(seconds)[np.argsort(small, kind="stable")]
    return np.split(ordered, np.cumsum(np.bincount(index))[:-1])


def _budget() -> dict | None:
    ci_width, emd = settings.VOTE_BUDGET_CI_WIDTH, settings.VOTE_BUDGET_EMD
    if ci_width <= 0 and emd <= 0:
        return None
    from annotation.selectors.queue import vote_budget_emd_prior

    return {
        "ci_width": float(ci_width),
        "emd": float(emd),
        "alpha": vote_budget_emd_prior() if emd > 0 else None,
        "min_votes": int(settings.VOTE_BUDGET_MIN_VOTES),
    }


def panel_reliability(votes: PanelVotes) -> dict:
    """The keys ``panel_statistics_compute`` adds: "reliability", "dawid_skene"
    and "effort"."""
    counts, _ = agreement.unit_value_counts(
        votes.clip, votes.grade, categories=np.arange(1, N_GRADES + 1)
    )
    budget = _budget()
    saved = votes_not_asked(
        counts, votes_per_clip=int(settings.VOTES_PER_CLIP), budget=budget
    )
    repeat_seconds = RepeatVote.objects.filter(clip__is_active=True).aggregate(
        total=Sum("seconds_spent")
    )["total"]
    return {
        "reliability": complete_clip_agreement(
            votes.clip, votes.grade, votes_per_clip=int(settings.VOTES_PER_CLIP)
        ),
        "dawid_skene": dawid_skene_experts(votes.clip, votes.expert, votes.grade),
        "effort": {
            **expert_hours(
                expert=votes.expert,
                seconds=votes.seconds,
                repeat_seconds=repeat_seconds or 0.0,
                not_asked=saved["votes_not_asked"],
            ),
            "n_clips_closed": saved["n_clips_closed"],
            "budget_on": budget is not None,
        },
    }

"""The export bundle's datasheet: what, when, how many, agreement, licence."""

from __future__ import annotations

from datetime import UTC, datetime

from annotation.models import Clip, Vote
from exports.bundle_tables import iso_time


def datasheet_text(
    summary: dict,
    *,
    synthetic: bool,
    licence: str,
    snapshot,
    version,
    format_label: str,
) -> str:
    """The bundle's datasheet.md from its summary counts and the database."""
    from annotation.selectors import panel_statistics_latest

    statistics = panel_statistics_latest()
    from django.db.models import Max, Min

    span = Vote.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    n_patients = (
        Clip.objects.filter(is_active=True, review=Clip.Review.APPROVED)
        .values("patient")
        .distinct()
        .count()
    )
    n_experts = Vote.objects.values("expert").distinct().count()
    alpha = statistics.data.get("alpha") if statistics else None
    lines = [
        "# Datasheet",
        "",
        f"- Exported: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, format {format_label}",
        "- **Synthetic**: "
        + ("yes — simulated clips and votes" if synthetic else "no"),
        f"- Clips: {summary['n_clips']} with frames; patients: {n_patients}; "
        f"experts: {n_experts}; votes: {summary['n_votes']} (hidden repeats included, "
        "flagged)",
        f"- Collection: {span['first']:%Y-%m-%d} to {span['last']:%Y-%m-%d}"
        if span["first"]
        else "- Collection: no votes yet",
        f"- Panel agreement: Krippendorff's α (ordinal) {alpha['value']:.3f}, 95 % "
        f"interval {alpha['low']:.3f}–{alpha['high']:.3f}"
        if alpha and alpha.get("value") is not None
        else "- Panel agreement: not computed yet",
        f"- Licence: {licence or '(not given by the exporting admin)'}",
        f"- Snapshot: {snapshot.sha256}" if snapshot else "- Snapshot: none chosen",
        f"- Predictions: model version v{version.number}"
        if version
        else "- Predictions: none",
        "- Identifiers: keyed pseudonyms (C- clips, E- experts, P- patients, R- "
        "recordings), stable within the exporting instance only",
        "",
        _training_line(summary, snapshot),
        "",
        "Train without the platform: `python -m modeling train --data <this zip or "
        "its folder> --out run`.",
        "",
    ]
    return "\n".join(lines)


def _training_line(summary: dict, snapshot) -> str:
    if snapshot is None:
        return (
            f"- Training manifest (`manifest.jsonl`): {summary['n_training_clips']} "
            f"clips with at least {summary['min_votes']} votes, the platform's "
            "snapshot rule; the target is the normalised histogram of each expert's "
            f"current grade (hidden repeats excluded). {summary['n_below_min_votes']} "
            "clips with fewer votes are in `clips.jsonl` and `clips/` only."
        )
    return (
        f"- Training manifest (`manifest.jsonl`): snapshot {snapshot.sha256[:12]}'s "
        f"{summary['n_training_clips']} clips with their votes as they stood at its "
        f"cutoff ({iso_time(snapshot.cutoff)}, at least "
        f"{summary['min_votes']} votes then), not today's: today's votes are in "
        "`votes.csv` and `distributions.csv`. Clips are named by pseudonym; "
        "`snapshot.json` says how the exporting instance gets the snapshot's own "
        f"manifest back (its SHA-256). {summary['n_not_in_snapshot']} exported clips "
        "are not in the snapshot and are in `clips.jsonl` and `clips/` only."
    )

"""The comparison's markdown: the Table-1-style metrics table, the paired
differences to the speed-only kNN with their intervals, and the context lines
(machine, data, protocol, seeds, command) that make a table reproducible.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from modeling.compare import TABLE_COLUMNS, machine_describe
from modeling.config import Config
from modeling.data import ClipSet
from modeling.grade_tables import grade_tables_markdown
from modeling.paired import verdict
from modeling.references import BASELINE_NAME, SPEED_KNN_NAME

PAIRED_TEXT = (
    "Δ EMD = the row's EMD minus the speed-only kNN's, clip by clip on the same "
    "test folds of the same seed (in units of 1e-2; negative = better than the "
    "speed alone). A clip's difference is averaged over the seeds, then over the "
    "clips. Each seed is a complete cross-validation with its own folds, "
    "initialisation and data order, so every clip is held out once per seed. "
    "The interval resamples both what could have come out otherwise: the "
    "training seeds (drawn with replacement among those the row ran) and the "
    "patients (every clip of a drawn patient comes along), {n_boot} resamples, "
    "percentile interval. The {m} intervals of this document are one family, "
    "corrected for multiplicity by Bonferroni: each is a {each:.2%} interval, so "
    'that all of them hold together with 95 % probability ("95 % family-wise"). '
    "A row beats the speed features only when its whole interval lies below "
    "zero; a row with one seed has no training variance in its interval and its "
    "verdict says so. The controls "
    "run the model with one input taken away in training, validation and test "
    "alike: video zeroed (black frames), video shuffled (each clip gets the "
    "frames of another patient's clip of the same split, its speed and target "
    "kept), speed zeroed (the standardised speed set to 0)."
)
CI_HEADER = "[95 % family-wise CI]"


def _cell(mean: float, std: float, style: str) -> str:
    if style == "sci":
        exponent = math.floor(math.log10(abs(mean))) if mean else 0
        scale = 10.0**exponent
        return f"{mean / scale:.3f}e{exponent} ± {std / scale:.3f}e{exponent}"
    return f"{mean:.3f} ± {std:.3f}"


def _delta_cell(delta: dict | None) -> str:
    """Δ and its interval in units of 1e-2 EMD."""
    if delta is None:
        return "-"
    return (
        f"{100 * delta['delta']:+.3f} [{100 * delta['low']:+.3f}, "
        f"{100 * delta['high']:+.3f}]"
    )


def _list_cell(values: list, scale: float = 100.0) -> str:
    return ", ".join("-" if v is None else f"{scale * v:+.3f}" for v in values)


def _folds_better(delta: dict) -> str:
    per_fold = [v for seed in delta["per_fold"] for v in seed if v is not None]
    return f"{sum(v < 0 for v in per_fold)}/{len(per_fold)}"


VERDICT_TEXT = {
    "better": "better (interval below 0)",
    "worse": "worse (interval above 0)",
    "level": "not separated (interval holds 0)",
}


def _verdict_text(delta: dict) -> str:
    text = VERDICT_TEXT[verdict(delta)]
    if delta.get("n_seeds", 0) < 2:
        text += "; one seed: training variance not in the interval"
    return text


def paired_markdown(result: dict) -> str:
    """The paired tables: every row against the speed-only kNN, then each
    control against its own model and the models against each other."""
    alt_rule = next(
        (r["selection_alt"] for r in result["rows"] if "mean_alt" in r), None
    )
    header = (
        "| Row | Loss | Seeds | EMD per seed (1e-2) | Δ EMD vs speed-only "
        f"(1e-2) {CI_HEADER} | Δ per seed (1e-2) | Folds below 0 | Verdict |"
    )
    if alt_rule:
        header += f" Δ, checkpoint by {alt_rule} (1e-2) {CI_HEADER} |"
    n_cols = header.count("|") - 1
    lines = [header, "|" + "---|" * n_cols]
    base = result["baseline"]
    references = [{"model": BASELINE_NAME, "loss": "-", **base}]
    references += [{"model": r["name"], "loss": "-", **r} for r in result["references"]]
    for row in result["rows"] + references:
        delta = row.get("delta")
        if delta is None:
            continue
        seeds = ", ".join(map(str, row.get("seeds", result["seeds"])))
        emd = ", ".join(
            "-" if v is None else f"{100 * v:.3f}" for v in row["per_seed_emd"]
        )
        reference = row["model"] == SPEED_KNN_NAME
        cells = [
            row["model"],
            row["loss"],
            seeds,
            emd,
            "0 (the reference)" if reference else _delta_cell(delta),
            _list_cell(delta["per_seed"]),
            "-" if reference else _folds_better(delta),
            "-" if reference else _verdict_text(delta),
        ]
        if alt_rule:
            cells.append(
                _delta_cell(row.get("delta_alt")) if "mean_alt" in row else "-"
            )
        lines.append("| " + " | ".join(cells) + " |")
    pairs = result.get("pairs", [])
    if pairs:
        lines += [
            "",
            "Rows against each other (A minus B, same clips, same pooling):",
            "",
            f"| A | B | Loss | Δ EMD A − B (1e-2) {CI_HEADER} | Δ per seed (1e-2) "
            "| Folds below 0 | Verdict for A |",
            "|---|---|---|---|---|---|---|",
        ]
        for pair in pairs:
            d = pair["delta"]
            lines.append(
                f"| {pair['a']} | {pair['b']} | {pair['loss']} | {_delta_cell(d)} "
                f"| {_list_cell(d['per_seed'])} | {_folds_better(d)} "
                f"| {_verdict_text(d)} |"
            )
    return "\n".join(lines)


def findings(result: dict) -> list[str]:
    """One sentence per family-wise interval that excludes zero, nothing for the
    others: the claims the tables back. A difference from one seed is no claim
    (its interval leaves out how training varies)."""
    out = []
    for row in result["rows"]:
        d = row.get("delta")
        if d is not None and verdict(d) != "level" and d.get("n_seeds", 0) >= 2:
            out.append(
                f"{row['model']} ({row['loss']}) is {verdict(d)} than the speed-only "
                f"kNN: Δ EMD {_delta_cell(d)} e-2."
            )
    for pair in result.get("pairs", []):
        d = pair["delta"]
        if verdict(d) != "level" and d.get("n_seeds", 0) >= 2:
            out.append(
                f"{pair['a']} is {verdict(d)} than {pair['b']} ({pair['loss']}): "
                f"Δ EMD {_delta_cell(d)} e-2."
            )
    return out


def _paired_text(result: dict) -> str:
    family = result.get("family", {"n_intervals": 0, "each": 0.95})
    return PAIRED_TEXT.format(
        n_boot=result.get("n_boot", 0), m=family["n_intervals"], each=family["each"]
    )


def compare_markdown(result: dict, *, context: dict) -> str:
    """Table-1-style markdown; the best value per column is in bold. With paired
    differences (``compare_collect``), the paired tables and the findings they
    back follow."""
    entries = [(r["model"], r["loss"], r["mean"], r["std"]) for r in result["rows"]]
    base = result["baseline"]
    references = [(BASELINE_NAME, "-", base["mean"], base["std"])]
    references += [
        (r["name"], "-", r["mean"], r["std"]) for r in result.get("references", [])
    ]
    # the bold goes to models only, never to a control or a reference
    models = [
        e
        for e, r in zip(entries, result["rows"], strict=True)
        if r.get("control", "none") == "none"
    ]
    best = {}
    for key, _, _, direction in TABLE_COLUMNS:
        values = [e[2][key] for e in models] or [r[2][key] for r in references]
        best[key] = min(values) if direction == "min" else max(values)
    entries += references
    header = "| Model | Loss | " + " | ".join(c[1] for c in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE_COLUMNS) + 2)]
    for model, loss, mean, std in entries:
        cells = []
        for key, _, style, _ in TABLE_COLUMNS:
            text = _cell(mean[key], std[key], style)
            cells.append(f"**{text}**" if mean[key] == best[key] else text)
        lines.append(f"| {model} | {loss} | " + " | ".join(cells) + " |")
    if result.get("skipped"):
        context = {**context, "Not run (time budget)": ", ".join(result["skipped"])}
    ctx = "\n".join(f"- {k}: {v}" for k, v in context.items())
    grades = ""
    if all("grades" in r for r in result["rows"]) and "grades" in base:
        grade_rows = [(r["model"], r["grades"]) for r in result["rows"]]
        grade_rows.append((BASELINE_NAME, base["grades"]))
        grade_rows += [(r["name"], r["grades"]) for r in result.get("references", [])]
        grades = "\n" + grade_tables_markdown(grade_rows)
    paired = ""
    if any(r.get("delta") for r in result["rows"]):
        claims = findings(result) or [
            "none: no interval of a model or control excludes zero, so none is "
            "shown better or worse than the speed-only kNN or than another row"
        ]
        paired = (
            "\n## Paired against the speed-only kNN\n\n"
            f"{_paired_text(result)}\n\n"
            + paired_markdown(result)
            + "\n\nWhat the intervals back (generated from the tables above):\n\n"
            + "\n".join(f"- {c}" for c in claims)
            + "\n"
        )
    return (
        "# Model comparison (Table 1 of Nakagawa et al., on synthetic data)\n\n"
        "Generated by `benchmarks/compare_models.py`; do not edit by hand.\n\n"
        f"{ctx}\n\n"
        "Mean ± std over the held-out test folds (every seed's folds pooled). "
        "EMD = mean over grades of "
        "squared CDF differences (eq. 6 of Nakagawa et al.); JSD and CE in nats; "
        "HI = histogram intersection; Macro HI = mean HI per true grade-mode "
        "class; Macro F1 and Mode acc. score the grade mode (ties to the better "
        "grade). Lower is better for EMD/MSE/JSD/CE, higher for the rest; the "
        "best model value of each column is bold (never a control's). The last "
        "rows are references "
        "on the same folds, not models: the training-set mean distribution (the "
        "floor to beat), a k-nearest-neighbour predictor on the speed features "
        "alone (what the clip must add to), and on synthetic data one on the "
        "speed plus the true shape defect (what a perfect reader of single "
        "frames could add) and one on the true latent quality (about the best "
        "any model can do, given the panel's own noise); their k is chosen on "
        "each fold's validation split. The chance row gives each test clip the "
        "panel of another test clip of its fold (a label permutation, 20 per "
        "fold): the level every column must be read against.\n\n"
        + "\n".join(lines)
        + "\n"
        + grades
        + paired
    )


def _wall_text(result: dict) -> str:
    runs = result.get("runs")
    if not runs:
        return f"{result['wall_s']:.0f} s for the whole table"
    total = sum(r["wall_s"] for r in runs)
    text = f"{total:.0f} s of cross-validation over {len(runs)} runs"
    if abs(total - result["wall_s"]) > 0.1 * total:
        text += (
            f" ({result['wall_s']:.0f} s in the invocation that wrote the table; "
            "the rest are runs read back with --resume)"
        )
    return text


def _seeds_text(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return (
        f"seeds {', '.join(map(str, seeds))} (each sets the folds, the "
        "initialisation and the data order; the table pools every seed's test folds)"
    )


def _alt_text(rule: str) -> str:
    if rule == "none":
        return ""
    what = "each run's own loss" if rule == "loss" else f"validation {rule}"
    return f" (and, reported beside it, by {what})"


def context_describe(
    *, clips: ClipSet, base: Config, result: dict, extra: dict
) -> dict:
    d, o, cv = base.data, base.optim, base.cv
    return {
        "Date": result.get("date") or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "Machine": machine_describe(
            result.get("device", ""), result.get("threads_per_run")
        ),
        "Data": (
            f"{len(clips)} clips, {len(set(clips.patient_ids))} patients, "
            f"{clips.videos.shape[1]} frames of {clips.videos.shape[2]} px; "
            f"model input {d.n_frames} frames of {d.size} px; speed features "
            f"{', '.join(d.speed_features) or 'none'}"
        ),
        "Protocol": (
            f"{cv.k}-fold CV stratified by grade mode, grouped by patient; "
            f"{_seeds_text(result.get('seeds') or [cv.seed])}; checkpoint chosen by "
            f"validation {cv.selection_metric}{_alt_text(cv.also_select_by)} on "
            f"{cv.val_fraction:.0%} of the training patients; class-balanced "
            f"sampling {'on' if cv.balanced_sampling else 'off'}"
        ),
        "Training": (
            f"{o.optimizer.upper()} lr {o.lr:g}, momentum {o.momentum:g}, weight "
            f"decay {o.weight_decay:g}, {o.epochs} epochs, batch {o.batch_size}, "
            f"scheduler {o.scheduler}; augmentation "
            f"{'on' if base.augment.enabled else 'off'}; amp {base.runtime.amp}"
        ),
        "Wall time": _wall_text(result),
        **extra,
    }

"""What a study's runs show, in sentences computed from them: the report's findings section.

Nothing here is typed by hand: each line is derived from the study table (:func:`analysis.tables.study_table`),
the runs' training curves and, for the synthetic direction-of-motion sets, the within-pair accuracies. A
claim that the runs cannot support is said as such ("not distinguishable at this budget"), never left out.

- **Trained or not.** A run whose training loss stayed at chance (ln K) after its warm-up did not train
  (:func:`gsf.engine.health.did_not_train`); it stays in the counts and the means, and every table and figure
  marks it.
- **Frame-order blindness.** A model without temporal modules (TSN) cannot tell a motion from its reverse:
  its within-pair accuracy is at chance (50 %) when the 95 % t-interval over seeds holds 50 %.
- **Against the baseline, and each knob against the paper's setting.** Welch's t-test over seeds on the
  table's primary metric; p < 0.05 is "distinguishable", anything else "not distinguishable at this budget".
"""

from __future__ import annotations

import json
import math

import pandas as pd

CHANCE_WITHIN_PAIR_PCT = 50.0


def _warmup_epochs(run: pd.Series) -> int:
    try:
        return int(json.loads(run["params_json"]).get("optim.warmup_epochs", 0))
    except (TypeError, ValueError, KeyError):
        return 0


def mark_training(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``did_not_train`` column: True, False, or None where it cannot be told (no class count
    logged, no epoch after the warm-up, a run that did not finish)."""
    from gsf.engine.health import did_not_train

    losses = (history[history["key"] == "train_loss"].sort_values("epoch").groupby("run_id")["value"].apply(list)
              if not history.empty else pd.Series(dtype=object))
    marks = []
    for _, run in runs.iterrows():
        k = run.get("num_classes")
        if run["status"] != "FINISHED" or k is None or pd.isna(k) or run["run_id"] not in losses.index:
            marks.append(None)
            continue
        marks.append(did_not_train(losses[run["run_id"]], num_classes=int(k), warmup_epochs=_warmup_epochs(run)))
    out = runs.copy()
    out["did_not_train"] = pd.Series(marks, index=runs.index, dtype=object)
    return out


def _seeds_text(seeds: list[int]) -> str:
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds)


def training_lines(table: pd.DataFrame) -> list[str]:
    """Per variant: trained in n of n seeds, naming the seeds that did not."""
    parts, unknown = [], []
    for _, row in table.iterrows():
        told, dead = row["trained_told"], row["did_not_train_seeds"]
        if not told:
            unknown.append(row["label"])
            continue
        text = f"{row['label']} {told - len(dead)} of {told}"
        if dead:
            text += f" ({_seeds_text(dead)}: training loss at chance after the warm-up)"
        parts.append(text)
    lines = []
    if parts:
        lines.append("Trained (training loss below 0.9 ln K after the warm-up) in: " + "; ".join(parts) + ".")
    if unknown:
        lines.append("Not told whether they trained (no class count or no epoch after the warm-up logged): "
                     + ", ".join(unknown) + ".")
    return lines


def within_pair_lines(table: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """The frame-order-blind rows (no temporal module) on the direction pairs: at chance or not, with the
    95 % t-interval over seeds."""
    from analysis.tables import t_interval

    if pairs.empty:
        return []
    lines = []
    blind = table[table["temporal"].astype(str) == "none"]
    for _, row in blind.iterrows():
        part = pairs[pairs["run_id"].isin(row["run_ids"])]
        values = list(part.groupby("run_id")["within_pair"].mean() * 100.0)
        if not values:
            continue
        mean = sum(values) / len(values)
        low, high = t_interval(values)
        if math.isnan(low):
            lines.append(f"{row['label']} within the direction pairs: {mean:.1f} % over 1 seed: no interval, "
                         "so no claim about chance.")
            continue
        verdict = ("at chance (the interval holds 50 %): it cannot tell a motion from its reverse"
                   if low <= CHANCE_WITHIN_PAIR_PCT <= high else
                   "not at chance (the interval excludes 50 %)")
        lines.append(f"{row['label']} within the direction pairs: {mean:.1f} % [95 % CI {low:.1f}, {high:.1f}] "
                     f"over {len(values)} seeds, {verdict}.")
    return lines


def _comparison(row: pd.Series, base: pd.Series, what: str) -> str:
    from analysis.tables import SIGNIFICANCE, welch_p

    p = welch_p(list(row["top1_values"]), list(base["top1_values"]))
    delta = row["primary_mean_pct"] - base["primary_mean_pct"]
    n = f"{len(row['top1_values'])} vs {len(base['top1_values'])} seeds"
    if math.isnan(p):
        return f"{row['label']} vs {base['label']} ({what}): {delta:+.1f} points, {n}: too few seeds to tell."
    verdict = "distinguishable" if p < SIGNIFICANCE else "not distinguishable at this budget"
    return f"{row['label']} vs {base['label']} ({what}): {delta:+.1f} points, Welch p = {p:.2g}, {n}: {verdict}."


def comparison_lines(table: pd.DataFrame) -> list[str]:
    """Every temporal module against the baseline row, and every one-knob variant against the paper's
    setting (the row the others differ from in one knob, :func:`analysis.figures.knob_groups`)."""
    from analysis.figures import knob_groups

    measured = table[table["n"] > 0]
    lines = []
    bases = measured[measured["baseline"] == "yes"]
    if len(bases):
        base = bases.iloc[0]
        reference, groups = knob_groups(table)
        temporal_rows = next((members for key, members in groups if key == "model.temporal"), None)
        rows = ([table.loc[i] for i in temporal_rows if table.at[i, "baseline"] != "yes"] if temporal_rows
                else [r for _, r in measured.iterrows() if r["baseline"] != "yes"])
        lines += [_comparison(row, base, "against the baseline") for row in rows]
    else:
        reference, groups = knob_groups(table)
    if reference is not None:
        ref = table.loc[reference]
        for key, members in groups:
            if key == "model.temporal":
                continue
            knob = key.rsplit(".", 1)[-1]
            lines += [_comparison(table.loc[i], ref, f"{knob} changed from the paper's setting")
                      for i in members if i != reference]
    return lines


def study_findings(table: pd.DataFrame, pairs: pd.DataFrame) -> list[str]:
    """The findings section's lines for one study (Markdown list items without the dash)."""
    primary = next((m for m in table["primary_metric"] if m), "top-1")
    lines = training_lines(table) + within_pair_lines(table, pairs)
    comparisons = comparison_lines(table)
    if comparisons:
        lines.append(f"On {primary}:")
        lines += [SUB_ITEM + line for line in comparisons]
    return lines


# A findings line that belongs under the line before it.
SUB_ITEM = "  "


def findings_markdown(lines: list[str]) -> str:
    """The lines as a Markdown list (sub-items indented under theirs)."""
    return "\n".join(f"  - {line[len(SUB_ITEM):]}" if line.startswith(SUB_ITEM) else f"- {line}"
                     for line in lines) + "\n"

"""Figures of a study, drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas, no pyplot state) and
saved as PNG and PDF without creation dates or software versions, so a rerun writes the same bytes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
CHANCE_WITHIN_PAIR = 0.5


def _figure(width: float = 6.4, height: float = 4.0, ncols: int = 1):
    import seaborn as sns
    from matplotlib.figure import Figure

    with sns.axes_style("whitegrid"):
        figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
        axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, axes


def save_figure(figure, stem: Path) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``, deterministic bytes."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    figure.savefig(png, format="png", metadata=PNG_METADATA)
    figure.savefig(pdf, format="pdf", metadata=PDF_METADATA)
    return [png, pdf]


def _palette(n: int):
    import seaborn as sns

    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def _measured(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["n"] > 0]


def accuracy_vs_gmacs(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    """Top-1 against GMACs per view, marker area proportional to parameters, one colour per variant."""
    rows = _measured(table).dropna(subset=["gmacs_per_view"])
    if rows.empty:
        return None
    figure, (ax,) = _figure()
    colours = _palette(len(rows))
    largest = float(np.nanmax(rows["params_m"])) if rows["params_m"].notna().any() else 1.0
    for colour, (_, row) in zip(colours, rows.iterrows()):
        size = 40 + 400 * (row["params_m"] / largest if largest and not math.isnan(row["params_m"]) else 0.5)
        std = 0.0 if math.isnan(row["top1_std_pct"]) else row["top1_std_pct"]
        ax.errorbar(row["gmacs_per_view"], row["top1_mean_pct"], yerr=std, fmt="none", ecolor=colour, capsize=3)
        ax.scatter(row["gmacs_per_view"], row["top1_mean_pct"], s=size, color=colour, alpha=0.8,
                   edgecolor="black", linewidth=0.5, label=f"{row['label']} ({row['params_m']:.2f} M)")
    ax.set_xlabel("GMACs per view")
    ax.set_ylabel("top-1 (%), mean ± std over seeds")
    ax.set_title(title)
    ax.legend(fontsize="x-small", title="variant (params)", title_fontsize="x-small", loc="best", markerscale=0.4)
    return save_figure(figure, stem)


def ablation_bars(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    """One bar per variant: mean top-1 with std error bars over seeds, each seed as a dot."""
    rows = _measured(table)
    if rows.empty:
        return None
    figure, (ax,) = _figure(max(6.4, 0.9 * len(rows) + 2), 4.5)
    x = np.arange(len(rows))
    colours = ["0.55" if b == "yes" else c for b, c in zip(rows["baseline"], _palette(len(rows)))]
    errors = [0.0 if math.isnan(s) else s for s in rows["top1_std_pct"]]
    ax.bar(x, rows["top1_mean_pct"], yerr=errors, color=colours, capsize=4, edgecolor="black", linewidth=0.5)
    for i, values in enumerate(rows["top1_values"]):
        ax.scatter(np.full(len(values), x[i]), values, color="black", s=10, zorder=3)
    ax.set_xticks(x, [label.replace(", ", "\n") for label in rows["label"]], fontsize="x-small")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title + " (grey: baseline; bars: mean ± std, dots: seeds)", fontsize="small")
    return save_figure(figure, stem)


def accuracy_vs_frames(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    """Top-1 against the number of frames, one line per variant of the other axes; None if frames are fixed."""
    rows = _measured(table).dropna(subset=["frames"])
    if rows["frames"].nunique() < 2:
        return None
    axis_columns = [c for c in table.attrs.get("axis_columns", []) if c != "data.num_frames"]
    keys = rows[axis_columns].astype(str).agg(", ".join, axis=1) if axis_columns else pd.Series("all", index=rows.index)
    figure, (ax,) = _figure()
    groups = sorted(set(keys))
    for colour, group in zip(_palette(len(groups)), groups):
        part = rows[keys == group].sort_values("frames")
        errors = [0.0 if math.isnan(s) else s for s in part["top1_std_pct"]]
        ax.errorbar(part["frames"], part["top1_mean_pct"], yerr=errors, marker="o", capsize=3, color=colour,
                    label=group or "all")
    ax.set_xlabel("frames per clip")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.legend(fontsize="x-small", title=", ".join(c.rsplit(".", 1)[-1] for c in axis_columns) or None,
              title_fontsize="x-small")
    return save_figure(figure, stem)


def training_curves(history: pd.DataFrame, labels: dict[str, str], stem: Path, *, title: str) -> list[Path] | None:
    """``val_top1`` and ``train_loss`` per epoch; one colour per variant, one line per seed (run)."""
    if history.empty:
        return None
    variants = sorted(set(labels.values()))
    colour_of = dict(zip(variants, _palette(len(variants))))
    figure, axes = _figure(11.0, 4.2, ncols=2)
    for ax, key, ylabel in ((axes[0], "val_top1", "val top-1 (%)"), (axes[1], "train_loss", "train loss")):
        shown = set()
        part = history[history["key"] == key]
        for run_id in sorted(part["run_id"].unique(), key=lambda r: (labels.get(r, ""), r)):
            curve = part[part["run_id"] == run_id].sort_values("epoch")
            variant = labels.get(run_id, run_id)
            scale = 100.0 if key == "val_top1" else 1.0
            ax.plot(curve["epoch"], curve["value"] * scale, marker="o", markersize=3, linewidth=1,
                    color=colour_of.get(variant, "black"), label=None if variant in shown else variant)
            shown.add(variant)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize="x-small")
    figure.suptitle(title, fontsize="small")
    return save_figure(figure, stem)


def pair_accuracy_bars(pairs: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    """Within-pair accuracy per direction pair and variant (mean over seeds, std as error bars), with the
    chance line at 0.5 where a frame-order-blind model sits."""
    if pairs.empty:
        return None
    variants = sorted(pairs["label"].unique())
    pair_ids = sorted(pairs["pair_name"].unique())
    figure, (ax,) = _figure(max(6.4, 1.2 * len(pair_ids) + 2), 4.5)
    width = 0.8 / len(variants)
    for i, (variant, colour) in enumerate(zip(variants, _palette(len(variants)))):
        stats = (pairs[pairs["label"] == variant].groupby("pair_name")["within_pair"]
                 .agg(["mean", "std", "count"]).reindex(pair_ids))
        errors = [0.0 if (math.isnan(s) or c < 2) else s for s, c in zip(stats["std"], stats["count"])]
        ax.bar(np.arange(len(pair_ids)) + (i - (len(variants) - 1) / 2) * width, stats["mean"] * 100.0,
               width=width, yerr=np.asarray(errors) * 100.0, color=colour, capsize=2, label=variant)
    ax.axhline(CHANCE_WITHIN_PAIR * 100.0, color="black", linestyle="--", linewidth=1, label="chance (50 %)")
    ax.set_xticks(np.arange(len(pair_ids)), pair_ids, fontsize="x-small")
    ax.set_ylim(0, 105)
    ax.set_ylabel("within-pair accuracy (%)")
    ax.set_title(title, fontsize="small")
    ax.legend(fontsize="x-small")
    return save_figure(figure, stem)

"""Figures of a study, drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas, no pyplot state) and
saved as PNG and PDF without creation dates or software versions, so a rerun writes the same bytes.

Every figure names variants by their short names (the table's ``label``: TSN, GSF G=1, ...), shows the
spread over seeds, and keeps legends and labels off the data: legends sit outside the axes, and the points
of accuracy vs GMACs are labelled in place at the first free spot (checked against the renderer's own text
extents). ``draw_*`` return the Figure (for tests); the plain names save it and return the paths.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.tables import decimals_to_tell_apart
from gsf import mlflow_schema as schema

PNG_METADATA = {"Software": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
CHANCE_WITHIN_PAIR = 0.5
BASELINE_COLOUR = "0.6"
# Knob of a grid axis, as the ablation figure's group titles say it.
KNOB_TITLES = {"model.temporal": "temporal module", "model.groups": "gating groups", "model.fusion": "fusion",
               "model.channel_fraction": "channel fraction", "model.placement": "insertion point",
               "model.gate": "gate", "model.stages": "stages", "model.last_n_blocks": "blocks",
               "data.num_frames": "frames", "model.backbone": "backbone"}


def _figure(width: float = 6.4, height: float = 4.0, ncols: int = 1):
    import seaborn as sns
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with sns.axes_style("whitegrid"):
        figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)  # a renderer to measure text with, without pyplot
        axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, axes


def save_figure(figure, stem: Path) -> list[Path]:
    """``<stem>.png`` and ``<stem>.pdf``, deterministic bytes."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_suffix(".png"), stem.with_suffix(".pdf")
    figure.savefig(png, format="png", metadata=PNG_METADATA)
    figure.savefig(pdf, format="pdf", metadata=PDF_METADATA)
    return [png, pdf]


def _saved(figure, stem: Path) -> list[Path] | None:
    return None if figure is None else save_figure(figure, stem)


def _palette(n: int):
    """``n`` colours without grey (grey marks the baseline)."""
    import seaborn as sns

    tab10 = [c for i, c in enumerate(sns.color_palette("tab10", 10)) if i != 7]
    return tab10[:n] if n <= len(tab10) else sns.color_palette("husl", n)


def _measured(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["n"] > 0]


def _colours(labels) -> dict[str, tuple]:
    """One colour per variant, in table order, the same in every figure of a study."""
    labels = list(dict.fromkeys(labels))
    return dict(zip(labels, _palette(len(labels))))


def variant_colours(table: pd.DataFrame) -> dict[str, object]:
    """Each variant's colour in every figure of a study: the baseline grey, the others in table order."""
    others = [label for label, base in zip(table["label"], table["baseline"]) if base != "yes"]
    colours: dict[str, object] = _colours(others)
    colours.update({label: BASELINE_COLOUR for label, base in zip(table["label"], table["baseline"]) if base == "yes"})
    return {label: colours[label] for label in table["label"]}


def _interval(row) -> tuple[float, float]:
    """Error bar half-lengths below and above the mean: the 95 % t-interval over seeds, 0 with one seed."""
    mean, low, high = row["primary_mean_pct"], row["top1_ci_low_pct"], row["top1_ci_high_pct"]
    if pd.isna(low) or pd.isna(high):
        return 0.0, 0.0
    return mean - low, high - mean


def _metric_label(table: pd.DataFrame) -> str:
    return next((m for m in table["primary_metric"] if m), "top-1")


# --- accuracy vs GMACs ------------------------------------------------------------------------------------

def _overlaps(box, others, pad: float = 2.0) -> bool:
    return any(box.x0 - pad < o.x1 and o.x0 < box.x1 + pad and box.y0 - pad < o.y1 and o.y0 < box.y1 + pad
               for o in others)


def _place_labels(figure, ax, points: list[tuple[float, float, str]], obstacles: list) -> None:
    """Write each point's label at the first candidate offset whose text box, measured by the renderer,
    stays inside the axes and clear of every other label, marker and error bar (``obstacles``: display
    boxes); the least crowded candidate when none is free."""
    renderer = figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list = []
    directions = [(1, 0, "left", "center"), (-1, 0, "right", "center"), (0, 1, "center", "bottom"),
                  (0, -1, "center", "top"), (1, 1, "left", "bottom"), (-1, 1, "right", "bottom"),
                  (1, -1, "left", "top"), (-1, -1, "right", "top")]
    for x, y, text in points:
        best, best_cost = None, math.inf
        for distance in (7, 14, 24, 36):
            for dx, dy, ha, va in directions:
                label = ax.annotate(text, (x, y), xytext=(dx * distance, dy * distance), textcoords="offset points",
                                    ha=ha, va=va, fontsize="small", annotation_clip=False)
                label.set_in_layout(False)
                box = label.get_window_extent(renderer)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                cost = (0 if inside else 100) + 10 * _overlaps(box, placed) + _overlaps(box, obstacles) + distance / 100
                if cost < best_cost:
                    if best is not None:
                        best[0].remove()
                    best, best_cost = (label, box), cost
                else:
                    label.remove()
                if cost < 1:
                    break
            if best_cost < 1:
                break
        placed.append(best[1])


def draw_accuracy_vs_gmacs(table: pd.DataFrame, *, title: str):
    """Top-1 against GMACs per view as in the paper's comparison figures: one labelled point per variant,
    error bars the 95 % t-interval over seeds, marker area growing with parameters, no legend."""
    rows = _measured(table).dropna(subset=["gmacs_per_view", "primary_mean_pct"])
    if rows.empty:
        return None
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    figure, (ax,) = _figure(6.4, 4.4)
    colour_of = variant_colours(table)
    largest = float(np.nanmax(rows["params_m"])) if rows["params_m"].notna().any() else math.nan
    for _, row in rows.iterrows():
        share = row["params_m"] / largest if largest and not math.isnan(row["params_m"]) else 0.5
        below, above = _interval(row)
        colour = colour_of[row["label"]]
        ax.errorbar(row["gmacs_per_view"], row["primary_mean_pct"], yerr=[[below], [above]], fmt="none",
                    ecolor=colour, capsize=3, linewidth=1)
        ax.scatter(row["gmacs_per_view"], row["primary_mean_pct"], s=30 + 60 * share, color=colour,
                   edgecolor="black", linewidth=0.5, zorder=3)
    x, y = rows["gmacs_per_view"].to_numpy(float), rows["primary_mean_pct"].to_numpy(float)
    lows = y - np.array([_interval(r)[0] for _, r in rows.iterrows()])
    highs = y + np.array([_interval(r)[1] for _, r in rows.iterrows()])
    span_x = max(x.max() - x.min(), abs(x.max()) * 0.02, 1e-6)
    span_y = max(highs.max() - lows.min(), 5.0)
    ax.set_xlim(x.min() - 0.35 * span_x, x.max() + 0.35 * span_x)  # room for labels on either side
    ax.set_ylim(lows.min() - 0.15 * span_y, highs.max() + 0.15 * span_y)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FormatStrFormatter(f"%.{_tick_decimals(ax.get_xticks())}f"))
    ax.set_xlabel("GMACs per view")
    ax.set_ylabel(f"{_metric_label(table)} (%)")
    ax.set_title(title + "\n(error bars: 95 % t-interval over seeds; marker area: parameters; grey: baseline)",
                 fontsize="small")
    figure.draw_without_rendering()  # settle the layout, so the label boxes below are final
    renderer = figure.canvas.get_renderer()
    obstacles = []
    for collection in ax.collections:
        obstacles.append(collection.get_window_extent(renderer))
        for offset in collection.get_offsets():
            cx, cy = ax.transData.transform(offset)
            obstacles.append(_box(cx - 6, cy - 6, cx + 6, cy + 6))
    points = sorted(zip(x, y, rows["label"]), key=lambda p: (-p[1], p[0]))
    _place_labels(figure, ax, points, obstacles)
    return figure


def _tick_decimals(ticks) -> int:
    """The fewest decimals that print every tick of an evenly spaced axis differently."""
    return decimals_to_tell_apart(np.asarray(ticks, float), minimum=1)


def _box(x0, y0, x1, y1):
    from matplotlib.transforms import Bbox

    return Bbox([[x0, y0], [x1, y1]])


def accuracy_vs_gmacs(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    return _saved(draw_accuracy_vs_gmacs(table, title=title), stem)


# --- ablation bars grouped by knob ----------------------------------------------------------------------

def knob_groups(table: pd.DataFrame) -> tuple[int | None, list[tuple[str, list[int]]]]:
    """``(reference, groups)``: the row that differs from every other row in at most one axis (the
    paper's setting of a one-knob-at-a-time grid), and per axis the rows that differ from it there,
    reference first. Without such a row: ``(None, [("", all rows)])``."""
    rows = list(_measured(table).index)
    axes = table.attrs.get("axis_columns", [])

    def differing(i, j):
        return [k for k in axes if str(table.at[i, k]) != str(table.at[j, k])]

    for reference in rows:
        if all(len(differing(reference, j)) <= 1 for j in rows) and len(rows) > 1:
            groups: dict[str, list[int]] = {}
            for j in rows:
                if j != reference:
                    groups.setdefault(differing(reference, j)[0], []).append(j)
            order = [k for k in KNOB_TITLES if k in groups] + [k for k in axes if k in groups and k not in KNOB_TITLES]
            ordered = [(key, [reference, *groups[key]]) for key in order]
            return reference, ordered
    return None, [("", rows)]


def _wrapped(name: str) -> str:
    head, _, tail = name.partition(" ")
    return f"{head}\n{tail}" if tail else name


def draw_ablation_bars(table: pd.DataFrame, *, title: str):
    """Bars of the primary top-1 per variant, grouped by the knob that differs from the paper's setting
    (the reference bar, hatched, starts each group); error bars the 95 % t-interval, dots the seeds; the
    grid's baseline in grey."""
    rows = _measured(table)
    if rows.empty:
        return None
    reference, groups = knob_groups(table)
    slots, centres, x = [], [], 0.0
    for key, members in groups:
        start = x
        for i in members:
            slots.append((x, i))
            x += 1.0
        centres.append(((start + x - 1) / 2, KNOB_TITLES.get(key, key.rsplit(".", 1)[-1])))
        x += 0.6  # gap between groups
    figure, (ax,) = _figure(max(6.4, 0.62 * len(slots) + 1.6), 4.6)
    colour_of = variant_colours(table)
    any_dead = False
    for position, i in slots:
        row = table.loc[i]
        colour = colour_of[row["label"]]
        below, above = _interval(row)
        ax.bar(position, row["primary_mean_pct"], width=0.8, color=colour, edgecolor="black", linewidth=0.5,
               hatch="//" if i == reference else None, yerr=[[below], [above]], capsize=3)
        values = np.asarray(row["top1_values"], dtype=float)
        dead = np.asarray(row.get("did_not_train_flags", [False] * len(values)) or [False] * len(values), dtype=bool)
        ax.scatter(np.full(int((~dead).sum()), position), values[~dead], color="black", s=8, zorder=3)
        if dead.any():
            ax.scatter(np.full(int(dead.sum()), position), values[dead], color="red", marker="x", s=36,
                       linewidths=1.5, zorder=4)
            any_dead = True
    ax.set_xticks([p for p, _ in slots], [_wrapped(table.at[i, "label"]) for _, i in slots], fontsize="small")
    if any(title for _, title in centres):
        for centre, name in centres:
            ax.annotate(name, (centre, 0), xycoords=("data", "axes fraction"), xytext=(0, -34),
                        textcoords="offset points", ha="center", va="top", fontsize="small", fontweight="bold")
    ax.set_xlim(-0.6, x - 0.6 + 0.0)
    ax.set_ylabel(f"{_metric_label(table)} (%)")
    marks = ["grey: baseline"] + (["hatched: the paper's setting, repeated in each group"] if reference is not None else [])
    dead_note = "; red x: a seed that did not train" if any_dead else ""
    ax.set_title(f"{title}\n(bars: mean, error bars: 95 % t-interval, dots: seeds{dead_note};\n{'; '.join(marks)})",
                 fontsize="small")
    return figure


def ablation_bars(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    return _saved(draw_ablation_bars(table, title=title), stem)


# --- accuracy vs frames ---------------------------------------------------------------------------------

def _without_frames(label: str) -> str:
    """A row's label without its clip length: ``GSF (num_frames=8, backbone=resnet18)`` -> ``GSF (backbone=resnet18)``,
    ``GSF (num_frames=8)`` -> ``GSF`` (:func:`analysis.tables.variant_names` appends what tells rows apart)."""
    name, sep, rest = label.partition(" (")
    if not sep or not rest.endswith(")"):
        return label
    kept = [part for part in rest[:-1].split(", ") if not part.startswith("num_frames=")]
    return f"{name} ({', '.join(kept)})" if kept else name


def draw_accuracy_vs_frames(table: pd.DataFrame, *, title: str):
    """Top-1 against the number of frames, one line per variant of the other axes; None if frames are fixed."""
    rows = _measured(table).dropna(subset=["frames"])
    if rows["frames"].nunique() < 2:
        return None
    names = [_without_frames(label) for label in rows["label"]]
    figure, (ax,) = _figure(7.4, 4.0)
    groups = list(dict.fromkeys(names))
    for colour, group in zip(_palette(len(groups)), groups):
        part = rows[[n == group for n in names]].sort_values("frames")
        errors = np.array([_interval(r) for _, r in part.iterrows()]).T
        ax.errorbar(part["frames"], part["primary_mean_pct"], yerr=errors, marker="o", capsize=3, color=colour,
                    label=group)
    ax.set_xlabel("frames per clip")
    ax.set_ylabel(f"{_metric_label(table)} (%)")
    ax.set_title(title, fontsize="small")
    figure.legend(loc="outside right upper", fontsize="small", title="variant", title_fontsize="small")
    return figure


def accuracy_vs_frames(table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    return _saved(draw_accuracy_vs_frames(table, title=title), stem)


# --- training curves ------------------------------------------------------------------------------------

def draw_training_curves(history: pd.DataFrame, labels: dict[str, str], *, title: str,
                         colours: dict[str, object] | None = None):
    """``val_top1`` and ``train_loss`` per epoch: per variant the mean over seeds (line) and the range
    over seeds (band); one legend for both panels, outside them."""
    if history.empty:
        return None
    from matplotlib.ticker import MaxNLocator

    colour_of = colours or _colours(labels.values())
    figure, axes = _figure(10.5, 3.8, ncols=2)
    for ax, key, ylabel, scale in ((axes[0], "val_top1", "validation top-1 (%)", 100.0),
                                   (axes[1], "train_loss", "training loss", 1.0)):
        part = history[history["key"] == key].assign(variant=lambda f: f["run_id"].map(labels))
        part = part.dropna(subset=["variant"])
        for variant, colour in colour_of.items():
            curve = part[part["variant"] == variant].groupby("epoch")["value"].agg(["mean", "min", "max"])
            if curve.empty:
                continue
            epochs = curve.index.to_numpy()
            ax.plot(epochs, curve["mean"] * scale, marker="o", markersize=3, linewidth=1.2, color=colour,
                    label=variant if ax is axes[0] else None)
            ax.fill_between(epochs, curve["min"] * scale, curve["max"] * scale, color=colour, alpha=0.15,
                            linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.legend(loc="outside right upper", fontsize="small", title="variant (line: mean,\nband: range over seeds)",
                  title_fontsize="small")
    figure.suptitle(title, fontsize="small")
    return figure


def training_curves(history: pd.DataFrame, labels: dict[str, str], stem: Path, *, title: str,
                    colours: dict[str, object] | None = None) -> list[Path] | None:
    return _saved(draw_training_curves(history, labels, title=title, colours=colours), stem)


# --- within-pair accuracy -------------------------------------------------------------------------------

def draw_pair_accuracy_bars(pairs: pd.DataFrame, *, title: str, order: list[str] | None = None,
                            colours: dict[str, object] | None = None):
    """Within-pair accuracy per direction pair and variant (mean over seeds, 95 % t-interval as error
    bars, seeds as dots), with the chance line at 50 % where a frame-order-blind model sits; legend outside."""
    if pairs.empty:
        return None
    from analysis.tables import t_interval

    present = list(pairs["label"].unique())
    variants = [v for v in (order or []) if v in present] + sorted(v for v in present if v not in (order or []))
    pair_ids = sorted(pairs["pair_name"].unique())
    colour_of = colours or _colours(order or variants)
    figure, (ax,) = _figure(max(6.4, 0.35 * len(variants) * len(pair_ids) + 3.5), 4.2)
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        part = pairs[pairs["label"] == variant]
        for j, pair in enumerate(pair_ids):
            values = part.loc[part["pair_name"] == pair, "within_pair"].dropna().to_numpy() * 100.0
            if not len(values):
                continue
            mean = float(values.mean())
            low, high = t_interval(list(values))
            error = [[0.0], [0.0]] if math.isnan(low) else [[mean - low], [high - mean]]
            position = j + (i - (len(variants) - 1) / 2) * width
            ax.bar(position, mean, width=width, yerr=error, color=colour_of.get(variant), capsize=2,
                   edgecolor="black", linewidth=0.4, label=variant if j == 0 else None)
            ax.scatter(np.full(len(values), position), values, color="black", s=5, zorder=3)
    ax.axhline(CHANCE_WITHIN_PAIR * 100.0, color="black", linestyle="--", linewidth=1, label="chance (50 %)")
    ax.set_xticks(np.arange(len(pair_ids)), pair_ids, fontsize="small")
    ax.set_ylim(0, 105)
    ax.set_ylabel("within-pair accuracy (%)")
    ax.set_title(title + "\n(bars: mean, error bars: 95 % t-interval, dots: seeds)", fontsize="small")
    figure.legend(loc="outside right upper", fontsize="small", title="variant", title_fontsize="small")
    return figure


def pair_accuracy_bars(pairs: pd.DataFrame, stem: Path, *, title: str, order: list[str] | None = None,
                       colours: dict[str, object] | None = None) -> list[Path] | None:
    return _saved(draw_pair_accuracy_bars(pairs, title=title, order=order, colours=colours), stem)


# --- what GSF routes --------------------------------------------------------------------------------------

ROUTING_MEASURES = ((schema.GATE_ABS, "mean |gate|", "o", "-"),
                    (schema.GATE_SATURATED, "gates saturated (|g| > 0.99)", "s", "--"),
                    (schema.FUSION_WEIGHT, "mean fusion weight w", "^", ":"))


def _stage_key(stage: str) -> tuple:
    digits = "".join(ch for ch in stage if ch.isdigit())
    return (stage.rstrip("0123456789abcdef"), int(digits) if digits else 0, stage)


def draw_gsf_internals(runs: pd.DataFrame, table: pd.DataFrame, *, title: str):
    """Per variant with gated temporal modules (GSF, GSM), one panel: at the best checkpoint, per backbone
    stage, the mean |gate|, the share of saturated gates and the mean fusion weight (lines: mean over seeds,
    dots: seeds). None if no run logged them (``ckpt_*`` metrics, :mod:`gsf.engine.health`)."""
    columns = [c for c in runs.columns if str(c).startswith(schema.CHECKPOINT_PREFIX)]
    panels = []
    for _, row in table.iterrows():
        part = runs[runs["run_id"].isin(row["run_ids"]) & (runs["status"] == "FINISHED")]
        measures = {}
        for measure, *_ in ROUTING_MEASURES:
            prefix = f"{schema.CHECKPOINT_PREFIX}{measure}/"
            stage_columns = {c[len(prefix):]: c for c in columns if c.startswith(prefix) and part[c].notna().any()}
            if stage_columns:
                measures[measure] = stage_columns
        if measures:
            panels.append((row["label"], part, measures))
    if not panels:
        return None
    figure, axes = _figure(max(6.4, 3.2 * len(panels) + 1.8), 3.8, ncols=len(panels))
    labelled: set[str] = set()  # each measure named once in the legend, by the first panel that has it
    for ax, (label, part, measures) in zip(axes, panels):
        stages = sorted({s for cols in measures.values() for s in cols}, key=_stage_key)
        x = np.arange(len(stages))
        for measure, name, marker, style in ROUTING_MEASURES:
            if measure not in measures:
                continue
            cols = measures[measure]
            values = np.array([[part[cols[s]].iloc[j] if s in cols else np.nan for s in stages]
                               for j in range(len(part))], dtype=float)
            ax.plot(x, np.nanmean(values, axis=0), marker=marker, linestyle=style, color="black", linewidth=1.2,
                    label=None if measure in labelled else name)
            labelled.add(measure)
            for seed_values in values:
                ax.scatter(x, seed_values, marker=marker, color="0.55", s=10, zorder=3)
        ax.set_xticks(x, stages, fontsize="small")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(f"{label} (n={len(part)})", fontsize="small")
        ax.set_xlabel("backbone stage")
    axes[0].set_ylabel("at the best checkpoint")
    figure.legend(loc="outside lower center", ncols=3, fontsize="small",
                  title="line: mean over seeds, dots: seeds", title_fontsize="small")
    figure.suptitle(f"{title}: what the gates route through time, at the best checkpoint", fontsize="small")
    return figure


def gsf_internals(runs: pd.DataFrame, table: pd.DataFrame, stem: Path, *, title: str) -> list[Path] | None:
    return _saved(draw_gsf_internals(runs, table, title=title), stem)

"""Every figure of a study, drawn from synthetic run frames shaped like the demo's (nine variants, three
seeds, GMACs 0.0233 to 0.0253): no two tick labels overlap and no legend or point label covers a data
point, measured with matplotlib's own text extents on the figure's renderer."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from analysis import figures, tables

VARIANTS = [  # axes of the demo grid: one knob of GSF changed at a time
    ({"model.temporal": "none"}, 0.02331, 0.51, 30.0),
    ({"model.temporal": "tsm"}, 0.02331, 0.51, 70.0),
    ({"model.temporal": "gsm"}, 0.02528, 0.54, 75.0),
    ({"model.temporal": "gsf"}, 0.02530, 0.54, 80.0),
    ({"model.temporal": "gsf", "model.groups": "1"}, 0.02530, 0.54, 82.0),
    ({"model.temporal": "gsf", "model.fusion": "sum"}, 0.02530, 0.54, 79.0),
    ({"model.temporal": "gsf", "model.fusion": "average"}, 0.02530, 0.54, 78.0),
    ({"model.temporal": "gsf", "model.channel_fraction": "0.25"}, 0.02383, 0.52, 60.0),
    ({"model.temporal": "gsf", "model.placement": "after_conv2"}, 0.02384, 0.52, 65.0),
]
AXES = ("model.temporal", "model.groups", "model.fusion", "model.channel_fraction", "model.placement")
DEFAULTS = {"model.temporal": "gsf", "model.groups": "2", "model.fusion": "channel_weighting",
            "model.channel_fraction": "1.0", "model.placement": "None"}
SEEDS, EPOCHS = (0, 1, 2), 8


def demo_like_study() -> dict:
    """Table, history, within-pair rows and run labels of a demo-like study (no MLflow needed)."""
    rng = np.random.default_rng(3)
    runs, history, pairs = [], [], []
    for (changed, gmacs, params_m, level), seed in itertools.product(VARIANTS, SEEDS):
        axes = {**DEFAULTS, **changed}
        config = {**axes, "model.backbone": "resnet_tiny", "data.dataset": "ssv2", "data.num_frames": "8"}
        run_id = f"{'-'.join(axes.values())}-{seed}"
        final = (level + rng.normal(0, 2)) / 100
        runs.append({
            "study": "demo", "run_id": run_id, "run_name": run_id, "status": "FINISHED", "seed": seed,
            "axes": axes, "config": config, "config_key": json.dumps(config, sort_keys=True),
            "baseline": {"model.temporal": "none"}, "backbone": "resnet_tiny", "temporal": axes["model.temporal"],
            "dataset": "ssv2", "frames": 8, "views": "1x1", "gmacs": gmacs, "params": params_m * 1e6,
            "top1": final, "top5": min(1.0, final + 0.2), "best_top1": final, "best_epoch": EPOCHS,
            "config_hash": run_id, "code_version": "abc", "stopped_early": False, "start_time": seed,
            "test_1x1_top1": final, "test_2x3_top1": min(1.0, final + 0.01),
        })
        for epoch in range(1, EPOCHS + 1):
            progress = 1 - np.exp(-epoch / 2)
            history += [{"run_id": run_id, "key": "val_top1", "epoch": epoch, "value": final * progress},
                        {"run_id": run_id, "key": "train_loss", "epoch": epoch, "value": 2.3 * (1.1 - progress)}]
        for pair, name in enumerate(("0 vs 1", "2 vs 3")):
            pairs.append({"label": None, "run_id": run_id, "seed": seed, "pair": pair, "pair_name": name,
                          "within_pair": 0.5 if axes["model.temporal"] == "none" else min(1.0, final + 0.15)})
    runs, history, pairs = pd.DataFrame(runs), pd.DataFrame(history), pd.DataFrame(pairs)
    table = tables.study_table(runs, None, {r: EPOCHS for r in runs["run_id"]}, history)
    label_of = {run_id: label for label, ids in zip(table["label"], table["run_ids"]) for run_id in ids}
    pairs["label"] = pairs["run_id"].map(label_of)
    return {"table": table, "history": history, "pairs": pairs, "labels": label_of}


@pytest.fixture(scope="module")
def study():
    return demo_like_study()


def _drawn(study):
    table = study["table"]
    return {
        "accuracy_vs_gmacs": figures.draw_accuracy_vs_gmacs(table, title="demo"),
        "ablation_top1": figures.draw_ablation_bars(table, title="demo"),
        "training_curves": figures.draw_training_curves(study["history"], study["labels"], title="demo",
                                                        colours=figures.variant_colours(table)),
        "within_pair_accuracy": figures.draw_pair_accuracy_bars(study["pairs"], title="demo", order=list(table["label"]),
                                                                colours=figures.variant_colours(table)),
    }


def _overlap(a, b, pad: float = 0.0) -> bool:
    return a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad and b.y0 < a.y1 - pad


def _data_points(figure) -> list[tuple[float, float]]:
    """Display coordinates of every plotted point: scatter offsets, line vertices, bar tops."""
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle

    points = []
    for ax in figure.axes:
        for line in ax.get_lines():
            xy = np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)])
            if len(xy) == 2 and line.get_linestyle() == "--":
                continue  # the chance line spans the axes; it is a reference, not data
            points += [tuple(p) for p in ax.transData.transform(xy)]
        for collection in ax.collections:
            if isinstance(collection, PathCollection) and len(collection.get_offsets()):
                points += [tuple(p) for p in collection.get_offset_transform().transform(collection.get_offsets())]
        for patch in ax.patches:
            if isinstance(patch, Rectangle) and patch.get_height() > 0:
                x0, y0 = ax.transData.transform((patch.get_x() + patch.get_width() / 2, patch.get_y() + patch.get_height()))
                points.append((x0, y0))
    return points


def _legends(figure):
    found = list(figure.legends)
    found += [ax.get_legend() for ax in figure.axes if ax.get_legend() is not None]
    return found


@pytest.mark.parametrize("name", ["accuracy_vs_gmacs", "ablation_top1", "training_curves", "within_pair_accuracy"])
def test_tick_labels_do_not_overlap_and_nothing_covers_a_point(study, name):
    figure = _drawn(study)[name]
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
            boxes = [t.get_window_extent(renderer) for t in ticks if t.get_visible() and t.get_text()]
            for a, b in itertools.combinations(boxes, 2):
                assert not _overlap(a, b), (name, [t.get_text() for t in ticks])
    points = _data_points(figure)
    assert points, name
    covering = [legend.get_window_extent(renderer) for legend in _legends(figure)]
    covering += [text.get_window_extent(renderer) for ax in figure.axes for text in ax.texts]
    for box in covering:
        inside = [p for p in points if box.x0 < p[0] < box.x1 and box.y0 < p[1] < box.y1]
        assert not inside, (name, box, inside[:3])


def test_points_of_accuracy_vs_gmacs_carry_their_variant_names(study):
    figure = _drawn(study)["accuracy_vs_gmacs"]
    labels = sorted(text.get_text() for text in figure.axes[0].texts)
    assert labels == sorted(["TSN", "TSM", "GSM", "GSF", "GSF G=1", "GSF sum", "GSF avg", "GSF 25 %",
                             "GSF after conv2"])
    assert figure.axes[0].get_legend() is None and not figure.legends


def test_gmacs_ticks_tell_the_variants_apart(study):
    figure = _drawn(study)["accuracy_vs_gmacs"]
    figure.draw_without_rendering()
    ticks = [t.get_text() for t in figure.axes[0].get_xticklabels() if t.get_text()]
    assert len(set(ticks)) == len(ticks) >= 3, ticks
    display = tables.display_frame(study["table"])
    # GSM lacks GSF's two fusion convs: 0.02528 vs 0.02530 GMACs, so five decimals
    assert set(display["GMACs/view"]) == {"0.02331", "0.02528", "0.02530", "0.02383", "0.02384"}


def test_ablation_bars_grouped_by_knob_with_the_reference_first(study):
    reference, groups = figures.knob_groups(study["table"])
    labels = study["table"]["label"]
    assert labels[reference] == "GSF"
    assert [(key, [labels[i] for i in rows]) for key, rows in groups] == [
        ("model.temporal", ["GSF", "TSN", "TSM", "GSM"]), ("model.groups", ["GSF", "GSF G=1"]),
        ("model.fusion", ["GSF", "GSF avg", "GSF sum"]), ("model.channel_fraction", ["GSF", "GSF 25 %"]),
        ("model.placement", ["GSF", "GSF after conv2"])]


def test_table_shows_protocol_columns_and_only_the_knobs_that_vary(study):
    display = tables.display_frame(study["table"])
    assert display.columns[0] == "variant"
    assert "top-1 1x1 (%) [95 % CI]" in display.columns and "top-1 2x3 (%) [95 % CI]" in display.columns
    assert set(AXES) <= set(display.columns)
    one_knob = study["table"][study["table"]["model.temporal"] == "gsf"].copy()
    one_knob.attrs = dict(study["table"].attrs)
    assert "model.temporal" not in tables.display_frame(one_knob).columns  # the same in every row
    last_two = display.loc[display["variant"] == "GSF", "val top-1 at the last two evaluations (%)"].item()
    assert "(epochs 7 → 8)" in last_two

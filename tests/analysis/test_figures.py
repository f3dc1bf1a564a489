"""Every figure of a study, drawn from synthetic run frames shaped like the demo's (nine variants, three
seeds, GMACs 0.0233 to 0.0253; tests/analysis/demo_study.py): no two tick labels overlap and no legend or
point label covers a data point, measured with matplotlib's own text extents on the figure's renderer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis import figures, tables
from tests.analysis.demo_study import demo_like_study


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

"""The accuracy-vs-frames figure, drawn from small hand-made study tables: one line per variant through its
measured clip lengths in order, the 95 % interval as error bars, the axis labels, and no figure when the clip
length does not vary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis import figures
from analysis.tables import variant_names

NAN = math.nan


def study(rows: list[tuple]) -> pd.DataFrame:
    """A study table with the columns the figure reads: (label, seeds, frames, mean %, CI low %, CI high %)."""
    return pd.DataFrame(
        [{"label": label, "n": n, "frames": frames, "primary_mean_pct": mean, "top1_ci_low_pct": low,
          "top1_ci_high_pct": high, "primary_metric": "top-1 (2x3 views)"} for label, n, frames, mean, low, high in rows])


def plotted(figure) -> dict[str, dict]:
    """Per line of the only axes: x, y and the error bars' (low, high) ends, by legend label."""
    (ax,) = figure.axes
    lines = {}
    for container in ax.containers:
        data, _caps, (bars,) = container.lines
        ends = [(float(s[0][1]), float(s[1][1])) for s in bars.get_segments()]
        lines[container.get_label()] = {"x": list(np.asarray(data.get_xdata(), float)),
                                        "y": list(np.asarray(data.get_ydata(), float)), "bars": ends}
    return lines


TABLE = [  # deliberately not in frame order; one GSF row unmeasured, one with a single seed (no interval)
    ("TSN (num_frames=16)", 3, 16, 40.0, 38.0, 42.0),
    ("GSF (num_frames=16)", 3, 16, 70.0, 66.0, 73.0),
    ("TSN (num_frames=8)", 3, 8, 35.0, 33.0, 37.0),
    ("GSF (num_frames=8)", 1, 8, 60.0, NAN, NAN),
    ("GSF (num_frames=32)", 0, 32, NAN, NAN, NAN),
]


def test_each_variant_is_a_line_through_its_measured_clip_lengths_in_order():
    figure = figures.draw_accuracy_vs_frames(study(TABLE), title="backbones x frames")
    lines = plotted(figure)
    assert list(lines) == ["TSN", "GSF"]  # table order, the frames part of the label dropped
    assert lines["TSN"]["x"] == [8.0, 16.0] and lines["TSN"]["y"] == [35.0, 40.0]
    assert lines["GSF"]["x"] == [8.0, 16.0] and lines["GSF"]["y"] == [60.0, 70.0]  # 32 frames: not measured
    assert lines["TSN"]["bars"] == [(33.0, 37.0), (38.0, 42.0)]
    assert lines["GSF"]["bars"] == [(60.0, 60.0), (66.0, 73.0)]  # one seed: no interval

    (ax,) = figure.axes
    assert ax.get_xlabel() == "frames per clip"
    assert ax.get_ylabel() == "top-1 (2x3 views) (%)"
    assert ax.get_title() == "backbones x frames"
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["TSN", "GSF"]
    assert legend.get_title().get_text() == "variant"
    colours = [container.lines[0].get_color() for container in ax.containers]
    assert colours[0] != colours[1]


def test_no_figure_when_the_clip_length_does_not_vary(tmp_path):
    fixed = study([("TSN", 3, 8, 35.0, 33.0, 37.0), ("GSF", 3, 8, 60.0, 58.0, 62.0),
                   ("GSF G=1", 0, 16, NAN, NAN, NAN)])  # the only other length is not measured
    assert figures.draw_accuracy_vs_frames(fixed, title="t") is None
    assert figures.accuracy_vs_frames(fixed, tmp_path / "frames", title="t") is None
    assert not list(tmp_path.iterdir())
    paths = figures.accuracy_vs_frames(study(TABLE), tmp_path / "frames", title="t")
    assert [p.name for p in paths] == ["frames.png", "frames.pdf"] and all(p.stat().st_size > 0 for p in paths)


def test_rows_that_differ_in_another_axis_than_frames_are_separate_lines():
    rows = [{"config": {"model.temporal": "gsf"}, "axes": {"model.backbone": backbone, "data.num_frames": frames}}
            for backbone in ("resnet18", "resnet50") for frames in (8, 16)]
    labels = variant_names(rows)
    means = [50.0, 55.0, 60.0, 68.0]
    table = study([(label, 3, row["axes"]["data.num_frames"], mean, mean - 1, mean + 1)
                   for label, row, mean in zip(labels, rows, means)])
    lines = plotted(figures.draw_accuracy_vs_frames(table, title="t"))
    assert len(lines) == 2
    by_backbone = {backbone: next(line for name, line in lines.items() if backbone in name)
                   for backbone in ("resnet18", "resnet50")}
    assert by_backbone["resnet18"]["x"] == [8.0, 16.0] and by_backbone["resnet18"]["y"] == [50.0, 55.0]
    assert by_backbone["resnet50"]["x"] == [8.0, 16.0] and by_backbone["resnet50"]["y"] == [60.0, 68.0]

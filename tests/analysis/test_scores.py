"""Score CSV reading and within-pair accuracy (analysis.scores), baseline/views parsing (analysis.runs)."""

from __future__ import annotations

import pytest

from analysis.runs import choose_score_file, parse_mapping, parse_views
from analysis.scores import pair_accuracy, pairs_for_run, read_scores
from gsf.errors import GSFDataError


def test_within_pair_uses_partner_score_not_argmax(tmp_path):
    path = tmp_path / "s.csv"
    # video 1: true class 0 beats partner 1 but class 2 wins the argmax -> within-pair right, top-1 wrong
    path.write_text("video_id,label,score_0,score_1,score_2,score_3\n1,0,0.5,0.1,0.9,0\n2,1,0.6,0.4,0,0\n"
                    "3,2,0,0,0.2,0.1\n4,3,0,0,0.3,0.2\n")
    scores = read_scores(path)
    result = pair_accuracy(scores, [(0, 1), (2, 3)])
    assert result["within_pair"].tolist() == [0.5, 0.5]
    assert result["top1"].tolist() == [0.0, 0.5]
    assert set(result["method"]) == {"scores"}


def test_prediction_only_csv_falls_back_to_predictions_inside_the_pair(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("video_id,label,pred\n1,0,0\n2,1,0\n3,0,3\n")
    result = pair_accuracy(read_scores(path), [(0, 1)])
    assert result["within_pair"].tolist() == [0.5] and result["method"].tolist() == ["predictions"]


def test_score_csv_without_scores_or_predictions_is_rejected(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("video_id,label\n1,0\n")
    with pytest.raises(GSFDataError, match="prediction"):
        read_scores(path)


def test_direction_pairs_from_class_order_or_labels_json(tmp_path):
    assert pairs_for_run({"data.dataset": "synthetic"}, 6) == [(0, 1), (2, 3), (4, 5)]
    assert pairs_for_run({"data.dataset": "ssv1", "data.root": str(tmp_path)}, 4) == []
    from gsf.data.synth import class_names

    names = class_names(4)
    (tmp_path / "labels.json").write_text(
        '{' + ", ".join(f'"{n}": "{i}"' for i, n in zip((3, 2, 1, 0), names)) + '}')
    # labels.json wins over the class order: (forward, reversed) indices as that file numbers them
    assert pairs_for_run({"data.root": str(tmp_path)}, 4) == [(1, 0), (3, 2)]


def test_parsers():
    assert parse_mapping('{"model.temporal": "none"}') == {"model.temporal": "none"}
    assert parse_mapping("model.temporal=none; model.channel_fraction=1.0") == {
        "model.temporal": "none", "model.channel_fraction": "1"}
    assert parse_mapping(None) == {}
    assert parse_views("[2, 3]") == "2x3" and parse_views("1x1") == "1x1" and parse_views(None) == ""
    assert choose_score_file(["scores/test_2x3.csv", "scores/val_epoch5.csv", "scores/val_epoch10.csv"]) == \
        "scores/val_epoch10.csv"
    assert choose_score_file(["scores/test_2x3.csv"]) == "scores/test_2x3.csv"
    assert choose_score_file([]) is None


def test_baseline_read_from_the_sweep_run_and_none_with_a_warning_for_older_sweeps(tmp_path, caplog):
    import pandas as pd

    from analysis.runs import _parent_baseline

    grid = tmp_path / "g.yaml"  # a grid file that a sweep logged is never read back (it may have moved or changed)
    grid.write_text("study: s\naxes: {model.temporal: [none, gsf]}\nbaseline: {model.temporal: none}\n")
    logged = pd.Series({"run_id": "p1", "tags.gsf.baseline": '{"model.temporal": "none"}',
                        "params.grid_file": str(grid)})
    assert _parent_baseline(logged) == {"model.temporal": "none"}
    assert not caplog.records
    older = pd.Series({"run_id": "p0", "tags.gsf.grid": "g", "params.grid_file": str(grid)})
    with caplog.at_level("WARNING", logger="analysis.runs"):
        assert _parent_baseline(older) == {}
    assert "p0" in caplog.text and "no baseline" in caplog.text

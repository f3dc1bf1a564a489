"""The paper's numbers ship as package data of ``analysis`` (one copy, read by :mod:`analysis.paper`)."""

from __future__ import annotations

from pathlib import Path

import analysis
from analysis import paper

REPO = Path(__file__).resolve().parents[2]


def test_the_paper_numbers_are_package_data_of_analysis_and_exist_once():
    assert paper.PAPER_DIR.parent == Path(analysis.__file__).resolve().parent
    shipped = sorted(path.name for path in paper.PAPER_DIR.glob("*.csv"))
    assert shipped == ["accuracy.csv", "complexity.csv"]
    assert not list((REPO / "results" / "paper").glob("*.csv"))  # their old place keeps only their README


def test_the_paper_numbers_load_with_their_columns():
    accuracy, complexity = paper.load_accuracy(), paper.load_complexity()
    assert set(paper.ACCURACY_COLUMNS) <= set(accuracy.columns) and len(accuracy) > 0
    assert set(paper.COMPLEXITY_COLUMNS) <= set(complexity.columns) and len(complexity) > 0
    assert paper.match_accuracy(accuracy, dataset="ssv1", backbone="bninception", frames=16, temporal="gsf") is not None

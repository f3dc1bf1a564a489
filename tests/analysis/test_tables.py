"""analysis.tables: the study table's statistics over seeds (counts, t-intervals, Welch's p, did-not-train
marks) and its formatting, from small hand-made run frames shaped like :func:`analysis.runs.load_runs`'s."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from analysis import tables
from tests.analysis.demo_study import AXES, demo_like_study

T_975_2 = 4.302653  # Student's t, 0.975 quantile, 2 degrees of freedom (three seeds)


def _run(temporal: str, seed: int, *, top1: float = 0.5, status: str = "FINISHED", start: int = 0,
         test_top1: float | None = None, did_not_train: bool | None = None) -> dict:
    """One trial run as :func:`analysis.runs.load_runs` returns it (the columns the table reads)."""
    axes = {"model.temporal": temporal}
    config = {**axes, "model.backbone": "resnet_tiny", "data.dataset": "ssv2", "data.num_frames": "8"}
    return {
        "run_id": f"{temporal}-{seed}-{start}", "status": status, "seed": seed, "start_time": start, "axes": axes,
        "config": config, "config_key": json.dumps(config, sort_keys=True), "baseline": {"model.temporal": "none"},
        "backbone": "resnet_tiny", "temporal": temporal, "dataset": "ssv2", "frames": 8, "views": "1x1",
        "gmacs": 0.5, "params": 2e6, "top1": top1 if status == "FINISHED" else math.nan, "top5": math.nan,
        "best_top1": math.nan, "best_epoch": 3, "config_hash": f"h-{temporal}", "code_version": "abc",
        "test_1x1_top1": math.nan if test_top1 is None else test_top1, "did_not_train": did_not_train,
    }


def _row(table: pd.DataFrame, variant: str) -> pd.Series:
    (index,) = table.index[table["variant"] == variant]
    return table.loc[index]


@pytest.fixture(scope="module")
def table():
    """TSN: seeds 0-2 finished, 1x1 top-1 60/70/80 %. GSF: seed 0 finished (90 %), seed 1 FAILED, seed 2 missing."""
    runs = [_run("none", seed, top1=0.3, test_top1=value, did_not_train=False)
            for seed, value in zip((0, 1, 2), (0.6, 0.7, 0.8))]
    runs += [_run("gsf", 0, top1=0.8, test_top1=0.9, did_not_train=False), _run("gsf", 1, status="FAILED")]
    return tables.study_table(pd.DataFrame(runs))


def test_table_shows_protocol_columns_and_only_the_knobs_that_vary():
    study = demo_like_study()
    display = tables.display_frame(study["table"])
    assert display.columns[0] == "variant"
    assert "top-1 1x1 (%) [95 % CI]" in display.columns and "top-1 2x3 (%) [95 % CI]" in display.columns
    assert set(AXES) <= set(display.columns)
    one_knob = study["table"][study["table"]["model.temporal"] == "gsf"].copy()
    one_knob.attrs = dict(study["table"].attrs)
    assert "model.temporal" not in tables.display_frame(one_knob).columns  # the same in every row
    last_two = display.loc[display["variant"] == "GSF", "val top-1 at the last two evaluations (%)"].item()
    assert "(epochs 7 → 8)" in last_two


def test_t_interval_is_the_two_sided_95_percent_t_interval_of_the_mean_and_nan_for_one_value():
    half = T_975_2 * 10.0 / math.sqrt(3)  # standard deviation 10 over three values
    assert tables.t_interval([60.0, 70.0, 80.0]) == pytest.approx((70.0 - half, 70.0 + half), abs=1e-4)
    assert all(math.isnan(v) for v in tables.t_interval([90.0]))


def test_welch_p_is_the_unequal_variance_two_sided_p_and_nan_below_two_values():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]
    va, vb = (5 / 3) / 4, 10.0 / 5  # sample variance over n, each side
    t = (2.5 - 6.0) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 4)  # Welch-Satterthwaite
    assert tables.welch_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert math.isnan(tables.welch_p([1.0], b)) and math.isnan(tables.welch_p(a, []))


def test_a_rows_seed_count_is_its_finished_seeds_and_its_status_names_the_failed_and_missing_ones(table):
    tsn, gsf = _row(table, "TSN"), _row(table, "GSF")
    assert (tsn["n"], tsn["seeds"], tsn["status"]) == (3, "0,1,2", "3 finished")
    assert (gsf["n"], gsf["seeds"]) == (1, "0")
    assert gsf["status"] == "1 finished, 1 FAILED, 1 missing (seed 2)"


def test_the_protocol_column_holds_the_mean_and_t_interval_over_seeds_and_n_a_for_one_seed(table):
    half = T_975_2 * 10.0 / math.sqrt(3)
    tsn, gsf = _row(table, "TSN"), _row(table, "GSF")
    assert tsn["top1_1x1_mean_pct"] == pytest.approx(70.0)
    assert (tsn["top1_1x1_ci_low_pct"], tsn["top1_1x1_ci_high_pct"]) == pytest.approx((70.0 - half, 70.0 + half),
                                                                                      abs=1e-4)
    assert math.isnan(gsf["top1_1x1_ci_low_pct"])
    column = tables.display_frame(table).set_index("variant")["top-1 1x1 (%) [95 % CI]"]
    assert column["TSN"] == f"70.00 [{70.0 - half:.2f}, {70.0 + half:.2f}]" and column["GSF"] == "90.00 [n/a]"


def test_a_row_is_compared_with_the_baseline_and_has_no_welch_test_with_one_seed(table):
    tsn, gsf = _row(table, "TSN"), _row(table, "GSF")
    assert tsn["baseline"] == "yes" and math.isnan(tsn["delta_top1_pct"])
    assert gsf["compared_with"] == "TSN" and gsf["delta_top1_pct"] == pytest.approx(90.0 - 70.0)
    assert math.isnan(gsf["welch_p"]) and gsf["significant"] == tables.NA


def test_a_seed_rerun_after_a_failure_counts_once_with_its_latest_finished_run():
    runs = [_run("none", 0, top1=0.3), _run("none", 1, top1=0.4),
            _run("gsf", 0, top1=0.5, start=1), _run("gsf", 0, top1=0.8, start=2), _run("gsf", 1, top1=0.6)]
    gsf = _row(tables.study_table(pd.DataFrame(runs)), "GSF")
    assert gsf["n"] == 2 and gsf["top1_mean_pct"] == pytest.approx((80.0 + 60.0) / 2)
    assert "1 duplicate finished run(s) of a seed ignored (latest kept)" in gsf["warnings"]


def test_a_seed_that_did_not_train_is_marked_and_kept_in_the_counts():
    runs = [_run("none", seed, top1=0.3 + seed / 10, did_not_train=seed == 1) for seed in (0, 1, 2)]
    runs += [_run("gsf", seed, top1=0.6 + seed / 10) for seed in (0, 1, 2)]  # no class count: cannot be told
    table = tables.study_table(pd.DataFrame(runs))
    tsn, gsf = _row(table, "TSN"), _row(table, "GSF")
    assert tsn["trained"] == "2 of 3 (not seed 1)" and tsn["n"] == 3
    assert tsn["did_not_train_seeds"] == [1] and tsn["did_not_train_flags"] == [False, True, False]
    assert gsf["trained"] == "" and gsf["trained_told"] == 0
    assert tables.display_frame(table).set_index("variant").loc["TSN", "trained (seeds)"] == "2 of 3 (not seed 1)"
    assert any(note.startswith("trained: ") for note in tables.table_notes(table))


def test_decimals_to_tell_apart_are_the_fewest_that_keep_distinct_values_distinct():
    assert tables.decimals_to_tell_apart([0.02331, 0.02338, 0.02331, math.nan]) == 4
    assert tables.decimals_to_tell_apart([1.0, 2.0]) == 2  # never fewer than the minimum
    assert tables.decimals_to_tell_apart([0.1234567, 0.1234568]) == 6  # at most the maximum


def test_markdown_and_latex_escape_what_their_syntax_reserves():
    frame = pd.DataFrame({"Δ top-1 (%)": ["a|b"], "p_value": ["50 % & $5 #1"]})
    markdown = tables.to_markdown(frame)
    assert markdown.splitlines() == ["| Δ top-1 (%) | p_value |", "|---|---|", r"| a\|b | 50 % & $5 #1 |"]
    latex = tables.to_latex(frame, caption="t_1")
    assert r"$\Delta$ top-1 (\%) & p\_value \\" in latex and r"50 \% \& \$5 \#1 \\" in latex
    assert latex.startswith("% t\\_1\n\\begin{tabular}{ll}") and latex.endswith("\\end{tabular}\n")


def test_welch_p_of_a_variant_whose_seeds_all_reached_one_accuracy_is_finite_and_silent():
    """Every seed at 100 % is common on a small validation set: the p-value is defined (one side varies) and
    computing it raises no precision-loss warning (scipy's ttest_ind warns on such data)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = tables.welch_p([1.0, 1.0, 1.0], [0.45833334, 0.45833334, 0.44999998])
    assert 0.0 < p < 1e-3

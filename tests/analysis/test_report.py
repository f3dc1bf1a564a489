"""`gsf report` on a real MLflow store logged by the test (conftest.py): rows match the runs, failed and
missing runs are shown, paper numbers joined, Welch p-values present, a rerun gives identical bytes."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gsf.cli import main

STUDY = "gsf-channel-fraction"


@pytest.fixture(scope="package")
def report(tracking_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    complexity = tmp_path_factory.mktemp("complexity")
    (complexity / "channel_fraction.csv").write_text("model,gmacs_per_view,params_m\nresnet50_gsf,33.91,24.30\n")
    argv = ["report", "--tracking-uri", tracking_store["uri"], "--out", str(out / "a"),
            "--complexity-dir", str(complexity)]
    assert main(argv) == 0
    argv[4] = str(out / "b")
    assert main(argv) == 0
    return out


def _table(report, study, run="a"):
    return pd.read_csv(report / run / study / "table.csv", dtype=str, keep_default_na=False)


def _row(table, **axes):
    mask = np.ones(len(table), bool)
    for key, value in axes.items():
        mask &= table[key] == value
    assert mask.sum() == 1, table
    return table[mask].iloc[0]


def test_rows_match_logged_runs(tracking_store, report):
    table = _table(report, STUDY)
    records = tracking_store["studies"][STUDY]
    assert len(table) == 3  # one row per config minus seed
    for temporal, fraction in (("none", "1.0"), ("gsf", "1.0"), ("gsf", "0.5")):
        row = _row(table, **{"model.temporal": temporal, "model.channel_fraction": fraction})
        done = [r for r in records if r["status"] == "FINISHED" and r["axes"]["model.temporal"] == temporal
                and r["axes"]["model.channel_fraction"] == float(fraction)]
        top1 = [100 * r["top1"] for r in done]
        assert int(row["n"]) == len(done)
        assert row["seeds"] == ",".join(str(r["seed"]) for r in done)
        assert float(row["top1_mean_pct"]) == pytest.approx(statistics.mean(top1), abs=0.006)
        if len(top1) > 1:
            assert float(row["top1_std_pct"]) == pytest.approx(statistics.stdev(top1), abs=0.006)
        else:
            assert row["top1_std_pct"] == "n/a"
        assert row["views"] == "1x1" and row["frames"] == "8" and row["backbone"] == "resnet_tiny"
        assert float(row["params_m"]) == pytest.approx(2.0)
    assert table.columns[:3].tolist() == ["variant", "model.channel_fraction", "model.temporal"]
    names = dict(zip(zip(table["model.temporal"], table["model.channel_fraction"]), table["variant"]))
    assert names == {("none", "1.0"): "TSN", ("gsf", "1.0"): "GSF", ("gsf", "0.5"): "GSF 50 %"}


def test_failed_and_missing_runs_are_shown(report):
    row = _row(_table(report, STUDY), **{"model.temporal": "gsf", "model.channel_fraction": "0.5"})
    assert row["status"] == "1 finished, 1 FAILED, 1 missing (seed 1)"
    assert row["welch_p"] == "n/a" and row["significant"] == "n/a"
    runs = pd.read_csv(report / "a" / STUDY / "runs.csv", dtype=str, keep_default_na=False)
    assert sorted(runs["status"]) == ["FAILED"] + ["FINISHED"] * 7
    assert runs.loc[runs["status"] == "FAILED", "final_epoch"].tolist() == ["2"]


def test_welch_against_grid_baseline(tracking_store, report):
    table = _table(report, STUDY)
    base = _row(table, **{"model.temporal": "none"})
    assert base["baseline"] == "yes" and base["welch_p"] == ""
    row = _row(table, **{"model.temporal": "gsf", "model.channel_fraction": "1.0"})
    records = tracking_store["studies"][STUDY]

    def top1(temporal, fraction):
        return [r["top1"] * 100 for r in records if r["status"] == "FINISHED"
                and r["axes"] == {"model.temporal": temporal, "model.channel_fraction": fraction}]

    expected = stats.ttest_ind(top1("gsf", 1.0), top1("none", 1.0), equal_var=False).pvalue
    assert float(row["welch_p"]) == pytest.approx(expected, rel=1e-3)
    assert row["significant"] == ("yes" if expected < 0.05 else "no")
    assert float(row["delta_top1_pct"]) == pytest.approx(
        statistics.mean(top1("gsf", 1.0)) - statistics.mean(top1("none", 1.0)), abs=0.006)
    values = top1("gsf", 1.0)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values))
    assert (float(row["top1_ci_low_pct"]), float(row["top1_ci_high_pct"])) == pytest.approx((low, high), abs=0.006)
    markdown = (report / "a" / STUDY / "table.md").read_text()
    assert "baseline" in markdown and f"[{low:.2f}, {high:.2f}]" in markdown and "95 % CI" in markdown


def test_paper_numbers_joined_and_hash_conflict_flagged(report):
    table = _table(report, "gsf-backbones")
    gsf = _row(table, **{"model.temporal": "gsf"})
    assert gsf["paper_top1_pct"] == "50.63"
    assert gsf["paper_source"].startswith("authors' README")
    assert float(gsf["paper_diff_pct"]) == pytest.approx(float(gsf["top1_mean_pct"]) - 50.63, abs=0.006)
    assert "different config hashes" in gsf["warnings"] and int(gsf["n"]) == 2
    tsn = _row(table, **{"model.temporal": "none"})
    assert tsn["baseline"] == "yes" and tsn["paper_top1_pct"] == ""


def test_within_pair_accuracy_from_score_artifacts(tracking_store, report):
    pairs = pd.read_csv(report / "a" / STUDY / "pairs.csv", keep_default_na=False)
    assert set(pairs["score_file"]) == {"scores/val_epoch3.csv"}
    for temporal, (labels, scores) in tracking_store["scores"].items():
        part = pairs[pairs["label"] == {"none": "TSN", "gsf": "GSF"}[temporal]]
        assert part["pair"].tolist() == [0, 1]
        for _, row in part.iterrows():
            a, b = row["forward"], row["reversed"]
            mask = (labels == a) | (labels == b)
            partner = np.where(labels[mask] == a, b, a)
            expected = np.mean(scores[mask, labels[mask]] > scores[mask, partner])
            assert row["within_pair"] == pytest.approx(expected, abs=1e-4)


def test_figures_written(report):
    figures = report / "a" / STUDY / "figures"
    for name in ("accuracy_vs_gmacs", "ablation_top1", "training_curves", "within_pair_accuracy"):
        for ext in ("png", "pdf"):
            path = figures / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
    assert not (figures / "accuracy_vs_frames.png").exists()  # frames do not vary


def test_second_report_is_byte_identical(report):
    first = sorted(p.relative_to(report / "a") for p in (report / "a").rglob("*") if p.is_file())
    second = sorted(p.relative_to(report / "b") for p in (report / "b").rglob("*") if p.is_file())
    assert first == second
    compared = [p for p in first if p.name != "README.md"]
    assert any(p.suffix == ".tex" for p in compared) and any(p.suffix == ".pdf" for p in compared)
    for path in compared:
        assert (report / "a" / path).read_bytes() == (report / "b" / path).read_bytes(), path


def test_index_lists_outputs_and_complexity(tracking_store, report):
    index = (report / "a" / "README.md").read_text()
    assert tracking_store["uri"] in index and "gsf report --tracking-uri" in index and "date:" in index
    assert f"{STUDY}/table.csv" in index and f"{STUDY}/figures/ablation_top1.png" in index
    assert "channel_fraction.csv" in index and "33.91" in index


@pytest.mark.parametrize("study", [STUDY, "gsf-backbones"])
def test_each_study_report_is_logged_as_artifacts_of_its_sweep_run(tracking_store, report, study):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_store["uri"])
    run_id = tracking_store["sweep_runs"][study]
    listed = {entry.path for entry in client.list_artifacts(run_id, "report")}
    on_disk = sorted(p for p in (report / "b" / study).rglob("*") if p.is_file())
    assert listed == {f"report/{name}" for name in {p.relative_to(report / "b" / study).parts[0] for p in on_disk}}
    for name in ("table.csv", "table.md", "runs.csv", "findings.md"):
        downloaded = client.download_artifacts(run_id, f"report/{name}", str(report / f"dl-{study}"))
        assert Path(downloaded).read_bytes() == (report / "b" / study / name).read_bytes()
    figures = {Path(entry.path).name for entry in client.list_artifacts(run_id, "report/figures")}
    assert figures == {p.name for p in (report / "b" / study / "figures").iterdir()} and figures

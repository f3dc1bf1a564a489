"""`gsf report`'s findings, "did not train" marks and GSF-internals figure, on a hand-logged MLflow store:
a demo-like study (TSN, GSF, GSF G=1; 3 seeds; 4 classes in two direction pairs) where one GSF seed's training
loss stays at ln 4 and every GSF run logged its best checkpoint's routing per stage."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gsf.cli import main

STUDY = "gsf-demo-like"
K = 4
EPOCHS = 4
STAGES = ("layer1", "layer2", "layer3", "layer4")
# (axes, final val top-1 per seed, training losses per seed: the GSF seed 2 stays at chance)
TRAINED = [1.39, 1.10, 0.50, 0.20]
AT_CHANCE = [1.39, 1.42, 1.40, 1.385]
TSN_LOSS = [1.39, 0.90, 0.72, 0.70]
VARIANTS = [
    ({"model.temporal": "none"}, [0.50, 0.49, 0.52], [TSN_LOSS] * 3),
    ({"model.temporal": "gsf"}, [0.97, 0.96, 0.26], [TRAINED, TRAINED, AT_CHANCE]),
    ({"model.temporal": "gsf", "model.groups": 1}, [0.95, 0.90, 0.93], [TRAINED] * 3),
]


def _routing(stage_index: int, seed: int, groups: int) -> dict[str, float]:
    """A distinct value per measure, stage, seed and variant, so a mix-up shows."""
    base = 0.1 * (stage_index + 1) + 0.01 * seed + (0.05 if groups == 1 else 0.0)
    return {"gate_abs": base, "gate_saturated": base / 2, "fusion_weight": 1 - base}


def _scores_csv(path, rng, *, temporal: bool):
    """10 videos a class; TSN confuses each class with its time-reversed pair, a temporal model does not."""
    labels = np.repeat(np.arange(K), 10)
    scores = rng.normal(0, 0.1, size=(len(labels), K))
    partner = labels ^ 1
    scores[np.arange(len(labels)), labels] += 2.0
    if not temporal:  # the pair's other class wins every second video
        flip = np.arange(len(labels)) % 2 == 1
        scores[np.arange(len(labels))[flip], partner[flip]] += 4.0
    lines = ["video_id,label," + ",".join(f"score_{k}" for k in range(K))]
    lines += [f"{100 + i},{label}," + ",".join(f"{v:.6f}" for v in row) for i, (label, row) in enumerate(zip(labels, scores))]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    root = tmp_path_factory.mktemp("findings")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(STUDY, artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(exp, run_name="demo", tags={
        "gsf.role": "sweep", "gsf.grid": "demo", "gsf.sweep_id": "s1", "gsf.table": "demo",
        "gsf.baseline": json.dumps({"model.temporal": "none"})})
    rng = np.random.default_rng(0)
    base = {"model.backbone": "resnet_tiny", "data.dataset": "ssv2", "data.root": str(root / "synth"),
            "data.num_frames": 4, "data.input_size": 48, "data.val_views": "1x1", "optim.warmup_epochs": 1,
            "model.groups": 2}
    logged = []
    for axes, tops, losses in VARIANTS:
        for seed, (top1, loss) in enumerate(zip(tops, losses)):
            params = {**base, **axes, "runtime.seed": seed}
            run = client.create_run(exp, run_name=f"{axes} {seed}", tags={
                "mlflow.parentRunId": parent.info.run_id, "gsf.role": "trial", "gsf.seed": str(seed),
                "gsf.sweep_id": "s1", "gsf.grid": "demo", "gsf.table": "demo", "gsf.config_hash": f"{axes}{seed}",
                **{f"gsf.axis.{k}": str(v) for k, v in axes.items()}})
            run_id = run.info.run_id
            metrics = [Metric("gmacs", 0.026, 0, 0), Metric("params", 6e5, 0, 0)]
            for epoch, value in enumerate(loss, start=1):
                metrics += [Metric("train_loss", value, 0, epoch), Metric("epoch", epoch, 0, epoch),
                            Metric("val_top1", top1, 0, epoch)]
            metrics += [Metric(name, value, 0, EPOCHS) for name, value in (
                ("final_val_top1", top1), ("final_val_top5", 1.0), ("best_val_top1", top1), ("best_epoch", EPOCHS),
                ("num_classes", K))]
            if axes["model.temporal"] == "gsf":
                groups = axes.get("model.groups", 2)
                for i, stage in enumerate(STAGES):
                    metrics += [Metric(f"ckpt_{m}/{stage}", v, 0, EPOCHS) for m, v in _routing(i, seed, groups).items()]
            client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                             tags=[RunTag("gsf.variant", "TSN" if axes["model.temporal"] == "none" else
                                          ("GSF G=1" if "model.groups" in axes else "GSF"))])
            csv = root / run_id / f"val_epoch{EPOCHS}.csv"
            csv.parent.mkdir()
            _scores_csv(csv, rng, temporal=axes["model.temporal"] != "none")
            client.log_artifact(run_id, str(csv), artifact_path="scores")
            client.set_terminated(run_id, "FINISHED")
            logged.append({"run_id": run_id, "axes": axes, "seed": seed, "top1": top1})
    client.set_terminated(parent.info.run_id, "FINISHED")
    return {"uri": uri, "logged": logged}


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", "--tracking-uri", store["uri"], "--study", STUDY, "--out", str(out),
                 "--complexity-dir", str(out / "none")]) == 0
    return out / STUDY


def _table(report) -> pd.DataFrame:
    return pd.read_csv(report / "table.csv", dtype=str, keep_default_na=False).set_index("variant")


def test_the_seed_whose_loss_stayed_at_chance_is_marked_and_kept_in_the_counts(report):
    table = _table(report)
    assert table.loc["GSF", "trained"] == "2 of 3 (not seed 2)"
    assert table.loc["GSF", "n"] == "3"  # kept in the count ...
    assert float(table.loc["GSF", "top1_mean_pct"]) == pytest.approx((97 + 96 + 26) / 3, abs=0.01)  # ... and the mean
    assert table.loc["TSN", "trained"] == "3 of 3"  # ln 2 is half of chance: TSN trained
    assert table.loc["GSF G=1", "trained"] == "3 of 3"
    index = (report.parent / "README.md").read_text()
    assert "2 of 3 (not seed 2)" in index


def test_findings_say_who_trained_tsn_at_chance_and_what_is_distinguishable(report):
    text = (report / "findings.md").read_text()
    assert "GSF 2 of 3 (seed 2: training loss at chance after the warm-up)" in text
    assert "TSN 3 of 3" in text and "GSF G=1 3 of 3" in text
    # TSN within pairs: every second video of a pair goes to its reverse, 50 % in every seed
    assert "TSN within the direction pairs: 50.0 % [95 % CI 50.0, 50.0] over 3 seeds, at chance" in text
    # GSF G=1 against the paper's setting (GSF), Welch's test computed here
    p = stats.ttest_ind([95, 90, 93], [97, 96, 26], equal_var=False).pvalue
    assert (f"GSF G=1 vs GSF (groups changed from the paper's setting): {(95 + 90 + 93) / 3 - (97 + 96 + 26) / 3:+.1f} "
            f"points, Welch p = {p:.2g}, 3 vs 3 seeds: not distinguishable at this budget.") in text
    p_gsf = stats.ttest_ind([97, 96, 26], [50, 49, 52], equal_var=False).pvalue
    delta = (97 + 96 + 26) / 3 - (50 + 49 + 52) / 3
    assert f"GSF vs TSN (against the baseline): {delta:+.1f} points, Welch p = {p_gsf:.2g}" in text
    assert "### Findings (computed from the runs)" in (report.parent / "README.md").read_text()


def test_the_internals_figure_has_a_panel_per_gated_variant_with_the_logged_means(store, report):
    from analysis import figures, tables
    from analysis.findings import mark_training
    from analysis.runs import load_runs, metric_history

    assert (report / "figures" / "gsf_internals.png").is_file()
    runs = load_runs(store["uri"], [STUDY])
    history = metric_history(store["uri"], list(runs["run_id"]))
    runs = mark_training(runs, history)
    table = tables.study_table(runs, None, {}, history)
    figure = figures.draw_gsf_internals(runs, table, title=STUDY)
    axes = figure.axes[:2]
    assert [ax.get_title() for ax in axes] == ["GSF (n=3)", "GSF G=1 (n=3)"]
    for ax, groups in zip(axes, (2, 1)):
        lines = {line.get_linestyle(): line.get_ydata() for line in ax.get_lines()}
        gate = lines["-"]
        expected = [np.mean([_routing(i, seed, groups)["gate_abs"] for seed in range(3)]) for i in range(4)]
        np.testing.assert_allclose(gate, expected)
        np.testing.assert_allclose(lines[":"], 1 - np.asarray(expected))
        assert [t.get_text() for t in ax.get_xticklabels()] == list(STAGES)


def test_the_ablation_figure_marks_the_seed_that_did_not_train(store, report):
    from analysis import figures, tables
    from analysis.findings import mark_training
    from analysis.runs import load_runs, metric_history

    runs = load_runs(store["uri"], [STUDY])
    history = metric_history(store["uri"], list(runs["run_id"]))
    table = tables.study_table(mark_training(runs, history), None, {}, history)
    figure = figures.draw_ablation_bars(table, title=STUDY)
    ax = figure.axes[0]
    red_x = [c for c in ax.collections if len(c.get_facecolor()) and tuple(c.get_facecolor()[0][:3]) == (1.0, 0.0, 0.0)]
    # GSF, the paper's setting, is drawn in each knob's group (temporal module, gating groups): twice
    assert len(red_x) == 2
    for collection in red_x:
        np.testing.assert_allclose(collection.get_offsets()[:, 1], [26.0])
    assert "red x: a seed that did not train" in ax.get_title()


def test_a_run_without_a_class_count_is_not_told(store):
    from analysis.findings import mark_training
    from analysis.runs import load_runs, metric_history

    runs = load_runs(store["uri"], [STUDY])
    history = metric_history(store["uri"], list(runs["run_id"]))
    runs["num_classes"] = math.nan
    assert mark_training(runs, history)["did_not_train"].isna().all()


def test_the_internals_legend_names_every_measure_once_when_the_first_panel_has_no_fusion_weight():
    from analysis import figures

    runs = pd.DataFrame({"run_id": ["a", "b"], "status": ["FINISHED", "FINISHED"],
                         "ckpt_gate_abs/layer1": [0.5, 0.6], "ckpt_gate_saturated/layer1": [0.1, 0.2],
                         "ckpt_fusion_weight/layer1": [math.nan, 0.4]})
    table = pd.DataFrame({"label": ["GSM", "GSF"], "run_ids": [["a"], ["b"]]})
    figure = figures.draw_gsf_internals(runs, table, title="t")
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["mean |gate|", "gates saturated (|g| > 0.99)",
                                                         "mean fusion weight w"]

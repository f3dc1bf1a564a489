"""`gsf report` never pools runs that read different data: seeds of one configuration whose MLflow dataset
input (the data digest) differs become separate rows, and the report says so in a line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gsf.cli import main

STUDY = "gsf-data-split"
OLD, NEW = "0123456789abcdef", "fedcba9876543210"


def _log_trial(client, experiment_id, parent_id, *, temporal: str, seed: int, digest: str, top1: float) -> str:
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag

    tags = {"mlflow.parentRunId": parent_id, "gsf.role": "trial", "gsf.slug": f"{temporal}-{seed}",
            "gsf.config_hash": f"h-{temporal}", "gsf.grid": "g", "gsf.table": "t", "gsf.sweep_id": "s",
            "gsf.seed": str(seed), "gsf.code_version": "abc", "gsf.axis.model.temporal": temporal}
    params = {"model.backbone": "resnet_tiny", "model.temporal": temporal, "data.dataset": "ssv2",
              "data.root": "/data/synth", "data.num_frames": "4", "data.val_views": "1x1", "runtime.seed": str(seed)}
    run_id = client.create_run(experiment_id, run_name=f"{temporal}-{seed}").info.run_id
    metrics = [Metric(k, v, 0, 1) for k, v in (("final_val_top1", top1), ("final_val_top5", 1.0),
                                                ("best_val_top1", top1), ("best_epoch", 1.0), ("gmacs", 1.0),
                                                ("params", 1e6))]
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    dataset = Dataset(name="ssv2", digest=digest, source_type="local", source=json.dumps({"uri": "/data/synth"}))
    client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """TSN on one data digest (3 seeds); GSF seeds 0 and 1 on it, seed 2 on data that changed since."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("split")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(STUDY, artifact_location=(root / "artifacts").as_uri())
    parent = client.create_run(experiment_id, tags={"gsf.role": "sweep", "gsf.sweep_id": "s",
                                                    "gsf.baseline": json.dumps({"model.temporal": "none"})})
    for seed in (0, 1, 2):
        _log_trial(client, experiment_id, parent.info.run_id, temporal="none", seed=seed, digest=OLD, top1=0.5)
        _log_trial(client, experiment_id, parent.info.run_id, temporal="gsf", seed=seed,
                   digest=NEW if seed == 2 else OLD, top1=0.9 if seed == 2 else 0.7)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return uri, root


def test_seeds_of_one_configuration_on_different_data_are_separate_rows(store):
    from analysis.runs import load_runs
    from analysis.tables import study_table

    uri, _ = store
    runs = load_runs(uri, [STUDY])
    assert set(runs["data_digest"]) == {OLD, NEW}
    table = study_table(runs)
    gsf = table[table["temporal"] == "gsf"].set_index("data")
    assert gsf.loc[OLD, "n"] == 2 and gsf.loc[OLD, "top1_mean_pct"] == pytest.approx(70.0)
    assert gsf.loc[NEW, "n"] == 1 and gsf.loc[NEW, "top1_mean_pct"] == pytest.approx(90.0)
    tsn = table[table["temporal"] == "none"]
    assert len(tsn) == 1 and tsn.iloc[0]["n"] == 3  # one digest: pooled as before, no data value needed


def test_the_report_says_in_a_line_that_rows_are_split_by_data_digest(store, tmp_path):
    uri, root = store
    assert main(["report", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--no-figures",
                 "--complexity-dir", str(root / "none")]) == 0
    index = (tmp_path / "r" / "README.md").read_text()
    assert "split into rows by the data column" in index
    table = pd.read_csv(tmp_path / "r" / STUDY / "table.csv", dtype=str, keep_default_na=False)
    assert sorted(table[table["model.temporal"] == "gsf"]["data"]) == [OLD, NEW]

"""experiments.run_logging: ``gsf train`` / ``gsf eval`` runs in MLflow with a trial's params, tags and
metrics; ``gsf eval --run-id``; a run's best checkpoint as an MLflow model, registered and predicted
through ``models:/``."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from experiments import run_logging, tracking
from experiments.grid.resolve import config_hash
from gsf import mlflow_schema as schema
from gsf.cli import main
from gsf.data.fingerprint import fingerprint_dataset
from gsf.inference.predict import Predictor
from tests.inference.fixtures import CLASS_NAMES


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store. ``gsf predict --tracking-uri`` sets MLflow's global URIs only inside its command
    (:mod:`gsf.mlflow_uris`); setting them here for the module would send the clients' registrations to the
    default store instead of this one."""
    folder = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="module")
def config_file(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "colours.yaml"
    path.write_text(trained["config"].to_yaml(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def train_run(trained, store, config_file, tmp_path_factory):
    """``gsf train`` with MLFLOW_TRACKING_URI set (no flag): its run folder and its MLflow run."""
    out = tmp_path_factory.mktemp("tracked") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store)
        assert main(["train", str(config_file), "--out", str(out), "--experiment", "gsf-test-runs"]) == 0
    client = tracking.client(store)
    (run,) = client.search_runs([client.get_experiment_by_name("gsf-test-runs").experiment_id])
    return {"out": out, "run": run, "client": client}


@pytest.mark.slow
def test_train_run_has_a_trials_params_tags_and_metrics(train_run, trained, tmp_path):
    run, client = train_run["run"], train_run["client"]
    config = trained["config"]
    assert run.info.status == "FINISHED"
    assert run.data.params == {k: tracking.param_value(v) for k, v in config.flat().items()}
    tags = run.data.tags
    assert tags[schema.ROLE] == schema.ROLE_TRAIN and tags[schema.VARIANT] == "GSF"
    assert tags[schema.CONFIG_HASH] == config_hash(config.to_dict()) and tags[schema.SEED] == "0"
    epochs = config.optim.epochs
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == list(range(1, epochs + 1))
    assert [m.step for m in client.get_metric_history(run.info.run_id, schema.GMACS)] == [0]
    result = json.loads((train_run["out"] / "result.json").read_text())
    for key in (schema.FINAL_VAL_TOP1, schema.FINAL_VAL_TOP5, schema.BEST_VAL_TOP1):
        assert run.data.metrics[key] == pytest.approx(result[key])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "scores"} <= artifacts
    # the run's model: its best checkpoint as ONNX, with what prediction needs and the checkpoint it came from
    model = run_logging.logged_model_of(client, run)
    assert model.name == run_logging.MODEL_NAME and model.source_run_id == run.info.run_id
    best = train_run["out"] / "checkpoints" / "best.pt"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.artifact_location, dst_path=str(tmp_path)))
    described = yaml.safe_load((local / "MLmodel").read_text())
    assert "onnx" in described["flavors"] and described["metadata"]["checkpoint"] == str(best)
    (onnx_file,) = local.glob("*.onnx")
    logged = Predictor.from_model_file(onnx_file)
    assert logged.preprocessing.class_names == CLASS_NAMES
    assert (logged.preprocessing.num_frames, logged.preprocessing.input_size) == (4, 32)
    from_checkpoint = Predictor.from_checkpoint(best)
    for video, _ in trained["held_out"][:2]:
        torch.testing.assert_close(logged.logits(video, views="1x1"), from_checkpoint.logits(video, views="1x1"),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_the_report_reads_a_train_run_like_a_trial(train_run, store):
    from analysis.runs import list_studies, load_runs

    assert "gsf-test-runs" in list_studies(store)
    (row,) = load_runs(store, ["gsf-test-runs"]).to_dict("records")
    run = train_run["run"]
    assert row["run_id"] == run.info.run_id and row["variant"] == "GSF" and row["status"] == "FINISHED"
    assert row["top1"] == pytest.approx(run.data.metrics[schema.FINAL_VAL_TOP1])
    assert row["test_1x1_top1"] == pytest.approx(run.data.metrics[schema.protocol_metric("1x1", "top1")])


@pytest.mark.slow
def test_eval_logs_protocol_metrics_into_an_existing_run(train_run, trained, config_file, store):
    run_id = train_run["run"].info.run_id
    checkpoint = train_run["out"] / "checkpoints" / "best.pt"
    assert main(["eval", str(config_file), "--checkpoint", str(checkpoint), "--views", "1x1",
                 "--tracking-uri", store, "--run-id", run_id]) == 0
    run = train_run["client"].get_run(run_id)
    for measure in schema.TEST_MEASURES:
        assert 0.0 <= run.data.metrics[schema.protocol_metric("1x1", measure)] <= 1.0
    assert run.data.metrics[schema.protocol_metric("1x1", "top1")] == pytest.approx(
        run.data.metrics[schema.FINAL_VAL_TOP1])  # the same videos and the same single view
    assert "scores/test_1x1.csv" in {a.path for a in train_run["client"].list_artifacts(run_id, "scores")}
    # the split tested is the run's evaluation input; the data it trained on stays its identity
    data = trained["config"].data
    tested = fingerprint_dataset(data.dataset, data.root, [data.val_split], max_videos=data.max_videos)
    assert run_logging.data_digests(run, schema.EVALUATION_CONTEXT) == [tested.digest]
    assert run_logging.data_digests(run) == run_logging.data_digests(train_run["run"]) != []


@pytest.mark.slow
def test_eval_without_run_id_makes_an_eval_run(trained, config_file, store):
    # no --views: the configuration's first test protocol, named in the metrics
    assert main(["eval", str(config_file), "--checkpoint", str(trained["checkpoint"]),
                 "--tracking-uri", store, "--experiment", "gsf-test-evals"]) == 0
    client = tracking.client(store)
    (run,) = client.search_runs([client.get_experiment_by_name("gsf-test-evals").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags[schema.ROLE] == schema.ROLE_EVAL
    assert schema.protocol_metric("1x1", "top1") in run.data.metrics
    assert run.data.params["data.num_frames"] == "4"
    data = trained["config"].data
    tested = fingerprint_dataset(data.dataset, data.root, [data.val_split], max_videos=data.max_videos)
    assert run_logging.data_digests(run, schema.EVALUATION_CONTEXT) == [tested.digest]


@pytest.mark.slow
def test_eval_into_an_unknown_run_is_an_error(trained, config_file, store, capsys):
    assert main(["eval", str(config_file), "--checkpoint", str(trained["checkpoint"]), "--views", "1x1",
                 "--tracking-uri", store, "--run-id", "0123456789abcdef"]) == 2
    assert "--run-id 0123456789abcdef: no such run" in capsys.readouterr().err


@pytest.mark.slow
def test_best_trial_is_registered_and_predicted_through_models_uri(trained, store, capsys):
    client = tracking.client(store)
    experiment = tracking.ensure_experiment(client, "gsf-test-study", uri=store)
    parent = client.create_run(experiment, tags={schema.ROLE: schema.ROLE_SWEEP}).info.run_id
    trials = {}
    for name, top1, with_model in (("worse", 0.5, True), ("best", 0.9, True), ("best-but-failed", 0.95, False)):
        run_id = client.create_run(experiment, run_name=name, tags={schema.ROLE: schema.ROLE_TRIAL,
                                                                    schema.PARENT_RUN_ID: parent}).info.run_id
        client.log_metric(run_id, schema.BEST_VAL_TOP1, top1)
        if with_model:
            assert run_logging.log_best_model(client, run_id, trained["checkpoint"].parent.parent).startswith("models:/")
        client.set_terminated(run_id, "FINISHED" if with_model else "FAILED")
        trials[name] = run_id
    version = run_logging.register_best_model(store, experiment_id=experiment, parent_run_id=parent, name="gsf-colours")
    assert int(version.version) == 1 and version.run_id == trials["best"]

    videos = [str(p) for p, _ in trained["held_out"]]
    expected = Predictor.from_checkpoint(trained["checkpoint"])
    assert main(["predict", "--model", "models:/gsf-colours/1", "--tracking-uri", store, "--json", *videos]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["top_k"][0]["index"] for r in results] == [expected.predict(v, k=1)[0]["index"] for v in videos]

    # the same model through MLflow's own pyfunc loader, with the logged signature
    from gsf.mlflow_uris import mlflow_uris

    with mlflow_uris(store, registry=True):
        model = mlflow.pyfunc.load_model("models:/gsf-colours/1")
    (spec,) = model.metadata.get_input_schema().inputs
    assert spec.shape == (1, 4, 3, 32, 32)
    outputs = model.predict(np.zeros(spec.shape, np.float32))
    assert outputs["logits"].shape == (1, 4)


def test_register_best_reaches_the_sweeps_options():
    import argparse

    from experiments import sweep_cli as cli

    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(["grid.yaml", "--register-best", "gsf-best"])
    assert cli.sweep_options(args, {}).register_best == "gsf-best"
    assert cli.sweep_options(parser.parse_args(["grid.yaml"]), {}).register_best is None

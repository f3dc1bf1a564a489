"""The data a sweep reads: fingerprinted by the driver, logged as each run's MLflow dataset input, and a
``--resume`` on changed data refused before any trial runs (no Ray started: the refusal comes first)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import TINY_GRID, read_grid, resolved

from experiments.run_logging import data_digests, log_data_input
from experiments.runner import (
    DATA_FINGERPRINTS,
    SweepOptions,
    _log_trial_data,
    data_key,
    fingerprint_trials,
    locate_sweep,
    open_sweep,
    run_sweep,
)
from experiments.trials import plan_trials
from gsf.errors import GSFDataError


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its tables made (seconds), copied by each test (milliseconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sweep(tmp_path: Path, synth_root: Path, empty_store: Path):
    """A new sweep of the tiny grid over a copy of the synthetic data (the copy may be changed)."""
    root = Path(shutil.copytree(synth_root, tmp_path / "data"))
    grid = read_grid(TINY_GRID)
    trials = plan_trials(grid, resolved(grid, extra={"data.root": str(root)}))
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    options = SweepOptions(tracking_uri=uri, storage=tmp_path / "sweeps", name="s",
                           overrides={"data.root": str(root)})
    folder = locate_sweep(grid, options)
    data = fingerprint_trials(trials)
    context = open_sweep(grid, folder, trials, data=data)
    return grid, trials, context, root, options, data


def _resume(options: SweepOptions) -> SweepOptions:
    return SweepOptions(tracking_uri=options.tracking_uri, storage=options.storage, name=options.name, resume=True)


def test_the_sweep_state_keeps_the_fingerprint_of_the_data_its_trials_read(sweep):
    _, trials, context, root, _, data = sweep
    (key, fingerprint), = data.items()
    assert {data_key(spec.config) for spec in trials.values()} == {key}
    state = json.loads((context.sweep_dir / "gsf_sweep.json").read_text())
    assert state["data"][key]["digest"] == fingerprint.digest
    saved = json.loads((context.sweep_dir / DATA_FINGERPRINTS).read_text())[key]
    assert len(saved["splits"]["train"]["entries"]) == fingerprint.num_samples("train") == 32
    assert not list(root.rglob("*fingerprint*"))  # nothing written into the data folder


def test_a_trial_run_logs_the_data_as_its_mlflow_dataset_input_once(sweep):
    from mlflow.tracking import MlflowClient

    _, trials, context, root, _, data = sweep
    (fingerprint,) = data.values()
    client = MlflowClient(context.tracking_uri)
    run_id = client.create_run(context.experiment_id).info.run_id
    spec = next(iter(trials.values()))
    _log_trial_data(client, run_id, context, spec)
    _log_trial_data(client, run_id, context, spec)  # a retried trial
    run = client.get_run(run_id)
    (logged,) = run.inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("ssv2", fingerprint.digest)
    assert json.loads(logged.dataset.source) == {"uri": str(root)}
    assert [f["name"] for f in json.loads(logged.dataset.schema)["mlflow_colspec"]][:3] == ["video_id", "path", "label"]
    assert json.loads(logged.dataset.profile)["num_samples"] == {"train": 32, "val": 8}
    assert {(t.key, t.value) for t in logged.tags} == {("mlflow.data.context", "training")}
    assert data_digests(run) == [fingerprint.digest]
    parent = client.get_run(context.parent_run_id)
    assert data_digests(parent) == [fingerprint.digest]


def test_resume_on_the_same_data_passes_the_check(sweep):
    grid, _, _, _, options, data = sweep
    from experiments.runner import refuse_changed_data

    folder = locate_sweep(grid, _resume(options))
    refuse_changed_data(folder, fingerprint_trials(plan_trials(grid, resolved(grid, extra=folder.overrides))))


def test_resume_on_a_changed_label_is_refused_naming_the_file_before_any_trial_runs(sweep):
    from mlflow.tracking import MlflowClient

    _, _, context, root, options, _ = sweep
    entries = json.loads((root / "train.json").read_text())
    labels = list(json.loads((root / "labels.json").read_text()))
    entries[0]["template"] = next(name for name in labels if name != entries[0]["template"])
    (root / "train.json").write_text(json.dumps(entries))
    runs_before = len(MlflowClient(options.tracking_uri).search_runs([context.experiment_id]))
    with pytest.raises(GSFDataError, match=r"--resume: the data of the sweep .* changed.*annotation file "
                                           r"train\.json changed"):
        run_sweep(TINY_GRID, _resume(options))
    assert len(MlflowClient(options.tracking_uri).search_runs([context.experiment_id])) == runs_before


def test_resume_on_an_extra_video_is_refused_saying_how_many_samples(sweep):
    _, _, _, root, options, _ = sweep
    entries = json.loads((root / "train.json").read_text())
    shutil.copy(root / "20bn-something-something-v2" / f"{entries[0]['id']}.webm",
                root / "20bn-something-something-v2" / "9999.webm")
    (root / "train.json").write_text(json.dumps([*entries, {**entries[0], "id": "9999"}]))
    with pytest.raises(GSFDataError, match=r"train: 32 -> 33 samples.*9999\.webm"):
        run_sweep(TINY_GRID, _resume(options))


def test_a_dataset_input_logged_again_for_a_resumed_run_adds_nothing(tmp_path, sweep):
    from mlflow.tracking import MlflowClient

    _, _, context, _, _, data = sweep
    (fingerprint,) = data.values()
    client = MlflowClient(context.tracking_uri)
    run_id = client.create_run(context.experiment_id).info.run_id
    for _ in range(2):
        log_data_input(client, run_id, fingerprint.summary())
    assert data_digests(client.get_run(run_id)) == [fingerprint.digest]


def test_a_tracked_gsf_train_run_logs_its_data_as_the_dataset_input(tmp_path, synth_root, empty_store, monkeypatch):
    from mlflow.tracking import MlflowClient

    import gsf.engine.trainer
    from experiments.run_logging import train_tracked
    from gsf.data.fingerprint import fingerprint_dataset
    from gsf.engine.config import load_config

    monkeypatch.setattr(gsf.engine.trainer, "train", lambda config, out_dir, resume, callbacks: {})
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_config(None, ["model.backbone=resnet_tiny", "model.pretrained=none", "data.dataset=ssv2",
                                f"data.root={synth_root}", "data.max_videos=5", "runtime.device=cpu"])
    _, run_id = train_tracked(config, tmp_path / "run", tracking_uri=uri)
    expected = fingerprint_dataset("ssv2", synth_root, ["train", "val"], max_videos=5)
    (logged,) = MlflowClient(uri).get_run(run_id).inputs.dataset_inputs
    assert (logged.dataset.name, logged.dataset.digest) == ("ssv2", expected.digest)
    assert json.loads(logged.dataset.profile) == {"num_samples": {"train": 5, "val": 5}, "max_videos": 5}


def test_a_split_gsf_eval_tested_is_logged_in_its_context_and_leaves_the_runs_data_identity(tmp_path, synth_root,
                                                                                           empty_store):
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    from analysis.runs import data_digests as report_digests
    from gsf import mlflow_schema as schema
    from gsf.data.fingerprint import fingerprint_dataset

    assert schema.DATASET_CONTEXT_TAG == MLFLOW_DATASET_CONTEXT
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("identity")
    run_id = client.create_run(experiment_id).info.run_id
    trained = fingerprint_dataset("ssv2", synth_root, ["train", "val"])
    tested = fingerprint_dataset("ssv2", synth_root, ["val"])
    assert trained.digest != tested.digest
    log_data_input(client, run_id, trained.summary())
    log_data_input(client, run_id, tested.summary(), context=schema.EVALUATION_CONTEXT)
    run = client.get_run(run_id)
    assert data_digests(run) == [trained.digest]
    assert data_digests(run, schema.EVALUATION_CONTEXT) == [tested.digest]
    assert report_digests(uri, [experiment_id]) == {run_id: trained.digest}

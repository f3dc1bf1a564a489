"""The sweep runner without Ray: the metrics a finished trial logs once, sampled trials' identity, and the
sweep's parent run (tags, baseline, params, state file) opened on a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_GRID, read_grid, resolved

from experiments.runner import SweepContext, SweepFolder, _final_metrics, open_sweep
from experiments.trials import plan_trials


def test_a_finished_trial_logs_its_final_and_every_test_protocol_metric_once():
    history = [{"epoch": 1, "val_top1": 0.4, "best_val_top1": 0.4, "best_epoch": 1.0, "val_mean_class_acc": 0.3},
               {"epoch": 2, "train_loss": 1.0, "best_val_top1": 0.4, "best_epoch": 1.0}]
    result = {"best_val_top1": 0.4, "best_epoch": 1.0, "final_val_top1": 0.4, "final_val_top5": 1.0,
              "test_1x1_top1": 0.5, "test_2x3_top1": 0.55, "test_2x3_mean_class_acc": 0.5, "train_loss": 1.0}
    final = _final_metrics(result, history)
    # best_* were logged with the last epoch; train_loss is no final metric; the mean class accuracy comes
    # from the last validation epoch when the engine's result lacks it
    assert final == {"final_val_top1": 0.4, "final_val_top5": 1.0, "final_val_mean_class_acc": 0.3,
                     "test_1x1_top1": 0.5, "test_2x3_top1": 0.55, "test_2x3_mean_class_acc": 0.5}


@pytest.fixture
def planned(synth_root: Path):
    grid = read_grid(TINY_GRID)
    return grid, plan_trials(grid, resolved(grid, extra={"data.root": str(synth_root)}))


def test_a_sampled_trial_is_its_grid_point_with_the_values_applied(planned):
    _, trials = planned
    context = SweepContext(trials=trials, tracking_uri="", experiment_id="", parent_run_id="", sweep_id="", grid="",
                           table="", code_version="", sweep_dir=Path("."))
    point = context.trial_spec({"trial": "temporal=gsf,seed=0"})
    assert point is trials["temporal=gsf,seed=0"]
    sampled = context.trial_spec({"trial": "temporal=gsf,seed=0", "optim.lr": 0.05})
    assert sampled.slug == "temporal=gsf,seed=0,lr=0.05" and sampled.config["optim"]["lr"] == 0.05
    assert sampled.config_hash != point.config_hash and sampled.axes["optim.lr"] == 0.05


def test_the_sweep_parent_run_carries_the_grid_baseline_and_the_state_is_saved(tmp_path, planned):
    from mlflow.tracking import MlflowClient

    grid, trials = planned
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    folder = SweepFolder(path=tmp_path / "sweeps" / "s", state=None, overrides={"data.root": "x"}, tracking_uri=uri)
    context = open_sweep(grid, folder, trials)
    parent = MlflowClient(uri).get_run(context.parent_run_id)
    assert json.loads(parent.data.tags["gsf.baseline"]) == {"model.temporal": "none"}
    assert parent.data.tags["gsf.role"] == "sweep" and parent.data.tags["gsf.sweep_id"] == context.sweep_id
    assert parent.data.params["num_trials"] == "2"
    state = json.loads((folder.path / "gsf_sweep.json").read_text())
    assert state["sweep_id"] == context.sweep_id and state["parent_run_id"] == context.parent_run_id
    assert state["overrides"] == {"data.root": "x"}
    again = open_sweep(grid, SweepFolder(folder.path, state, state["overrides"], uri), trials)  # --resume
    assert (again.parent_run_id, again.sweep_id) == (context.parent_run_id, context.sweep_id)


def test_no_models_reaches_every_trial_and_register_best_refuses_it_before_the_sweep_starts(tmp_path):
    import argparse

    from experiments import sweep_cli as cli
    from experiments.runner import SweepOptions, run_sweep
    from gsf.errors import GSFConfigError

    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args([str(TINY_GRID), "--no-models"])
    assert cli.sweep_options(args, {}).log_models is False
    assert cli.sweep_options(parser.parse_args([str(TINY_GRID)]), {}).log_models is True
    options = SweepOptions(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", storage=tmp_path / "sweeps",
                           log_models=False, register_best="best")
    with pytest.raises(GSFConfigError, match="--register-best best needs the trials' models"):
        run_sweep(TINY_GRID, options)
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("with_model", [True, False])
def test_a_run_logs_its_model_only_when_asked(tmp_path, monkeypatch, with_model):
    from experiments import run_logging

    logged = []
    monkeypatch.setattr(run_logging, "log_best_model", lambda client, run_id, out_dir: logged.append(run_id))

    class Client:
        def log_artifact(self, run_id, path):
            logged.append(Path(path).name)

    (tmp_path / "config.yaml").write_text("{}\n")
    run_logging.log_run_outputs(Client(), "r1", tmp_path, with_model=with_model)
    assert logged == (["config.yaml", "r1"] if with_model else ["config.yaml"])


def test_ray_tunes_status_table_shows_epoch_and_top1_columns_of_a_trial():
    from types import SimpleNamespace

    from ray.tune.experimental.output import _infer_user_metrics

    from experiments.runner import STATUS_COLUMNS, status_columns_first

    history = [{"epoch": 1, "val_top1": 0.5, "val_loss": 1.0}, {"epoch": 2, "val_top1": 0.4, "val_loss": 1.1},
               {"epoch": 3, "train_loss": 0.7}]
    # an epoch without validation: the validation metrics carried forward, the engine's best not among them
    report = status_columns_first({"val_loss": 1.1, "val_top1": 0.4, "train_loss": 0.7, "epoch": 3, "lr": 0.1},
                                  history)
    assert report["best_val_top1"] == 0.5 and list(report)[:4] == list(STATUS_COLUMNS)
    assert report["val_loss"] == 1.1 and report["lr"] == 0.1  # nothing lost
    # what Ray Tune's status table shows: the first four metrics of the trial's last result
    trial = SimpleNamespace(last_result={**report, "training_iteration": 3, "time_total_s": 9.0})
    assert _infer_user_metrics([trial]) == list(STATUS_COLUMNS)
    # the engine's own best is kept where it reported one
    assert status_columns_first({"epoch": 2, "best_val_top1": 0.7}, history)["best_val_top1"] == 0.7

"""analysis.runs reads what the sweep runner writes (experiments.tracking), through gsf.mlflow_schema: the
baseline from the sweep's parent run (none, with a warning, for older sweeps that did not log it), the variant
tag and one column per test-protocol metric."""

from __future__ import annotations

import logging

from analysis.runs import load_runs
from experiments import tracking


def _sweep(client, experiment_id: str, sweep_id: str, *, baseline, temporal: str, metrics: dict) -> None:
    tags = tracking.sweep_tags(grid="g", table="t", sweep_id=sweep_id, code="c", baseline=baseline)
    if baseline is None:  # a sweep of an earlier version: no baseline tag
        tags.pop("gsf.baseline")
    parent = tracking.open_sweep_run(client, experiment_id, name=sweep_id, tags=tags)
    trial = tracking.trial_tags(slug=f"temporal={temporal},seed=0", variant=temporal.upper(), config_hash=sweep_id,
                                grid="g", table="t", sweep_id=sweep_id, seed=0, code="c", parent_run_id=parent,
                                axes={"model.temporal": temporal})
    run_id, created = tracking.open_trial_run(client, experiment_id, tags=trial,
                                              params={"model.temporal": temporal, "runtime.seed": 0},
                                              complexity={"gmacs": 1.0})
    assert created
    tracking.log_metrics(client, run_id, metrics, step=2)
    client.set_terminated(run_id, status="FINISHED")


def test_runs_carry_the_parent_baseline_the_variant_and_the_test_protocol_metrics(tmp_path, caplog):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(client, "study", uri=uri)
    _sweep(client, experiment_id, "new", baseline={"model.temporal": "none"}, temporal="tsm",
           metrics={"final_val_top1": 0.5, "test_1x1_top1": 0.55, "test_2x3_top1": 0.6, "test_2x3_top5": 0.9})
    _sweep(client, experiment_id, "old", baseline=None, temporal="gsf", metrics={"final_val_top1": 0.7})
    with caplog.at_level(logging.WARNING, logger="analysis.runs"):
        runs = load_runs(uri, ["study"]).set_index("sweep_id")
    assert runs.loc["new", "baseline"] == {"model.temporal": "none"}
    assert runs.loc["old", "baseline"] == {}
    warned = [r.getMessage() for r in caplog.records if "logged no baseline" in r.getMessage()]
    assert len(warned) == 1 and "(g)" in warned[0]  # the old sweep's parent only
    assert runs.loc["new", "variant"] == "TSM" and runs.loc["new", "run_name"] == "TSM (temporal=tsm,seed=0)"
    assert runs.loc["new", "top1"] == 0.5
    assert (runs.loc["new", "test_1x1_top1"], runs.loc["new", "test_2x3_top1"]) == (0.55, 0.6)
    assert runs.loc["new", "test_2x3_top5"] == 0.9

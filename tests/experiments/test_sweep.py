"""Sweeps on a real local Ray, checked in MLflow: one child run per trial under one parent, retries and driver
restarts that neither duplicate runs nor repeat epochs, and no Ray process outliving its sweep. A sweep on an
existing multi-node cluster (``--address``) is tested in tests/reliability/test_faults.py and
test_ray_cluster_ddp.py."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import (
    SWEEP_TIMEOUT_S,
    TINY_GRID,
    finish,
    kill_marked,
    marked_processes,
    sweep_args,
    sweep_env,
    tune_state_epochs,
    wait_pg_gone,
)
from sweep_failing_once import start_epochs
from sweep_recording_starts import attempts

pytestmark = pytest.mark.slow
RECORDING_STARTS = Path(__file__).resolve().with_name("sweep_recording_starts.py")


def runs_of(tmp_path: Path, study: str = "gsf-test-tiny"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("gsf.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("gsf.role") == "trial"]
    return client, parents, children


def epochs_logged(client, run) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, "epoch"))


def tune_epochs(tmp_path: Path) -> dict[str, list[int]]:
    """Epochs Tune recorded per trial (its result.json, one line per report): a trial restarted from scratch
    instead of its checkpoint would show an epoch twice (see :func:`assert_no_epoch_repeated` for what a retry
    may drop)."""
    import json

    found = {}
    for path in (tmp_path / "sweeps" / "s").glob("*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if lines:
            found[lines[0]["config"]["trial"]] = [int(r["epoch"]) for r in lines]
    return found


def assert_no_epoch_repeated(tune_record: dict[str, list[int]], *, last: int) -> None:
    """Tune's record of each trial rises strictly to ``last``. It may miss epochs of a failed attempt: a retry
    puts back the trial's ``result.json`` from the sweep folder, which Tune syncs there only from time to time
    (``JsonLoggerCallback._restore_from_remote``); the start epochs of the attempts are the exact record."""
    assert tune_record, "Tune recorded no trial"
    for trial, epochs in tune_record.items():
        assert epochs == sorted(set(epochs)) and epochs[-1] == last, (trial, epochs)


def one_trial_grid(tmp_path: Path) -> Path:
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"model.temporal": ["gsf"]}
    grid["baseline"] = {}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_local_sweep_logs_one_child_run_per_trial_under_one_parent(tiny_sweep):
    client, parents, children = runs_of(tiny_sweep)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert json.loads(parent.data.tags["gsf.baseline"]) == {"model.temporal": "none"}  # the grid's, kept in MLflow
    assert sorted(r.info.run_name for r in children) == ["GSF (temporal=gsf,seed=0)", "TSN (temporal=none,seed=0)"]
    for run in children:
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["gsf.sweep_id"] == parent.data.tags["gsf.sweep_id"] and tags["gsf.table"] == "tiny"
        assert tags["gsf.axis.model.temporal"] in ("none", "gsf") and tags["gsf.seed"] == "0"
        assert tags["gsf.variant"] == {"none": "TSN", "gsf": "GSF"}[tags["gsf.axis.model.temporal"]]
        assert len(tags["gsf.config_hash"]) == 64 and tags["gsf.code_version"]
        assert run.data.params["model.temporal"] == tags["gsf.axis.model.temporal"]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "gmacs")] == [0]
        assert epochs_logged(client, run) == [1, 2]
        for key in ("best_val_top1", "final_val_top1", "final_val_top5", "final_val_mean_class_acc"):
            assert key in run.data.metrics
        for key in ("test_1x1_top1", "test_2x3_top1", "test_2x3_mean_class_acc"):  # the engine's test protocols
            assert key in run.data.metrics, key
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "scores"} <= artifacts
    temporal = {r.data.tags["gsf.axis.model.temporal"]: r for r in children}
    assert temporal["gsf"].data.metrics["temporal_modules"] > 0 == temporal["none"].data.metrics["temporal_modules"]


def test_a_trial_that_fails_once_is_retried_from_its_checkpoint_without_gap_or_repeat(tmp_path, synth_root,
                                                                                         processes):
    log = tmp_path / "sweep.log"
    faults = tmp_path / "sweeps" / "s" / "faults"
    process = processes.sweep_failing_once(1, faults, sweep_args(tmp_path, synth_root, one_trial_grid(tmp_path),
                                                                 "--set", "optim.epochs=3"),
                                           log=log, env=sweep_env(), cwd=tmp_path)
    finish(process, log)
    assert "InjectedFailure" in log.read_text()
    assert list((tmp_path / "sweeps" / "s" / "faults").iterdir())
    client, parents, children = runs_of(tmp_path)
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    assert epochs_logged(client, children[0]) == [1, 2, 3]
    assert [m.step for m in client.get_metric_history(children[0].info.run_id, "train_loss")] == [1, 2, 3]
    assert parents[0].info.status == "FINISHED"
    assert start_epochs(faults) == [[1, 2]]  # the retry resumed from the checkpoint of epoch 1
    assert_no_epoch_repeated(tune_epochs(tmp_path), last=3)


def test_a_killed_driver_is_resumed_without_duplicate_or_running_runs(tmp_path, synth_root, processes):
    # Batches of 2 make an epoch a few seconds long, so the kill lands while Tune's state (snapshotted every two
    # checkpoints of a trial) still names a checkpoint that exists; a later kill meets a race of the runner (see
    # the checkpoint_config comment in experiments/runner.py).
    epochs = 5  # room for the kill between the second trial's first checkpoint and its end
    args = sweep_args(tmp_path, synth_root, TINY_GRID, "--set", f"optim.epochs={epochs}", "--set", "data.batch_size=2",
                      "--max-concurrent", "1")
    records, folder = tmp_path / "records", tmp_path / "sweeps" / "s"
    log = tmp_path / "first.log"
    first = processes.start([sys.executable, str(RECORDING_STARTS), str(records), *args], log=log, env=sweep_env(),
                            cwd=tmp_path)
    deadline = time.monotonic() + SWEEP_TIMEOUT_S

    def one_done_one_checkpointed_mid_trial() -> bool:
        """In the state --resume restores (a file read per poll): one trial at its last epoch, the other (one at a
        time, so the first has ended) past its first checkpoint and short of its last epoch."""
        reached = sorted(epoch for _, epoch in tune_state_epochs(folder))
        return len(reached) == 2 and 1 <= reached[0] < epochs == reached[1]

    while not one_done_one_checkpointed_mid_trial():
        assert first.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() < deadline, f"no trial checkpointed mid-sweep in {SWEEP_TIMEOUT_S} s"
        time.sleep(0.2)
    at_kill = {config["trial"]: epoch for config, epoch in tune_state_epochs(folder)}
    # the driver's local Ray (its servers and the trial's worker) carries the driver's marker: finish() looks
    # for exactly these after a sweep
    assert any(title.startswith("ray::") for title in marked_processes(first.marker).values())
    os.kill(first.pid, signal.SIGKILL)  # the driver only, mid-trial
    first.wait(timeout=30)
    if not wait_pg_gone(first.pid, timeout=10):  # what a dead driver's local Ray leaves: gone with its node
        os.killpg(first.pid, signal.SIGKILL)
        assert wait_pg_gone(first.pid)
    kill_marked(first.marker)
    (interrupted,) = (slug for slug, epoch in at_kill.items() if epoch < epochs)
    (done,) = set(at_kill) - {interrupted}
    client, _, children = runs_of(tmp_path)
    by_slug = {r.data.tags["gsf.slug"]: r for r in children}
    finished = by_slug[done]
    assert finished.info.status == "FINISHED" and by_slug[interrupted].info.status == "RUNNING"
    history_before = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(finished.info.run_id, "epoch")]
    assert [step for step, _, _ in history_before] == list(range(1, epochs + 1))
    (cut,) = attempts(records)[interrupted]  # the trial's own record of the attempt the kill cut short
    assert cut["start_epoch"] == 1 and cut["epochs"] == list(range(1, len(cut["epochs"]) + 1))
    assert at_kill[interrupted] <= len(cut["epochs"]) < epochs, "the trial had finished before the kill"
    # the driver kept a complete copy of Tune's experiment state, which --resume puts back if the kill cut
    # the file off mid-write (a CI run once failed so: Tune then restarts the whole experiment)
    copies = list((folder / ".gsf-state-backup").glob("experiment_state-*.json"))
    assert copies and json.loads(copies[0].read_text())

    log = tmp_path / "resume.log"
    second = processes.start([sys.executable, str(RECORDING_STARTS), str(records), *args, "--resume"], log=log,
                             env=sweep_env(), cwd=tmp_path)
    finish(second, log)
    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["gsf.slug"] for r in children) == ["temporal=gsf,seed=0", "temporal=none,seed=0"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert epochs_logged(client, run) == list(range(1, epochs + 1))
    # the finished trial was not rerun: one attempt, and its run got no new epoch
    assert [(a["start_epoch"], a["epochs"]) for a in attempts(records)[done]] == [(1, list(range(1, epochs + 1)))]
    again = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(finished.info.run_id, "epoch")]
    assert again == history_before
    # the interrupted one continued from a checkpoint (at least the one in the state at the kill), not from
    # epoch 1, and trained each remaining epoch once
    before, resumed = attempts(records)[interrupted]
    assert before == cut
    assert at_kill[interrupted] + 1 <= resumed["start_epoch"] <= len(cut["epochs"]) + 1, (at_kill, cut, resumed)
    assert resumed["epochs"] == list(range(resumed["start_epoch"], epochs + 1))


def test_report_of_a_real_sweep_has_one_row_per_variant_matching_its_runs(tmp_path, tiny_sweep):
    """`gsf report` on an MLflow store filled by a tiny real sweep (Ray, engine, tracking)."""
    import csv

    from gsf.cli import main

    _, _, children = runs_of(tiny_sweep)
    by_temporal = {r.data.tags["gsf.axis.model.temporal"]: r for r in children}
    out = tmp_path / "report"
    assert main(["report", "--tracking-uri", f"sqlite:///{tiny_sweep / 'mlflow.db'}", "--study", "gsf-test-tiny",
                 "--out", str(out)]) == 0
    tables = list(out.glob("*/table.csv"))
    assert len(tables) == 1
    rows = list(csv.DictReader(tables[0].open()))
    assert sorted(r["model.temporal"] for r in rows) == sorted(by_temporal) == ["gsf", "none"]
    for row in rows:
        run = by_temporal[row["model.temporal"]]
        assert row["n"] == "1" and "1 finished" in row["status"]
        assert float(row["top1_mean_pct"]) == pytest.approx(100 * run.data.metrics["final_val_top1"], abs=0.006)
        assert float(row["gmacs_per_view"]) == pytest.approx(run.data.metrics["gmacs"], abs=0.006)
    assert (tables[0].parent / "figures" / "ablation_top1.png").is_file()

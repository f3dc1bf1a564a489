"""A sweep whose trial trains with DDP (a Ray Train worker group of 2 gloo ranks on CPU) on a real local Ray,
checked in MLflow: rank 0 reports to Tune and MLflow, and a rank that fails once makes Ray Train restart the
worker group from its last checkpoint (every rank resumes it), each epoch logged once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import TINY_GRID, ray_train_checkpointed_epoch, sweep_env
from sweep_failing_once import start_epochs
from test_sweep import assert_no_epoch_repeated, epochs_logged, finish, runs_of, sweep_args, tune_epochs

pytestmark = pytest.mark.slow
RECORDING_NODES = Path(__file__).resolve().with_name("sweep_recording_nodes.py")


def ddp_grid(tmp_path: Path) -> Path:
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"model.temporal": ["tsm"]}
    grid["baseline"] = {}
    grid["set"].update({"data.batch_size": 4})  # per process: the global batch is 8, optim.base_batch_size
    grid["resources"] = {"data_parallel": "ddp", "workers_per_trial": 2, "cpus_per_worker": 0.5}  # 2 cores here
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_a_ddp_trial_on_two_cpu_workers_is_tracked_and_retried_from_its_checkpoint(tmp_path, synth_root, processes):
    log = tmp_path / "sweep.log"
    faults = tmp_path / "sweeps" / "s" / "faults"
    args = sweep_args(tmp_path, synth_root, ddp_grid(tmp_path))
    args[args.index("--storage") + 1] = (tmp_path / "sweeps").as_uri()  # --storage as a file:// URI
    process = processes.sweep_failing_once(1, faults, args, log=log, env=sweep_env(), cwd=tmp_path)
    finish(process, log)
    text = log.read_text()
    assert "each trial trains with 2 data-parallel (DDP) processes: Ray Train workers of 0.5 CPU" in text
    assert "InjectedFailure" in text  # raised in rank 0's callback, in its Ray Train worker
    assert "(ip=127.0.0.1, pid=" in text and "world_rank=1" in text  # the ranks' group met on loopback

    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 1
    run = children[0]
    assert run.info.status == "FINISHED" and run.info.run_name == "TSM (temporal=tsm,seed=0)"
    assert run.data.params["runtime.world_size"] == "2" and run.data.params["data.batch_size"] == "4"
    assert epochs_logged(client, run) == [1, 2]
    for key in ("train_loss", "val_top1", "best_val_top1", "final_val_top1", "final_val_top5",
                "final_val_mean_class_acc"):
        assert key in run.data.metrics, key
    # the global batch (4 per process x 2) is optim.base_batch_size: the lr is the configured one
    lr = [m.value for m in client.get_metric_history(run.info.run_id, "lr")]
    assert lr == pytest.approx([0.001, 0.01])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "scores"} <= artifacts
    assert start_epochs(faults) == [[1, 2]]  # epoch 2 continued from the checkpoint of epoch 1
    assert_no_epoch_repeated(tune_epochs(tmp_path), last=2)
    # the worker group's checkpoints went through Ray Train to the sweep's storage
    (train_run,) = (tmp_path / "sweeps" / "s" / "train").iterdir()
    assert len([p for p in train_run.glob("checkpoint_*") if p.is_dir()]) == 2  # epochs 1 and 2 (num_to_keep 2)

    (engine,) = (tmp_path / "sweeps" / "s").glob("*/engine")
    lines = [json.loads(x) for x in (engine / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1.0, 2.0]  # rank 0 alone wrote, once per epoch
    assert yaml.safe_load((engine / "config.yaml").read_text())["runtime"]["world_size"] == 2


def test_a_killed_driver_resumes_a_ddp_trial_from_its_ray_train_checkpoint(tmp_path, synth_root, processes):
    import os
    import signal
    import sys
    import time

    from conftest import kill_marked, wait_pg_gone
    from test_sweep import SWEEP_TIMEOUT_S

    epochs = 5  # an epoch takes a second or two here: room to kill the driver between two of them
    args = sweep_args(tmp_path, synth_root, ddp_grid(tmp_path), "--set", f"optim.epochs={epochs}")
    records = tmp_path / "records"  # each rank's epochs, with its process, written by the rank itself
    log = tmp_path / "first.log"
    first = processes.start([sys.executable, str(RECORDING_NODES), str(records), *args], log=log, env=sweep_env(),
                            cwd=tmp_path)
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    # Ray Train's snapshot, not MLflow: a file read per poll, so the kill lands right after the first
    # checkpoint (a CI run once polled MLflow for "epoch 1 only" while the run went past it to the end)
    while ray_train_checkpointed_epoch(tmp_path / "sweeps" / "s") < 1 or not rank0_epochs(records):
        assert first.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() < deadline, "Ray Train recorded no checkpoint"
        time.sleep(0.2)
    checkpointed = ray_train_checkpointed_epoch(tmp_path / "sweeps" / "s")
    os.kill(first.pid, signal.SIGKILL)  # the driver only, mid-trial
    first.wait(timeout=30)
    if not wait_pg_gone(first.pid, timeout=10):  # its local Ray goes with it
        os.killpg(first.pid, signal.SIGKILL)
        assert wait_pg_gone(first.pid)
    kill_marked(first.marker)
    before = rank0_epochs(records)  # what rank 0 trained before the kill: epoch 1 on, not every epoch
    assert before and [e for e, _ in before] == list(range(1, len(before) + 1)), before
    assert checkpointed <= len(before) < epochs, "the trial finished before the driver was killed"

    log = tmp_path / "resume.log"
    second = processes.start([sys.executable, str(RECORDING_NODES), str(records), *args, "--resume"], log=log,
                             env=sweep_env(), cwd=tmp_path)
    finish(second, log)
    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    (run,) = children
    assert run.info.status == "FINISHED"
    assert epochs_logged(client, run) == list(range(1, epochs + 1))
    # the new worker group found the trial's Ray Train run by name and continued from its checkpoint (at least
    # the one recorded before the kill): rank 0 of the new group trained only the epochs after it, not epoch 1
    first_pids = {pid for _, pid in before}
    later = [epoch for epoch, pid in rank0_epochs(records) if pid not in first_pids]
    assert later and later == list(range(later[0], epochs + 1)), later
    assert checkpointed + 1 <= later[0] <= len(before) + 1, (checkpointed, before, later)


def rank0_epochs(records: Path) -> list[tuple[int, int]]:
    """``(epoch, pid)`` of each epoch rank 0 finished, in order (:mod:`sweep_recording_nodes`'s files)."""
    found = [json.loads(p.read_text()) for p in records.glob("rank0-epoch*-pid*.json")]
    return sorted((r["epoch"], r["pid"]) for r in found)

"""A data-parallel sweep trial on a real multi-node Ray cluster (every node on 127.0.0.1 of this machine, gloo on
CPU): a head and three worker nodes offering 1 CPU each. The trial's own process reserves a sliver of a CPU
on one node; its two Ray Train workers need 1 CPU each, so they run on two other, different nodes. A worker
node running a rank is SIGKILLed after the first epoch, and Ray Train restarts the worker group from the
last checkpoint on the two nodes left with room. MLflow has every epoch exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_GRID, ray_train_checkpointed_epoch, sweep_env
from test_sweep import assert_no_epoch_repeated, epochs_logged, runs_of, sweep_args, tune_epochs

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RECORDING = Path(__file__).resolve().parent / "sweep_recording_nodes.py"
EPOCHS = 3
WAIT_S = 900  # for the first epoch of both ranks; a hang fails the test instead of blocking it


@pytest.fixture
def loopback_cluster(monkeypatch):
    """Head (1 CPU) + 3 worker nodes (1 CPU each) on 127.0.0.1; always torn down."""
    from ray.cluster_utils import Cluster

    for key, value in sweep_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    # every node on 127.0.0.1 even when an earlier test of this session imported ray (which then read the
    # variable already): the constant Ray resolves node addresses with, and the variable for its processes
    from ray._private import ray_constants

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    temp = tempfile.mkdtemp(prefix="gsfc", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Ray's Cluster also writes the address file of its default temp folder (/tmp/ray/ray_current_cluster),
    # which need not exist on a fresh machine: point that default into this cluster's own folder.
    monkeypatch.setenv("RAY_TMPDIR", temp)
    os.makedirs(os.path.join(temp, "ray"), exist_ok=True)
    node = {"node_ip_address": "127.0.0.1", "num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={**node, "include_dashboard": False, "temp_dir": temp})
    try:
        workers = [cluster.add_node(**node) for _ in range(3)]
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def cluster_grid(tmp_path: Path) -> Path:
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"model.temporal": ["tsm"]}
    grid["baseline"] = {}
    grid["set"].update({"data.batch_size": 4, "optim.epochs": EPOCHS})
    grid["resources"] = {"data_parallel": "ddp", "workers_per_trial": 2, "cpus_per_worker": 1, "placement": "spread"}
    grid["tune"] = {"max_failures": 2}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("rank*-epoch*-pid*.json"))]


def test_a_two_node_ddp_trial_survives_a_killed_node_and_logs_every_epoch_once(tmp_path, synth_root, processes,
                                                                                 loopback_cluster):
    cluster, workers = loopback_cluster
    record_dir, log = tmp_path / "records", tmp_path / "sweep.log"
    argv = [sys.executable, str(RECORDING), str(record_dir),
            *sweep_args(tmp_path, synth_root, cluster_grid(tmp_path), "--address", cluster.address)]
    process = processes.start(argv, log=log, env={**os.environ}, cwd=tmp_path)

    def epoch_one_done() -> bool:
        """Both ranks recorded epoch 1, MLflow has it, and Ray Train recorded its checkpoint. A kill before
        that restarts the group from scratch, correctly, but then nothing tells a resumed group from a new one."""
        if {r["rank"] for r in records(record_dir) if r["epoch"] == 1} != {0, 1}:
            return False
        if "trials, sweep" not in log.read_text(errors="replace"):  # the driver made the store
            return False
        client, _, children = runs_of(tmp_path)
        logged = any(1 in epochs_logged(client, r) for r in children)
        return logged and ray_train_checkpointed_epoch(tmp_path / "sweeps" / "s") >= 1

    deadline = time.monotonic() + WAIT_S
    while not epoch_one_done():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"epoch 1 of both ranks was not recorded and reported:\n{log.read_text()[-6000:]}")
        time.sleep(0.5)
    first = {r["rank"]: r for r in records(record_dir) if r["epoch"] == 1}
    # each rank reserved a whole CPU of a 1-CPU node: two different nodes
    assert first[0]["node"] != first[1]["node"]
    # The trial's own process holds 0.01 CPU of some node, so neither rank is on that node. Kill a worker node
    # (not the head: it holds the cluster's control store) that runs a rank.
    by_id = {w.node_id: w for w in workers}
    victim = next(first[rank]["node"] for rank in (1, 0) if first[rank]["node"] in by_id)
    checkpointed = ray_train_checkpointed_epoch(tmp_path / "sweeps" / "s")
    cluster.remove_node(by_id[victim], allow_graceful=False)  # SIGKILL the node's processes
    try:
        code = process.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sweep did not finish in {WAIT_S} s after the kill:\n{log.read_text()[-6000:]}")
    assert code == 0, log.read_text()[-6000:]

    client, parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    (run,) = children
    assert run.info.status == "FINISHED"
    assert run.data.params["runtime.world_size"] == "2"
    assert epochs_logged(client, run) == list(range(1, EPOCHS + 1))  # none repeated, none missing
    assert_no_epoch_repeated(tune_epochs(tmp_path), last=EPOCHS)

    # the worker group was restarted (new worker processes) away from the victim, from a checkpoint at least
    # as recent as the one recorded before the kill (the group may have recorded one more meanwhile)
    first_pids = {first[0]["pid"], first[1]["pid"]}
    later = [r for r in records(record_dir) if r["pid"] not in first_pids]
    assert later, "the worker group was not restarted"
    resumed_after = min(r["epoch"] for r in later) - 1
    assert 1 <= checkpointed <= resumed_after < EPOCHS
    assert {r["epoch"] for r in later if r["rank"] == 0} == set(range(resumed_after + 1, EPOCHS + 1))
    assert victim not in {r["node"] for r in later}
    assert len({r["node"] for r in later if r["epoch"] == EPOCHS}) == 2
    (engine,) = (tmp_path / "sweeps" / "s").glob("*/engine")
    lines = [json.loads(x) for x in (engine / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == list(range(1, EPOCHS + 1))

"""Faults (docs/reliability.md, "Faults"): a checkpoint write interrupted midway, the MLflow server going
away mid-sweep, and a worker node of a two-node Ray cluster dying under its trial. The killed driver and the
trial that crashes once are in tests/experiments/test_sweep.py."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import yaml

from .conftest import REPO, free_port

TINY_GRID = REPO / "tests" / "experiments" / "tiny.yaml"
SWEEP_TIMEOUT_S = 300


def test_an_interrupted_checkpoint_write_leaves_the_previous_one_loadable(tmp_path, monkeypatch):
    from gsf.engine import checkpoint as ckpt

    path = tmp_path / "checkpoints" / "last.pt"
    ckpt.save_checkpoint({"epoch": 1, "w": torch.arange(6.0)}, path)
    real_save = torch.save

    def interrupted(obj, f, *args, **kwargs):
        real_save({"epoch": 2, "w": torch.zeros(10_000)}, f)
        f.truncate(f.tell() // 2)  # half the bytes are out when Ctrl-C arrives
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    kept = ckpt.load_checkpoint(path)
    assert kept["epoch"] == 1 and torch.equal(kept["w"], torch.arange(6.0))
    assert os.listdir(path.parent) == ["last.pt"]  # the partial temporary file is gone


# --- sweeps ------------------------------------------------------------------------------------------

def sweep_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GSF_SWEEP_", "MLFLOW_"))}
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                "RAY_DEDUP_LOGS": "0", "PYTHONPATH": str(REPO), **extra})
    return env


class Group:
    """Commands in their own process groups, all killed at teardown."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, argv, *, log: Path, cwd: Path, env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=cwd,
                                   env=env or sweep_env(), start_new_session=True)
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill_all(self) -> None:
        for process in self.started:
            self.kill(process)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def group():
    started = Group()
    yield started
    started.kill_all()


def one_trial_grid(tmp_path: Path, epochs: int) -> Path:
    """The tiny sweep grid with one TSM trial of ``epochs`` epochs (TSM: the fault, not the operator, is
    under test)."""
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"model.temporal": ["tsm"]}
    grid["baseline"] = {}
    grid["set"]["optim.epochs"] = epochs
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def gsf_sweep(grid: Path, root: Path, tmp_path: Path, uri: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gsf.cli", "sweep", str(grid), "--set", f"data.root={root}", "--storage",
            str(tmp_path / "sweeps"), "--tracking-uri", uri, "--name", "s", *extra]


def wait_exit(process: subprocess.Popen, log: Path) -> int:
    try:
        return process.wait(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish in {SWEEP_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


def db_epochs(db: Path) -> list[int]:
    """Steps of the 'epoch' metric in the store, read from SQLite directly (works with the server down)."""
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        try:
            return sorted(s for (s,) in connection.execute("SELECT step FROM metrics WHERE key = 'epoch'"))
        except sqlite3.OperationalError:
            return []


def wait_for(predicate, what: str, process: subprocess.Popen, log: Path, timeout: float = SWEEP_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, f"exited before {what}:\n{log.read_text(errors='replace')[-4000:]}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.2)


def start_mlflow(group: Group, tmp_path: Path, port: int) -> subprocess.Popen:
    from experiments.ui import server_command

    process = group.start(server_command(f"sqlite:///{tmp_path / 'mlflow.db'}", "127.0.0.1", port),
                          log=tmp_path / "mlflow.log", cwd=tmp_path)
    deadline = time.monotonic() + 120
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "mlflow.log").read_text()
            time.sleep(0.5)


def trial_runs(uri: str, study: str = "gsf-test-tiny"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    return client, [r for r in runs if r.data.tags.get("gsf.role") == "sweep"], \
        [r for r in runs if r.data.tags.get("gsf.role") == "trial"]


@pytest.mark.slow
def test_the_mlflow_server_going_away_mid_sweep_then_resume_logs_every_epoch_once(tmp_path, tiny_root, group):
    epochs = 5
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_mlflow(group, tmp_path, port)
    grid = one_trial_grid(tmp_path, epochs)
    log = tmp_path / "sweep.log"
    sweep = group.start(gsf_sweep(grid, tiny_root, tmp_path, uri), log=log, cwd=tmp_path)
    wait_for(lambda: db_epochs(tmp_path / "mlflow.db"), "epoch logged", sweep, log)
    group.kill(server)  # the tracking server goes away mid-sweep

    code = wait_exit(sweep, log)
    text = log.read_text(errors="replace")
    assert code == 1, text[-6000:]
    assert "Traceback" not in text.split("gsf sweep: trial")[-1], text[-3000:]  # the driver ends with a message
    assert f"127.0.0.1:{port}" in text.split("gsf sweep: trial")[-1]  # ... that names the server
    assert "0/1 trials finished" in text and "--resume" in text.split("gsf sweep: trial")[-1]
    assert not _group_alive(sweep.pid), "a Ray process outlived its sweep"
    checkpoints = list((tmp_path / "sweeps" / "s").glob("*/checkpoint_*/checkpoints/last.pt"))
    assert checkpoints, "the trial's Tune checkpoint was lost"
    logged_before = db_epochs(tmp_path / "mlflow.db")
    assert logged_before and len(logged_before) < epochs

    start_mlflow(group, tmp_path, port)  # the same server again, same port and store
    log = tmp_path / "resume.log"
    resumed = group.start(gsf_sweep(grid, tiny_root, tmp_path, uri, "--resume"), log=log, cwd=tmp_path)
    assert wait_exit(resumed, log) == 0, log.read_text()[-6000:]
    client, parents, children = trial_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 1 and children[0].info.status == "FINISHED"
    run_id = children[0].info.run_id
    for key in ("epoch", "train_loss", "val_top1"):
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(1, epochs + 1)), key
    assert "final_val_top1" in children[0].data.metrics

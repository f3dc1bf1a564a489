"""Shared fixtures of the sweep tests: one tiny synthetic data set per session, sweep subprocesses that
never outlive their test (each runs in its own process group, killed in teardown)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_GRID = Path(__file__).resolve().parent / "tiny.yaml"
FAILING_ONCE = Path(__file__).resolve().parent / "sweep_failing_once.py"


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """4 classes (2 time-reversed pairs), 10 videos each, 8 frames of 32 px: written once per session."""
    from gsf.data import synthesize_dataset

    root = tmp_path_factory.mktemp("synth")
    synthesize_dataset(root, num_classes=4, videos_per_class=10, num_frames=8, size=32, seed=0)
    return root


def read_grid(path):
    """Steps 1-2 of the grid pipeline: the grid file loaded and validated."""
    from experiments.grid.load import load_grid
    from experiments.grid.validate import validate_grid

    return validate_grid(load_grid(path))


def resolved(grid, *, extra=None):
    """Steps 3-4: the grid's trials expanded and resolved."""
    from experiments.grid.expand import expand
    from experiments.grid.resolve import resolve

    return resolve(grid, expand(grid), extra=extra)


def sweep_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GSF_SWEEP_"))}
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                "RAY_DEDUP_LOGS": "0", **extra})
    return env


def ray_train_checkpointed_epoch(sweep_folder: Path) -> int:
    """The epoch of the latest checkpoint Ray Train recorded (its checkpoint manager's snapshot under
    ``SWEEP_FOLDER/train/<run>/``), 0 before the first; what a worker group restarted now resumes after.

    A data-parallel trial's epoch reaches Tune and MLflow around the time this snapshot is written, not
    strictly after, so a test that kills the group (or the driver) to see it resume waits for the snapshot."""
    import json

    epochs = [0]
    for path in Path(sweep_folder).glob("train/*/checkpoint_manager_snapshot.json"):
        try:
            latest = json.loads(path.read_text()).get("latest_checkpoint_result")
        except (OSError, ValueError):  # being written
            continue
        if latest:
            epochs.append(int(latest["metrics"]["epoch"]))
    return max(epochs)


def pg_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_pg_gone(pgid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pg_alive(pgid):
            return True
        time.sleep(0.5)
    return not pg_alive(pgid)


class Processes:
    """Start commands in their own process groups; kill whatever is left of them at teardown."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, argv: list[str], *, log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
        handle = log.open("wb")
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
        self.started.append(process)
        return process

    def sweep(self, args: list[str], *, log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
        return self.start([sys.executable, "-m", "gsf.cli", "sweep", *args], log=log, env=env, cwd=cwd)

    def sweep_failing_once(self, epoch: int, marker_dir: Path, args: list[str], *, log: Path, env: dict[str, str],
                           cwd: Path) -> subprocess.Popen:
        """``gsf sweep ARGS`` whose every trial fails once after ``epoch`` (:mod:`sweep_failing_once`)."""
        return self.start([sys.executable, str(FAILING_ONCE), str(epoch), str(marker_dir), *args], log=log, env=env,
                          cwd=cwd)

    def kill_all(self) -> None:
        for process in self.started:
            if pg_alive(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            wait_pg_gone(process.pid, timeout=30)


@pytest.fixture
def processes():
    tracker = Processes()
    yield tracker
    tracker.kill_all()

"""Shared fixtures of the sweep tests: one tiny synthetic data set per session, sweep subprocesses that
never outlive their test (each runs in its own process group, killed in teardown with every process that
carries its environment marker)."""

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


# Every process a test starts with :func:`sweep_env`, and every process those start (a local Ray's servers and
# workers inherit it), carries this variable with a value of its own: what is left of a command is found by it.
MARKER = "GSF_TEST_PROCESS_MARKER"


def sweep_env(**extra: str) -> dict[str, str]:
    """The environment of a sweep subprocess (a new :data:`MARKER` value for each call)."""
    import uuid

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GSF_SWEEP_", MARKER))}
    env.update({"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1",
                "RAY_DEDUP_LOGS": "0", MARKER: uuid.uuid4().hex, **extra})
    return env


def marked_processes(marker: str) -> dict[int, str]:
    """pid -> command line of every live process (but this one) whose environment carries ``marker``."""
    needle = f"{MARKER}={marker}".encode() + b"\0"
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes() + b"\0":
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped by its parent
                continue
            found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def wait_marked_gone(marker: str, timeout: float = 60.0) -> dict[int, str]:
    """The processes of ``marker`` still alive after waiting up to ``timeout`` s for them to end (a hang guard:
    a local Ray's servers and workers exit within seconds of its driver's ray.shutdown)."""
    deadline = time.monotonic() + timeout
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def kill_marked(marker: str) -> None:
    """SIGKILL every process of ``marker`` (Ray puts its workers in process groups of their own)."""
    for _ in range(20):
        left = marked_processes(marker)
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def tune_state_epochs(sweep_folder: Path) -> list[tuple[dict, int]]:
    """``(config, epoch)`` of each trial in the sweep's backed-up Tune state (``.gsf-state-backup``,
    :mod:`experiments.tune_state`): its Tune config (``trial``, the grid point, and any sampled values) and the
    epoch of the latest checkpoint its checkpoint manager holds there (0 before the first).

    ``--resume`` restores the trials from Tune's state file, or from this copy when a killed driver cut the file
    off, and the copy is never newer than the file; each trial continues from that latest checkpoint. So a
    driver killed once a trial shows epoch E here is resumed with that trial's checkpoint of epoch E or a later
    one. The trial's ``last_result`` can be an epoch ahead of it: Tune records a report's result before it
    registers the report's checkpoint, and a snapshot of the state can fall between the two."""
    import json

    from ray.tune.utils.serialization import TuneFunctionDecoder

    decoder = TuneFunctionDecoder(allow_cloudpickle=True)  # the checkpoint manager is pickled; our own file
    found = []
    for path in sorted(Path(sweep_folder).glob(".gsf-state-backup/experiment_state-*.json")):
        try:
            trials = json.loads(path.read_text())["trial_data"]
        except (OSError, ValueError, KeyError):  # being replaced
            continue
        for _, metadata in trials:
            state = decoder.decode(metadata)
            result = state.get("last_result") or {}
            if "config" in result:
                latest = state["checkpoint_manager"].latest_checkpoint_result
                found.append((result["config"], int(latest.metrics["epoch"]) if latest else 0))
    return found


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
        process.marker = env.get(MARKER)  # the processes it starts carry it too (sweep_env)
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
            if process.marker:  # what left its process group (Ray workers have their own)
                kill_marked(process.marker)


@pytest.fixture
def processes():
    tracker = Processes()
    yield tracker
    tracker.kill_all()


# A hang guard, not a budget: a sweep of the sweep tests takes 30-120 s on a loaded 2-core machine.
SWEEP_TIMEOUT_S = 900


def sweep_args(tmp_path: Path, synth_root: Path, grid: Path = TINY_GRID, *extra: str) -> list[str]:
    """``gsf sweep`` arguments: ``grid`` on the session's data, its store and sweep folder under ``tmp_path``."""
    return [str(grid), "--set", f"data.root={synth_root}", "--storage", str(tmp_path / "sweeps"),
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--name", "s", *extra]


def finish(process, log: Path, *, expect: int = 0) -> None:
    """Wait for a sweep started with :func:`sweep_env`; check its exit code and that nothing of it outlived it."""
    try:
        code = process.wait(timeout=SWEEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish in {SWEEP_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")
    assert code == expect, log.read_text()[-6000:]
    assert wait_pg_gone(process.pid), "a process of the sweep's process group outlived it"
    # what the sweep started (its local Ray's servers and workers carry the sweep's environment marker) must be
    # gone with it: its driver shuts that Ray down
    left = wait_marked_gone(process.marker)
    assert not left, f"Ray processes outlived their sweep: {left}"


TINY_SWEEP_MODEL = "gsf-tiny-best"  # the registered model name of the shared tiny sweep


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, synth_root) -> Path:
    """The tiny grid swept once per session on a local Ray, registering its best trial's model as version 1 of
    :data:`TINY_SWEEP_MODEL` (``--register-best``), for every test that only reads what such a sweep leaves: the
    folder holding its MLflow store (``mlflow.db``) and its sweep folder (``sweeps/s``). :func:`finish` checked
    its exit and that nothing of it outlived it."""
    folder = tmp_path_factory.mktemp("tiny_sweep")
    started = Processes()
    try:
        log = folder / "sweep.log"
        finish(started.sweep(sweep_args(folder, synth_root, TINY_GRID, "--register-best", TINY_SWEEP_MODEL), log=log,
                             env=sweep_env(), cwd=folder), log)
    finally:
        started.kill_all()
    return folder

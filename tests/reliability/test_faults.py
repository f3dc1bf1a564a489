"""Faults (docs/reliability.md, "Faults"): a checkpoint write interrupted midway, the MLflow server going
away mid-sweep, and a worker node of a two-node Ray cluster dying under its trial (a sweep that joined that
existing cluster through ``--address``, which it leaves running). The killed driver and the trial that crashes
once are in tests/experiments/test_sweep.py."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import torch
import yaml

from tests.ports import free_port

from .conftest import REPO

TINY_GRID = REPO / "tests" / "experiments" / "tiny.yaml"
# the sweep driver whose trials record each attempt's process and start epoch (shared with tests/experiments)
RECORDING_STARTS = REPO / "tests" / "experiments" / "sweep_recording_starts.py"


def attempts(records: Path) -> dict[str, list[dict]]:
    """slug -> the attempts the trial recorded (:func:`sweep_recording_starts.attempts`)."""
    import importlib.util

    module = sys.modules.get("sweep_recording_starts")  # imported already by the experiments tests
    if module is None:
        spec = importlib.util.spec_from_file_location("sweep_recording_starts", RECORDING_STARTS)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclass looks its module up while it is defined
        spec.loader.exec_module(module)
    return module.attempts(records)
SWEEP_TIMEOUT_S = 900  # a hang guard, not a budget: these sweeps take 1-3 min on a loaded 2-core machine


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


# --- a worker node of a loopback Ray cluster dying under its trial -----------------------------------

RAY_SERVICE_TITLES = ("ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent")
DRIVER_MARKER = "GSF_TEST_SWEEP_DRIVER"  # set in a sweep driver's environment, inherited by what it starts


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process we can read (Linux /proc)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        table[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline.strip())
    return table


def _descendants(pid: int, table: dict[int, tuple[int, str]] | None = None) -> list[int]:
    table = table or _processes()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (ppid, _) in table.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _trial_workers(node: subprocess.Popen) -> list[int]:
    """Ray worker processes of ``node`` (a ``ray start --block``) that run an actor or task: the node offers
    one CPU, so on a trial's node that is the trial. Idle workers and Ray's own agents are left out."""
    table = _processes()
    return [p for p in _descendants(node.pid, table)
            if table[p][1].startswith("ray::") and not table[p][1].startswith(RAY_SERVICE_TITLES)]


def _kill_node(node: subprocess.Popen) -> list[int]:
    """SIGKILL a node: its ``ray start``, raylet, agents and workers (which Ray puts in their own process
    groups), found before any dies so none is orphaned. Returns the pids killed."""
    pids = [node.pid, *_descendants(node.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait(timeout=30)
    return pids


def _with_environment(variable: str, value: str) -> list[int]:
    """Every live process (but this one) whose environment sets ``variable`` to ``value``: a marker that a
    command's processes, and the processes they start, inherit."""
    needle = f"{variable}={value}".encode() + b"\0"
    found = []
    for pid in _processes():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes() + b"\0":
                found.append(pid)
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]


class LoopbackCluster:
    """A Ray cluster on 127.0.0.1 started with ``ray start``: a head offering no CPU and 1-CPU workers.
    Every process it starts carries a marker in its environment, so teardown kills exactly those (and no
    other Ray on this host), orphans included."""

    def __init__(self, group: Group, tmp_path: Path):
        self.group, self.tmp_path = group, tmp_path
        self.marker = uuid.uuid4().hex
        self.temp_dir = tempfile.mkdtemp(prefix="gsfrk", dir="/tmp")  # short: Ray's socket path limit
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # node death noticed within ~2 s instead of Ray's default ~30 s (GCS health checks)
        self.env = sweep_env(GSF_TEST_RAY_CLUSTER=self.marker, RAY_health_check_period_ms="500",
                             RAY_health_check_timeout_ms="1000", RAY_health_check_failure_threshold="3")
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, cpus: int) -> subprocess.Popen:
        ray = str(Path(sys.executable).with_name("ray"))
        argv = [ray, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
                "--num-gpus", "0", "--disable-usage-stats", *args]
        for option in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-grpc-port",
                       "--dashboard-agent-listen-port", "--metrics-export-port", "--runtime-env-agent-port"):
            argv += [option, str(free_port())]
        log = self.tmp_path / f"ray-{name}.log"
        node = self.group.start(argv, log=log, cwd=self.tmp_path, env=self.env)
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(errors="replace"):
            assert node.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        self.nodes[name] = node
        return node

    def start_head(self) -> None:
        self.start("head", "--head", "--port", str(self.port), "--include-dashboard", "false",
                   "--temp-dir", self.temp_dir, cpus=0)

    def marked(self) -> list[int]:
        return _with_environment("GSF_TEST_RAY_CLUSTER", self.marker)

    def stop(self) -> None:
        self.group.kill_all()
        for _ in range(20):  # whatever outlived its process group (Ray workers have their own)
            left = self.marked()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path):
    started = LoopbackCluster(Group(), tmp_path)
    yield started
    started.stop()


@pytest.mark.slow
def test_a_worker_node_killed_under_its_trial_resumes_the_trial_on_the_other_node_from_its_checkpoint(
        tmp_path, tiny_root, cluster):
    epochs = 10
    cluster.start_head()
    workers = {name: cluster.start(name, "--address", cluster.address, cpus=1) for name in ("worker1", "worker2")}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log = tmp_path / "sweep.log"
    records = tmp_path / "records"  # each attempt's process and start epoch, written by the trial itself
    argv = gsf_sweep(one_trial_grid(tmp_path, epochs), tiny_root, tmp_path, uri, "--address", cluster.address)
    argv[1:4] = [str(RECORDING_STARTS), str(records)]  # python sweep_recording_starts.py RECORDS <sweep args>
    driver = uuid.uuid4().hex  # the driver's marker: what it starts itself carries it, the cluster's workers do not
    sweep = cluster.group.start(argv, log=log, cwd=tmp_path, env={**cluster.env, DRIVER_MARKER: driver})

    def trial_node() -> str | None:
        running = [name for name, node in workers.items() if _trial_workers(node)]
        return running[0] if len(running) == 1 else None

    wait_for(trial_node, "trial started on a worker node", sweep, log)
    victim = trial_node()
    (survivor,) = set(workers) - {victim}
    (trial_pid,) = _trial_workers(workers[victim])
    wait_for(lambda: db_epochs(tmp_path / "mlflow.db"), "epoch logged", sweep, log)
    killed = _kill_node(workers[victim])  # the node dies under its trial, right after its first checkpoint
    assert trial_pid in killed
    logged_at_kill = db_epochs(tmp_path / "mlflow.db")
    assert len(logged_at_kill) < epochs, "the trial finished before its node was killed: nothing was tested"

    retried_on = set()
    deadline = time.monotonic() + SWEEP_TIMEOUT_S
    while sweep.poll() is None:  # the retry: which processes of the surviving node run it
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        retried_on.update(_trial_workers(workers[survivor]))
        time.sleep(0.1)
    assert sweep.returncode == 0, log.read_text(errors="replace")[-6000:]

    # The sweep joined the existing cluster through --address and leaves it as it found it: the driver's process
    # group and whatever the driver started are gone, the trial's worker on the surviving node ended with it,
    # and the cluster runs on.
    def sweep_left() -> dict[str, object]:
        return {"process group": _group_alive(sweep.pid), "started": _with_environment(DRIVER_MARKER, driver),
                "trial workers": retried_on & set(_trial_workers(workers[survivor]))}

    deadline = time.monotonic() + 60  # a hang guard: these end within seconds of the driver
    while any(sweep_left().values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(sweep_left().values()), f"outlived the sweep: {sweep_left()}"
    assert cluster.nodes["head"].poll() is None and workers[survivor].poll() is None, "the cluster went down"
    # Tune's first status (before the kill): both worker nodes' CPUs were offered to the sweep (the head has none)
    usage = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Logical resource")]
    assert usage and "/2 CPUs" in usage[0], usage[:1]

    client, parents, children = trial_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 1 and children[0].info.status == "FINISHED"  # the retry continued the one run
    run_id = children[0].info.run_id
    for key in ("epoch", "train_loss", "val_top1"):  # every epoch exactly once, no gap
        assert sorted(m.step for m in client.get_metric_history(run_id, key)) == list(range(1, epochs + 1)), key

    # the trial's own record of its attempts: the first ran on the victim from epoch 1 and was cut mid-trial;
    # the retry ran on the survivor from a checkpoint (not epoch 1 again), at most one epoch past what MLflow
    # had at the kill (an epoch logged but not yet checkpointed is trained again, and logged once)
    (trial,) = attempts(records).values()
    first, retry = trial
    assert first["pid"] == trial_pid and first["start_epoch"] == 1, (first, retry)
    assert first["epochs"] == list(range(1, len(first["epochs"]) + 1)) and len(first["epochs"]) < epochs
    assert retry["pid"] in retried_on, (retry, retried_on)
    assert 2 <= retry["start_epoch"] <= max(logged_at_kill) + 1, (retry, logged_at_kill)
    assert retry["start_epoch"] <= len(first["epochs"]) + 1, (first, retry)
    assert retry["epochs"] == list(range(retry["start_epoch"], epochs + 1)), retry

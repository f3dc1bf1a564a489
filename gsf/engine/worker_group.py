"""One data-parallel run as a **Ray Train** worker group (``ray.train.torch.TorchTrainer``): Ray reserves each
rank's CPUs/GPUs, places the ranks on whatever nodes have room (``pack`` or ``spread``), sets up the torch
process group (gloo on CPU, nccl on GPUs) and restarts the whole group from the last reported checkpoint when
a worker or its node dies (``max_failures``). Every rank runs :func:`gsf.engine.train` unchanged; the engine
finds the process group and splits the run as :mod:`gsf.engine.distributed` describes.

Two callers: the sweep runner (a data-parallel trial launches a worker group from its Tune trial, the
metrics reaching Tune through Ray's ``TuneReportCallback``) and ``gsf train --nproc N`` (:func:`fit_local`, a
local Ray on this machine). The other way to start the ranks is torchrun (:mod:`experiments.torchrun_train`).
No rank is started by this package's own code.

Checkpoints: with ``report_checkpoints``, rank 0 reports its run folder (``checkpoints/last.pt`` and the
rest) as a Ray Train checkpoint after every epoch, persisted to the run's storage (any URI Ray accepts:
a shared folder, ``file://``, ``s3://``, ``gs://``). A restarted group (or a new one with the same
``name`` and ``storage_path``, after the caller itself died) gets it back from ``ray.train.get_checkpoint()``:
every rank copies it into its own folder and resumes the engine exactly.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsf.engine import distributed
from gsf.engine.callbacks import Callback
from gsf.errors import GSFConfigError, RankFailedError

PLACEMENTS = ("pack", "spread")

# Callbacks of one rank, made in that rank's process: ``(rank, run_folder) -> callbacks`` (must pickle).
RankCallbacks = Callable[[int, Path], Sequence[Callback]]


@dataclass(frozen=True)
class WorkerGroup:
    """The Ray Train workers of one run: how many, what each reserves, how they are placed and how many
    times the group is restarted after a worker (or node) failure."""

    num_workers: int
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    placement: str = "pack"
    max_failures: int = 0

    def __post_init__(self):
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 1:
            raise GSFConfigError(f"num_workers={self.num_workers!r} must be an integer >= 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise GSFConfigError(f"cpus_per_worker={self.cpus_per_worker} must be > 0 and gpus_per_worker="
                                 f"{self.gpus_per_worker} >= 0")
        if self.placement not in PLACEMENTS:
            raise GSFConfigError(f"placement={self.placement!r} is not one of {list(PLACEMENTS)}")

    @property
    def device_type(self) -> str:
        return "cuda" if self.gpus_per_worker > 0 else "cpu"

    def scaling_config(self):
        from ray.train import ScalingConfig

        resources = {"CPU": float(self.cpus_per_worker)}
        if self.gpus_per_worker:
            resources["GPU"] = float(self.gpus_per_worker)
        return ScalingConfig(num_workers=self.num_workers, use_gpu=self.gpus_per_worker > 0,
                             resources_per_worker=resources, placement_strategy=self.placement.upper())


class ReportToRayTrain(Callback):
    """Engine callback of every rank: ``ray.train.report`` after each epoch (a barrier over the ranks), rank 0
    with its run folder as the checkpoint when ``with_checkpoint``."""

    every_rank = True

    def __init__(self, *, rank: int, run_dir: Path, with_checkpoint: bool):
        self.rank, self.run_dir, self.with_checkpoint = rank, Path(run_dir), with_checkpoint

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint_path: Path) -> None:
        import ray.train

        checkpoint = None
        if self.with_checkpoint and self.rank == 0:
            checkpoint = ray.train.Checkpoint.from_directory(str(self.run_dir))
        # Synchronous: the folder is copied to storage before this returns (nothing writes to it meanwhile).
        ray.train.report(dict(metrics), checkpoint=checkpoint)


def local_ray_on_loopback() -> None:
    """Make the local Ray this process is about to start register 127.0.0.1 as its node's address, so its
    servers and Ray Train's process group (which meets at the node's address) listen on loopback: Ray 2.60
    turns ``_node_ip_address="127.0.0.1"`` into the outward interface unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``
    is 0. Ray reads that variable once, into ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``, when it is first
    imported, and looks the constant up at each address resolution; so where ray was imported already (a test
    session, a notebook) the constant is set too. The variable also reaches the processes Ray starts."""
    import os
    import sys

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def local_workers_pythonpath() -> str:
    """``PYTHONPATH`` for the workers of a local Ray this process starts (fresh interpreters that import
    ``gsf`` and ``experiments``): this process's own, after the folder holding the packages when that is
    a source checkout, whose packages the workers would not find otherwise. An installed package (the
    folder is one of the interpreter's site-packages) adds nothing: the workers import it as this process
    does, and putting site-packages ahead of the standard library would change what they import."""
    import os
    import site

    root = Path(__file__).resolve().parents[2]  # holds gsf/ (and experiments/, analysis/ beside it)
    installed = {Path(folder).resolve() for folder in [*site.getsitepackages(), site.getusersitepackages()]}
    parts = ([] if root in installed else [str(root)]) + [os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(part for part in parts if part)


def _copy_tree(src: Path, dst: Path) -> None:
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _rank_folder(run_dir: Path, rank: int) -> Path:
    """Rank 0 trains in ``run_dir`` (on its own node); every other rank in a temporary folder of its node,
    which holds nothing but the checkpoint it resumes from (only rank 0 writes)."""
    if rank == 0:
        return run_dir
    return Path(tempfile.mkdtemp(prefix=f"gsf-rank{rank}-"))


def _worker_loop(loop_config: dict[str, Any]) -> None:
    """Body of every Ray Train worker: restore the run folder from the last checkpoint, then train."""
    import ray.train
    import torch

    from gsf.engine.config import TrainConfig
    from gsf.engine.trainer import train

    rank = ray.train.get_context().get_world_rank()
    if loop_config["device_type"] == "cuda":
        import ray.train.torch

        torch.cuda.set_device(ray.train.torch.get_device())
    run_dir = Path(loop_config["run_dir"])
    folder = _rank_folder(run_dir, rank)
    checkpoint = ray.train.get_checkpoint()
    resume = False
    if checkpoint is not None:  # a restarted group (or caller): the checkpoint in storage is the truth
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with checkpoint.as_directory() as restored:
            _copy_tree(Path(restored), folder)
        resume = (folder / "checkpoints" / "last.pt").is_file()
    elif loop_config["clear_run_dir"] and folder.exists():  # what an attempt killed before its first report left
        shutil.rmtree(folder)
    elif loop_config["resume"]:  # gsf train --nproc N --resume: the run folder is on this machine
        resume = True
        if rank:
            (folder / "checkpoints").mkdir(parents=True)
            shutil.copy2(run_dir / "checkpoints" / "last.pt", folder / "checkpoints" / "last.pt")
    make = loop_config["rank_callbacks"]
    if make is not None:  # they make the report every rank must make
        callbacks = list(make(rank, folder))
    else:
        callbacks = [ReportToRayTrain(rank=rank, run_dir=folder, with_checkpoint=loop_config["report_checkpoints"])]
    config = TrainConfig.from_dict(loop_config["config"], source=f"Ray Train worker {rank}")
    try:
        train(config, folder, resume=resume, callbacks=callbacks)
    finally:
        if rank:
            shutil.rmtree(folder, ignore_errors=True)


def fit_worker_group(config_dict: dict, run_dir: str | Path, group: WorkerGroup, *, storage_path: str, name: str,
                     resume: bool = False, clear_run_dir: bool = False, report_checkpoints: bool = True,
                     rank_callbacks: RankCallbacks | None = None, run_callbacks: Sequence[Any] = (),
                     timeout_s: float = distributed.DEFAULT_TIMEOUT_S):
    """Train ``config_dict`` (a :class:`~gsf.engine.TrainConfig` as a dict) on the Ray Train worker group
    ``group``, rank 0 in ``run_dir`` on its node; returns Ray Train's ``Result`` (its ``metrics``: rank 0's
    last report). Needs a connected Ray (``ray.init``).

    Each epoch every rank calls ``ray.train.report`` (:class:`ReportToRayTrain`, rank 0 with its folder as
    the checkpoint unless ``report_checkpoints`` is false). ``rank_callbacks`` replaces those callbacks: it
    makes each rank's engine callbacks in the rank's process and must include that report in every rank
    (the sweep's rank 0 reports and logs to MLflow). ``run_callbacks`` are Ray Train callbacks (e.g. Tune's
    ``TuneReportCallback``, which hands rank 0's reports to the enclosing Tune trial). ``storage_path`` and
    ``name`` locate the run's checkpoints: a group started again with the same pair resumes from them.
    Without a checkpoint, ``resume`` continues the engine's own in ``run_dir`` (this machine), and
    ``clear_run_dir`` empties ``run_dir`` first. ``timeout_s`` bounds every collective. A run that failed
    for good raises :class:`gsf.errors.RankFailedError` with Ray Train's error.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, TrainingFailedError
    from ray.train.torch import TorchConfig, TorchTrainer

    config = dict(config_dict)
    config["runtime"] = {**config["runtime"], "world_size": group.num_workers}
    if group.device_type == "cuda":  # each worker sees its own GPU(s); the run is on CUDA
        config["runtime"]["device"] = "cuda"
    loop_config = {"config": config, "run_dir": str(run_dir), "resume": resume, "clear_run_dir": clear_run_dir,
                   "device_type": group.device_type, "report_checkpoints": report_checkpoints,
                   "rank_callbacks": rank_callbacks}
    backend = distributed.backend_for(group.device_type)
    trainer = TorchTrainer(
        _worker_loop, train_loop_config=loop_config, scaling_config=group.scaling_config(),
        torch_config=TorchConfig(backend=backend, timeout_s=int(timeout_s)),
        run_config=RunConfig(name=name, storage_path=str(storage_path),
                             failure_config=FailureConfig(max_failures=group.max_failures),
                             # two: the newest may still be registering when a driver dies
                             checkpoint_config=CheckpointConfig(num_to_keep=2), callbacks=list(run_callbacks)))
    try:
        return trainer.fit()
    except TrainingFailedError as err:
        raise RankFailedError(f"the Ray Train run {name!r} ({group.num_workers} workers) failed: {err}", rank=-1,
                              error_type=type(err).__name__) from err


def fit_local(config_dict: dict, run_dir: str | Path, *, num_workers: int, resume: bool = False,
              use_gpus: bool = False, timeout_s: float = distributed.DEFAULT_TIMEOUT_S) -> dict[str, float]:
    """``gsf train --nproc N``: the run on N Ray Train workers of a local Ray on this machine (127.0.0.1, one
    CPU, or one GPU with ``use_gpus``, each); rank 0 writes ``run_dir`` as a single-process run does (the
    engine's own checkpoints; ``resume`` continues them). Returns rank 0's ``result.json``."""
    import json
    import os

    local_ray_on_loopback()
    import ray

    run_dir = Path(run_dir).resolve()
    group = WorkerGroup(num_workers, gpus_per_worker=1.0 if use_gpus else 0.0)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    temp = Path(tempfile.mkdtemp(prefix="gsfray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    try:
        if started:
            path = local_workers_pythonpath()
            ray.init(num_cpus=num_workers, num_gpus=num_workers if use_gpus else 0, include_dashboard=False,
                     _node_ip_address="127.0.0.1", _temp_dir=str(temp / "ray"), log_to_driver=True,
                     runtime_env={"env_vars": {"PYTHONPATH": path}} if path else None)
        fit_worker_group(config_dict, run_dir, group, storage_path=str(temp / "storage"), name="run", resume=resume,
                         report_checkpoints=False, timeout_s=timeout_s)
    finally:
        if started:
            ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    return json.loads((run_dir / "result.json").read_text(encoding="utf-8"))

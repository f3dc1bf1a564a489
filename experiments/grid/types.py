"""The values of the grid pipeline (:mod:`experiments.grid`): a loaded grid, its trials, resolved trials."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gsf.errors import GSFConfigError

SEED_KEY = "runtime.seed"


def grid_error(path: Path, where: str, message: str) -> GSFConfigError:
    """The error of a grid file: ``grid PATH: FIELD: message``."""
    return GSFConfigError(f"grid {path}: {where}: {message}")


def same_value(a: object, b: object) -> bool:
    """Whether two knob values are equal as grid values (``1`` and ``1.0`` differ, lists compare by value)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# What a data-parallel trial's own process reserves: it only waits on its Ray Train worker group (the workers
# reserve the CPUs/GPUs that train), so it takes a sliver of a CPU, never a whole one a worker needs.
DRIVER_CPUS = 0.01


@dataclass(frozen=True)
class Resources:
    """What one trial asks Ray for. Without data parallelism, one process: ``cpus_per_trial``/``gpus_per_trial``.
    With ``data_parallel='ddp'``, a Ray Train worker group (:mod:`gsf.engine.worker_group`) of
    ``workers_per_trial`` ranks, each reserving ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs (1: nccl,
    0: gloo on CPU), placed ``pack`` or ``spread`` over the nodes; the trial's own process then reserves
    :data:`DRIVER_CPUS` (``cpus_per_trial``) and no GPU."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    data_parallel: str = "none"
    max_concurrent: int | None = None
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    placement: str = "pack"


@dataclass(frozen=True)
class TuneSettings:
    """Early stopping and search; everything is off unless the grid asks.

    ``scheduler``: ``{type: asha, grace_period, reduction_factor, max_t}`` (``max_t`` None: the trial's
    ``optim.epochs``); ``search``: ``{algorithm, num_samples, space}``, ``num_samples`` sampled trials per grid
    point with either algorithm.
    """

    metric: str = "val_top1"
    mode: str = "max"
    max_failures: int = 2
    scheduler: dict | None = None
    search: dict | None = None

    @property
    def samples_per_point(self) -> int:
        return self.search["num_samples"] if self.search else 1


@dataclass(frozen=True)
class Grid:
    """A loaded, shape-checked grid file."""

    path: Path
    study: str
    table: str
    description: str
    base_config: Path
    set: dict[str, Any]
    axes: dict[str, list]
    include: list[dict[str, Any]]
    seeds: list[int]
    exclude: list[dict[str, Any]]
    baseline: dict[str, Any]
    resources: Resources = field(default_factory=Resources)
    tune: TuneSettings = field(default_factory=TuneSettings)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def axis_keys(self) -> list[str]:
        """Every key a trial varies (product axes, then keys only ``include`` sets), without the seed."""
        keys = list(self.axes)
        for entry in self.include:
            keys += [k for k in entry if k not in keys]
        return [k for k in keys if k != SEED_KEY]

    @property
    def search_keys(self) -> list[str]:
        return list((self.tune.search or {}).get("space", {}))


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its knobs (``assignment``), its seed and every override it applies."""

    index: int
    assignment: dict[str, Any]
    seed: int
    overrides: dict[str, Any]
    slug: str


@dataclass(frozen=True)
class ResolvedTrial:
    """A trial with its resolved configuration (``config_dict``: nested plain values) and hash."""

    trial: Trial
    config_dict: dict[str, dict[str, Any]]
    config_hash: str

    @property
    def slug(self) -> str:
        return self.trial.slug

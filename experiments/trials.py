"""Step 5 of a sweep: the resolved trials of a grid planned for running (:func:`plan_trials`).

A :class:`TrialSpec` is what the driver hands each Tune trial: the resolved configuration with an absolute,
existing ``data.root`` and the processes per trial in ``runtime.world_size``, its hash, its axis values and its
per-view complexity. A trial with sampled values (``tune.search``) is its grid point's spec with the values
applied (:func:`with_sampled`), computed the same way by the driver and the trainable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.grid.complexity import complexity_of
from experiments.grid.expand import format_value, slug_names
from experiments.grid.resolve import apply_overrides, axis_tags, config_hash
from experiments.grid.types import Grid, ResolvedTrial
from gsf.errors import GSFConfigError


@dataclass(frozen=True)
class TrialSpec:
    """One trial as the sweep runs it (``config``: nested plain values, as ``TrainConfig.to_dict``)."""

    slug: str
    seed: int
    config: dict[str, dict[str, Any]]
    config_hash: str
    axes: dict[str, Any]
    complexity: dict[str, float]


def processes_per_trial(grid: Grid, *, gpus_per_trial: float | None = None) -> int:
    """Processes that train each trial: ``resources.data_parallel: ddp`` runs ``workers_per_trial`` Ray Train
    workers; else 1. ``--gpus-per-trial`` applies to single-process trials only."""
    resources = grid.resources
    if resources.data_parallel != "ddp":
        return 1
    if gpus_per_trial is not None:
        raise GSFConfigError(f"--gpus-per-trial {gpus_per_trial}: grid {grid.path} trains each trial with DDP on "
                             "Ray Train workers; set resources.gpus_per_worker (0 or 1) and workers_per_trial instead")
    return resources.workers_per_trial


def with_world_size(grid: Grid, spec: TrialSpec, world_size: int) -> TrialSpec:
    """``spec`` trained by ``world_size`` processes, written into its ``runtime.world_size`` (so its config, hash
    and MLflow params say how it was trained; the trial runs that many Ray Train workers, rank 0 reporting to
    Tune and MLflow)."""
    asked = spec.config["runtime"].get("world_size", 1)
    if asked == world_size:
        return spec
    if asked != 1:
        raise GSFConfigError(f"grid {grid.path}, trial {spec.slug}: runtime.world_size={asked} but the grid's "
                             f"resources give {world_size} process(es) per trial; set resources.data_parallel: "
                             "ddp with workers_per_trial instead")
    config = {**spec.config, "runtime": {**spec.config["runtime"], "world_size": world_size}}
    return dataclasses.replace(spec, config=config, config_hash=config_hash(config))


def _absolute_root(grid: Grid, item: ResolvedTrial) -> dict[str, dict[str, Any]]:
    config = {section: dict(values) for section, values in item.config_dict.items()}
    root = config["data"].get("root")
    if root and not Path(root).is_absolute():
        config["data"]["root"] = str(Path(root).resolve())
    if not Path(config["data"]["root"]).is_dir():
        raise GSFConfigError(f"grid {grid.path}, trial {item.slug}: data.root={config['data']['root']!r} "
                             "is not an existing folder (pass --set data.root=PATH)")
    return config


def plan_trials(grid: Grid, resolved: list[ResolvedTrial], *,
                gpus_per_trial: float | None = None) -> dict[str, TrialSpec]:
    """slug -> :class:`TrialSpec` of every resolved trial: data must exist; complexity measured (each distinct
    model once); processes per trial from the grid's resources (:func:`processes_per_trial`)."""
    world_size = processes_per_trial(grid, gpus_per_trial=gpus_per_trial)
    cache: dict = {}
    specs = {}
    for item in resolved:
        config = _absolute_root(grid, item)
        spec = TrialSpec(slug=item.slug, seed=item.trial.seed, config=config, config_hash=config_hash(config),
                         axes=axis_tags(grid, config), complexity=complexity_of(config, cache=cache).as_dict())
        specs[item.slug] = with_world_size(grid, spec, world_size)
    return specs


def with_sampled(spec: TrialSpec, sampled: Mapping[str, Any]) -> TrialSpec:
    """The trial Tune scheduled: its grid point's ``spec`` with the ``sampled`` values of ``tune.search``
    applied (config, hash, slug and axes); ``spec`` itself when nothing was sampled."""
    if not sampled:
        return spec
    resolved = apply_overrides(spec.config, sampled, source=f"trial {spec.slug} sampled {dict(sampled)}",
                               check=False)
    config = resolved.to_dict()
    names = slug_names(sampled)
    slug = spec.slug + "," + ",".join(f"{names[k]}={format_value(v)}" for k, v in sampled.items())
    return dataclasses.replace(spec, slug=slug, config=config, config_hash=config_hash(config),
                               axes={**spec.axes, **sampled})

"""Step 4 of the grid pipeline: each trial's configuration resolved and checked by the engine, and hashed
(:mod:`experiments.grid`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from experiments.grid.types import Grid, ResolvedTrial, Trial, grid_error
from gsf.errors import GSFConfigError
from gsf.mlflow_schema import VALIDATION_PREFIXES

# Keys that change how a run executes or reports, not the computation it defines: left out of the config hash.
# The thread count and torch.compile change the order of float operations, so a trial's numbers can differ in
# the last bits between two settings (and a seed's trajectory with them; docs/demo-recipe.md), never by design.
NON_AFFECTING_KEYS = ("runtime.progress", "runtime.num_threads", "runtime.compile")


def canonical_json(config_dict: Mapping[str, Mapping[str, Any]]) -> str:
    """The resolved configuration as canonical JSON, without the keys in :data:`NON_AFFECTING_KEYS`."""
    flat = {f"{section}.{key}": value for section, values in config_dict.items() for key, value in values.items()}
    for key in NON_AFFECTING_KEYS:
        flat.pop(key, None)
    return json.dumps(flat, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config_dict: Mapping[str, Mapping[str, Any]]) -> str:
    """sha256 (hex) of :func:`canonical_json`: the identity of a trial's configuration."""
    return hashlib.sha256(canonical_json(config_dict).encode("utf-8")).hexdigest()


def apply_overrides(base: dict, overrides: Mapping[str, Any], *, source: str, check: bool = True,
                    need_data: bool = False):
    """``base`` (a nested config dict) with ``overrides`` applied and checked by the engine; returns the
    :class:`gsf.engine.config.TrainConfig`."""
    from gsf.engine.config import TrainConfig, check_config, set_value

    config = TrainConfig.from_dict(base, source=source)
    for key, value in overrides.items():
        set_value(config, key, value, source=source)
    if check:
        # The driver plans trials that run elsewhere (GPU nodes): device and precision are checked by the
        # engine where each trial runs, everything else here.
        probe = config.copy({"runtime.device": "auto", "runtime.precision": "auto"}, source=source)
        try:
            check_config(probe, need_data=need_data)
        except GSFConfigError as err:
            raise GSFConfigError(f"{source}: {err}") from err
    return config


def base_config_dict(grid: Grid, extra: Mapping[str, Any] | None = None) -> dict:
    """The grid's base configuration file as a nested dict, with ``extra`` (``--set``) overrides applied."""
    from gsf.engine.config import load_config, set_value

    config = load_config(grid.base_config, check=False)
    for key, value in (extra or {}).items():
        set_value(config, key, value, source=f"--set {key}={value!r}")
    return config.to_dict()


def resolve(grid: Grid, trials: list[Trial], *, extra: Mapping[str, Any] | None = None,
            need_data: bool = False) -> list[ResolvedTrial]:
    """Resolve and check every trial of ``grid`` (its :func:`~experiments.grid.expand.expand`; ``extra``:
    ``--set`` overrides applied after the grid's).

    Raises GSFConfigError naming the grid file, the trial and the field at the first invalid trial, and when
    two trials resolve to the same configuration (their MLflow runs would be indistinguishable).
    """
    base = base_config_dict(grid)
    resolved, by_hash = [], {}
    for trial in trials:
        overrides = {**trial.overrides, **(extra or {})}
        config = apply_overrides(base, overrides, source=f"grid {grid.path}, trial {trial.slug}", need_data=need_data)
        config_dict = config.to_dict()
        digest = config_hash(config_dict)
        if digest in by_hash:
            raise GSFConfigError(f"grid {grid.path}: trials {by_hash[digest]} and {trial.slug} resolve to the same "
                                 "configuration; remove one (an include entry repeating a product point?)")
        by_hash[digest] = trial.slug
        resolved.append(ResolvedTrial(trial=trial, config_dict=config_dict, config_hash=digest))
    check_tune(grid, resolved, base=base, extra=extra)
    return resolved


def _bound_values(kind: str, args: list) -> list:
    """The values of a distribution worth checking against the engine: its bounds (randint's high is exclusive)
    or every choice."""
    return list(args) if kind == "choice" else [args[0], args[1] - 1 if kind == "randint" else args[1]]


def check_tune(grid: Grid, resolved: list[ResolvedTrial], *, base: dict | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
    """The ``tune`` rules that need each trial's resolved configuration: ASHA's rungs fit in ``optim.epochs``, a
    validation metric is measured at every report, and every sampled key accepts its bounds (or choices)."""
    tune = grid.tune
    if not (tune.scheduler or tune.search):
        return
    # Random search samples once per trial and never reads the metric; ASHA and Optuna read every report.
    reads_metric = bool(tune.scheduler) or (tune.search or {}).get("algorithm") == "optuna"
    for item in resolved:
        optim, runtime = item.config_dict["optim"], item.config_dict["runtime"]
        trial = f"trial {item.slug}"
        if tune.scheduler:
            grace, max_t = tune.scheduler["grace_period"], tune.scheduler["max_t"]
            if grace >= optim["epochs"]:
                raise grid_error(grid.path, "tune.scheduler.grace_period",
                             f"{grace} is not below optim.epochs={optim['epochs']} of {trial}: ASHA never stops a "
                             "trial at its last epoch, so it could stop none")
            if max_t is not None and max_t > optim["epochs"]:
                raise grid_error(grid.path, "tune.scheduler.max_t",
                             f"{max_t} exceeds optim.epochs={optim['epochs']} of {trial}: its rungs are never reached")
        if reads_metric and tune.metric.startswith(VALIDATION_PREFIXES) and runtime["eval_every"] != 1:
            raise grid_error(grid.path, "tune.metric",
                         f"{tune.metric} is measured every runtime.eval_every={runtime['eval_every']} epochs in "
                         f"{trial}, but ASHA and Optuna read it at every epoch: set runtime.eval_every: 1 (or use a "
                         "train_* metric)")
    if not tune.search:
        return
    base = base if base is not None else base_config_dict(grid)
    for key, dist in tune.search["space"].items():
        where = f"tune.search.space.{key}"
        if key in (extra or {}):
            raise grid_error(grid.path, where, f"is sampled, but --set {key}={extra[key]!r} fixes it")
        kind, args = next(iter(dist.items()))
        for item in resolved:
            for value in _bound_values(kind, args):
                overrides = {**item.trial.overrides, **(extra or {}), key: value}
                try:
                    apply_overrides(base, overrides, source=f"grid {grid.path}, trial {item.slug}, {where}={value!r}")
                except GSFConfigError as err:
                    raise GSFConfigError(f"grid {grid.path}: {where}: {kind} {args!r} holds a value the engine "
                                         f"rejects: {err}") from err



def axis_tags(grid: Grid, config_dict: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{dotted key: value}`` of every axis of the grid, read from the trial's resolved configuration (so
    trials that do not set an ``include``-only key carry its resolved default)."""
    out = {}
    for key in [*grid.axis_keys, *grid.search_keys]:
        section, name = key.split(".", 1)
        out[key] = config_dict.get(section, {}).get(name)
    return out


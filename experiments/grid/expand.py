"""Step 3 of the grid pipeline: a validated grid expanded into its trials, deterministically and without
the engine (:mod:`experiments.grid`); how many Tune trials that makes and what a sweep of them will run."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from experiments.grid.types import SEED_KEY, Grid, Trial, grid_error, same_value
from gsf.errors import GSFConfigError

# Short slug names of common knobs (any other key is named by its last component).
SLUG_NAMES = {"model.channel_fraction": "fraction", "data.num_frames": "frames", "model.last_n_blocks": "last_n",
              "data.input_size": "size", "runtime.seed": "seed"}


def format_value(value: object) -> str:
    """A knob value as it appears in a slug: ``0.25``, ``true``, ``null``, ``3-4`` for a list."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value) or "empty"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", str(value))


def slug_names(keys: Iterable[str]) -> dict[str, str]:
    """Short names of dotted keys: the known aliases, else the last component, else the whole key where
    two keys would share a short name."""
    keys = list(keys)
    short = {k: SLUG_NAMES.get(k, k.rsplit(".", 1)[-1]) for k in keys}
    counts: dict[str, int] = {}
    for name in short.values():
        counts[name] = counts.get(name, 0) + 1
    return {k: (name if counts[name] == 1 else k) for k, name in short.items()}


def make_slug(assignment: Mapping[str, Any], seed: int | None, names: Mapping[str, str]) -> str:
    parts = [f"{names.get(k, k)}={format_value(v)}" for k, v in assignment.items()]
    if seed is not None:
        parts.append(f"seed={seed}")
    return ",".join(parts)


def _excluded(assignment: Mapping[str, Any], seed: int, rules: list[dict]) -> bool:
    for rule in rules:
        if all((seed == v) if k in (SEED_KEY, "seed") else same_value(assignment.get(k), v) for k, v in rule.items()):
            return True
    return False


def expand(grid: Grid) -> list[Trial]:
    """The grid's trials, deterministically: the product of the axes in file order with the seeds innermost,
    minus ``exclude``, then every ``include`` entry with each seed; a repeated assignment is kept once. Raises
    when nothing is left or the grid's ``baseline`` matches no trial."""
    names = slug_names(grid.axis_keys)
    points: list[dict[str, Any]] = []
    if grid.axes:
        for values in itertools.product(*grid.axes.values()):
            points.append(dict(zip(grid.axes, values)))
    trials, seen = [], set()
    for source, entries in (("product", points), ("include", grid.include)):
        for assignment in entries:
            for seed in grid.seeds:
                if source == "product" and _excluded(assignment, seed, grid.exclude):
                    continue
                overrides = {**grid.set, **assignment, SEED_KEY: seed}
                key = json.dumps(overrides, sort_keys=True)
                if key in seen:
                    continue
                seen.add(key)
                trials.append(Trial(index=len(trials), assignment=dict(assignment), seed=seed, overrides=overrides,
                                    slug=make_slug(assignment, seed, names)))
    if not trials:
        raise GSFConfigError(f"grid {grid.path}: exclude removes every trial")
    baseline = grid.baseline
    if baseline and not any(all(same_value(t.assignment.get(k), v) for k, v in baseline.items()) for t in trials):
        raise grid_error(grid.path, "baseline", f"{baseline!r} matches no trial of the grid")
    return trials



def planned_trials(grid: Grid, points: int) -> int:
    """How many Tune trials a sweep of ``points`` grid points runs: ``num_samples`` per point when searching."""
    return points * grid.tune.samples_per_point


def describe_tune(grid: Grid, points: int) -> list[str]:
    """Lines saying what a sweep will run: the trial count (grid points x samples) and the scheduler."""
    tune = grid.tune
    lines = []
    if tune.search:
        search = tune.search
        space = ", ".join(f"{key} ~ {kind}{args}" for key, dist in search["space"].items()
                          for kind, args in dist.items())
        samples = search["num_samples"]
        lines.append(f"{points} grid point{'s' * (points != 1)} x {samples} sample{'s' * (samples != 1)} = "
                     f"{planned_trials(grid, points)} trials ({search['algorithm']} search over {space}; values are "
                     "drawn when the sweep runs: the rows below are grid points, at the base value of each sampled "
                     "key)")
    if tune.scheduler:
        settings = tune.scheduler
        budget = f"max_t {settings['max_t']}" if settings["max_t"] else "max_t = optim.epochs"
        lines.append(f"ASHA early stopping on {tune.metric} ({tune.mode}): grace_period {settings['grace_period']}, "
                     f"reduction_factor {settings['reduction_factor']}, {budget}; a trial may stop before its last "
                     "epoch")
    return lines


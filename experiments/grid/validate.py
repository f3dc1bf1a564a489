"""Step 2 of the grid pipeline: the rules across a loaded grid's sections (:mod:`experiments.grid`)."""

from __future__ import annotations

from pathlib import Path

from experiments.grid.types import SEED_KEY, Grid, grid_error, same_value


def validate_grid(grid: Grid) -> Grid:
    """``grid`` once the rules across its sections hold: an axis is not also fixed in ``set``, every
    ``exclude`` entry names axis values and seeds of the grid, every ``baseline`` key is an axis, and a
    sampled key is neither an axis nor fixed. Errors name the file and the field."""
    path = grid.path
    for key in grid.axes:
        if key in grid.set:
            raise grid_error(path, f"axes.{key}", "is also fixed in 'set'; keep it in one place")
    for i, entry in enumerate(grid.exclude):
        for key, value in entry.items():
            _check_axis_value(path, f"exclude[{i}]", grid.axes, grid.seeds, key, value)
    axis_keys = set(grid.axes) | {k for e in grid.include for k in e}
    for key in grid.baseline:
        if key not in axis_keys:
            raise grid_error(path, f"baseline.{key}", f"is not an axis of this grid (axes: {sorted(axis_keys)})")
    for key in grid.search_keys:
        if key in axis_keys or key in grid.set:
            raise grid_error(path, f"tune.search.space.{key}", "is also a grid axis or fixed in 'set'")
    return grid


def _check_axis_value(path: Path, where: str, axes: dict, seeds: list, key: str, value: object) -> None:
    if key in (SEED_KEY, "seed"):
        if value not in seeds:
            raise grid_error(path, f"{where}.{key}", f"seed {value!r} is not in seeds {seeds}")
        return
    if key not in axes:
        raise grid_error(path, f"{where}.{key}", f"is not an axis of this grid (axes: {list(axes)})")
    if not any(same_value(value, v) for v in axes[key]):
        raise grid_error(path, f"{where}.{key}", f"value {value!r} is not one of the axis values {axes[key]!r}")


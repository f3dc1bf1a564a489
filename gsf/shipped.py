"""The grids and base configurations shipped with the suite: ``experiments/grids/*.yaml`` and
``experiments/configs/*.yaml``, package data of ``experiments`` (pyproject ``[tool.setuptools.package-data]``).

One wheel installs ``gsf``, ``experiments`` and ``analysis`` side by side, as they sit in a checkout, so the
folders are found beside this package's own, in a checkout and an installed package alike, and never through a
path relative to the working folder. The folders are only read: nothing of ``experiments`` is imported (the
library stays below the sweep layer). A grid names its base configuration relative to itself
(``base_config: ../configs/x.yaml``): the two folders keep their places side by side when installed.
"""

from __future__ import annotations

from pathlib import Path

from gsf.errors import GSFConfigError

_PACKAGES = Path(__file__).resolve().parents[1]  # holds gsf/, experiments/ and analysis/
GRID_SUFFIX = ".yaml"


def grids_dir() -> Path:
    """The folder of the shipped grids (one per paper table, and the demo's)."""
    return _PACKAGES / "experiments" / "grids"


def configs_dir() -> Path:
    """The folder of the shipped base configurations the grids name."""
    return _PACKAGES / "experiments" / "configs"


def grid_names() -> tuple[str, ...]:
    """The shipped grids' names (their file names without ``.yaml``), sorted."""
    return tuple(sorted(path.stem for path in grids_dir().glob(f"*{GRID_SUFFIX}")))


def shipped_grid(name: str) -> Path:
    """The shipped grid called ``name`` (``gating_groups``, or ``gating_groups.yaml``); an unknown name is a
    :class:`GSFConfigError` listing the shipped names."""
    stem = name[: -len(GRID_SUFFIX)] if name.endswith(GRID_SUFFIX) else name
    names = grid_names()
    if stem not in names:
        raise GSFConfigError(f"grid {name!r} is neither an existing file nor a shipped grid; shipped grids: "
                             f"{', '.join(names)}")
    return grids_dir() / f"{stem}{GRID_SUFFIX}"


def grid_path(text: str | Path) -> Path:
    """What a grid argument names: an existing file or folder as given, else the shipped grid of that name
    (a bare name, no folder in it); anything else is a :class:`GSFConfigError`."""
    path = Path(text)
    if path.exists():
        return path
    if len(path.parts) != 1:
        raise GSFConfigError(f"grid file {path} does not exist (a shipped grid is named without a folder: "
                             f"{', '.join(grid_names())})")
    return shipped_grid(str(text))

"""``gsf.shipped``: the shipped grids and base configurations, found beside the packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from gsf.errors import GSFConfigError
from gsf.shipped import configs_dir, grid_names, grid_path, grids_dir, shipped_grid

REPO = Path(__file__).resolve().parents[1]


def test_the_shipped_folders_are_the_experiments_package_data_and_every_grid_names_a_shipped_config():
    import yaml

    assert grids_dir() == REPO / "experiments" / "grids" and configs_dir() == REPO / "experiments" / "configs"
    assert grid_names() == tuple(sorted(p.stem for p in (REPO / "experiments" / "grids").glob("*.yaml")))
    for name in grid_names():
        base = yaml.safe_load(shipped_grid(name).read_text(encoding="utf-8"))["base_config"]
        assert (grids_dir() / base).resolve().parent == configs_dir(), (name, base)


def test_a_grid_argument_is_an_existing_path_else_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert grid_path("gating_groups") == grid_path("gating_groups.yaml") == grids_dir() / "gating_groups.yaml"
    (tmp_path / "gating_groups").write_text("")
    assert grid_path("gating_groups") == Path("gating_groups")
    with pytest.raises(GSFConfigError, match=r"'nope'.*shipped grids: .*gating_groups"):
        grid_path("nope")
    with pytest.raises(GSFConfigError, match=r"grid file sub/gating_groups does not exist"):
        grid_path("sub/gating_groups")

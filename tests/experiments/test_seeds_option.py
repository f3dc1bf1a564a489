"""``gsf sweep --seeds`` and ``gsf demo --seeds``: another seed set for a grid, kept by a resumed sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.grid.load import load_grid
from experiments.runner import SweepFolder, SweepOptions, locate_sweep, open_sweep, with_seeds
from gsf.cli import main
from gsf.errors import GSFConfigError

TINY = Path(__file__).with_name("tiny.yaml")


def test_a_dry_run_with_seeds_lists_those_seeds_and_not_the_grids(capsys):
    assert main(["sweep", str(TINY), "--dry-run", "--seeds", "3,4"]) == 0
    out = capsys.readouterr().out
    assert "4 trials" in out
    for trial in ("temporal=none,seed=3", "temporal=none,seed=4", "temporal=gsf,seed=3", "temporal=gsf,seed=4"):
        assert trial in out
    assert "seed=0" not in out


def test_seeds_must_be_distinct_integers():
    grid = load_grid(TINY)
    assert with_seeds(grid, None) is grid
    assert with_seeds(grid, [5, 6]).seeds == [5, 6]
    with pytest.raises(GSFConfigError, match="--seeds must be distinct integers"):
        with_seeds(grid, [1, 1])
    with pytest.raises(SystemExit):
        main(["sweep", str(TINY), "--dry-run", "--seeds", "1,x"])


def test_a_sweep_saves_its_seeds_and_a_resume_keeps_them_or_refuses_others(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    grid = load_grid(TINY)
    options = SweepOptions(tracking_uri=uri, storage=tmp_path / "sweeps", name="s", seeds=[7, 8])
    folder = locate_sweep(grid, options)
    assert folder.seeds == [7, 8]
    open_sweep(with_seeds(grid, folder.seeds), folder, {})
    assert json.loads((folder.path / "gsf_sweep.json").read_text())["seeds"] == [7, 8]

    resumed = locate_sweep(grid, SweepOptions(tracking_uri=uri, storage=tmp_path / "sweeps", name="s", resume=True))
    assert resumed.seeds == [7, 8]
    with pytest.raises(GSFConfigError, match=r"runs seeds \[7, 8\], not --seeds 1,2"):
        locate_sweep(grid, SweepOptions(tracking_uri=uri, storage=tmp_path / "sweeps", name="s", resume=True,
                                        seeds=[1, 2]))
    assert isinstance(resumed, SweepFolder)


def test_the_demo_names_one_sweep_per_seed_set():
    from analysis.demo_cli import sweep_name_for

    assert sweep_name_for(None) == "demo"
    assert sweep_name_for([3, 4, 5]) == "demo-seeds-3-4-5"

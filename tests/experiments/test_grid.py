"""Grid files: expansion order, excludes, includes, slugs, config hashes and validation errors (no Ray)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import read_grid, resolved

from experiments.grid.expand import expand, slug_names
from experiments.grid.load import load_grids
from experiments.grid.resolve import NON_AFFECTING_KEYS, config_hash
from experiments.grid.validate import validate_grid
from experiments.sweep_cli import configure_parser
from gsf.errors import GSFConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "synthetic.yaml"
GRIDS = REPO / "experiments" / "grids"


def write_grid(tmp_path: Path, body: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    header = f"study: s\ntable: t\nbase_config: {CONFIG}\n"
    path.write_text(header + textwrap.dedent(body), encoding="utf-8")
    return path


def test_expansion_is_the_product_in_file_order_with_seeds_innermost(tmp_path):
    grid = read_grid(write_grid(tmp_path, """
        axes:
          model.temporal: [none, gsf]
          model.channel_fraction: [1.0, 0.5]
        seeds: [0, 1]
    """))
    slugs = [t.slug for t in expand(grid)]
    assert slugs[:4] == ["temporal=none,fraction=1,seed=0", "temporal=none,fraction=1,seed=1",
                         "temporal=none,fraction=0.5,seed=0", "temporal=none,fraction=0.5,seed=1"]
    assert len(slugs) == 8 and len(set(slugs)) == 8
    assert slugs == [t.slug for t in expand(read_grid(grid.path))]  # deterministic


def test_exclude_removes_partial_matches_and_include_appends_with_every_seed(tmp_path):
    grid = read_grid(write_grid(tmp_path, """
        axes:
          model.temporal: [none, gsf]
          model.channel_fraction: [1.0, 0.5]
        include:
          - {model.temporal: gsf, model.groups: 4}
        seeds: [0, 1]
        exclude:
          - {model.temporal: none, model.channel_fraction: 0.5}
          - {model.temporal: gsf, seed: 1, model.channel_fraction: 0.5}
    """))
    slugs = [t.slug for t in expand(grid)]
    assert "temporal=none,fraction=0.5,seed=0" not in slugs
    assert "temporal=gsf,fraction=0.5,seed=1" not in slugs and "temporal=gsf,fraction=0.5,seed=0" in slugs
    assert slugs[-2:] == ["temporal=gsf,groups=4,seed=0", "temporal=gsf,groups=4,seed=1"]
    assert grid.axis_keys == ["model.temporal", "model.channel_fraction", "model.groups"]


def test_slug_names_are_short_unless_two_keys_collide():
    assert slug_names(["model.channel_fraction", "data.num_frames", "model.gate"]) == {
        "model.channel_fraction": "fraction", "data.num_frames": "frames", "model.gate": "gate"}
    assert slug_names(["model.x", "data.x"]) == {"model.x": "model.x", "data.x": "data.x"}


def test_list_and_null_values_have_readable_slugs(tmp_path):
    grid = read_grid(write_grid(tmp_path, """
        axes:
          model.stages: [null, [3, 4]]
    """))
    assert [t.slug for t in expand(grid)] == ["stages=null,seed=0", "stages=3-4,seed=0"]


def test_config_hash_is_deterministic_and_ignores_only_non_affecting_keys(tmp_path):
    grid = read_grid(write_grid(tmp_path, "axes:\n  model.temporal: [none, gsf]\n"))
    first, second = resolved(grid), resolved(grid)
    assert [r.config_hash for r in first] == [r.config_hash for r in second]
    assert first[0].config_hash != first[1].config_hash
    config = first[0].config_dict
    changed = {s: dict(v) for s, v in config.items()}
    changed["runtime"]["progress"] = not changed["runtime"]["progress"]
    changed["runtime"]["num_threads"] = 7
    changed["runtime"]["compile"] = "max-autotune"
    assert "runtime.progress" in NON_AFFECTING_KEYS and config_hash(changed) == config_hash(config)
    changed["optim"]["lr"] = 0.123
    assert config_hash(changed) != config_hash(config)


@pytest.mark.parametrize(("body", "names"), [
    ("axes:\n  model.temporal: [none]\nbogus: 1\n", ["top level", "bogus"]),
    ("axes:\n  model.temporal: []\n", ["axes.model.temporal", "non-empty"]),
    ("axes:\n  temporal: [gsf]\n", ["axes.temporal", "section.key"]),
    ("axes:\n  model.temporal: [gsf]\nexclude:\n  - {model.temporal: tsm}\n", ["exclude[0].model.temporal", "tsm"]),
    ("axes:\n  model.temporal: [gsf]\nexclude:\n  - {model.groups: 2}\n", ["exclude[0].model.groups", "not an axis"]),
    ("axes:\n  model.temporal: [gsf]\nseeds: [0, 0]\n", ["seeds"]),
    ("axes:\n  model.temporal: [gsf]\nbaseline: {model.temporal: none}\n", ["baseline", "matches no trial"]),
    ("axes:\n  model.temporal: [gsf]\nresources: {gpus_per_trial: 1, data_parallel: ddp}\n",
     ["resources.data_parallel", "ddp"]),
    ("axes:\n  model.temporal: [gsf]\ntune: {search: {space: {optim.lr: {normal: [0, 1]}}}}\n",
     ["tune.search.space.optim.lr"]),
])
def test_shape_errors_name_the_grid_file_and_the_field(tmp_path, body, names):
    path = write_grid(tmp_path, body)
    with pytest.raises(GSFConfigError) as info:
        expand(read_grid(path))
    for name in [str(path), *names]:
        assert name in str(info.value)


@pytest.mark.parametrize(("body", "names"), [
    ("axes:\n  model.temporl: [gsf]\n", ["trial temporl=gsf,seed=0", "model.temporl", "model.temporal"]),
    ("axes:\n  model.temporal: [gsf, lstm]\n", ["trial temporal=lstm,seed=0", "lstm"]),
    ("axes:\n  model.channel_fraction: [0.25, 0.3]\n", ["trial fraction=0.3,seed=0", "channel_fraction"]),
    ("axes:\n  model.groups: [2, 8]\nset: {model.channel_fraction: 0.125}\n", ["trial groups=8,seed=0", "groups"]),
])
def test_resolution_errors_name_the_grid_the_trial_and_the_field(tmp_path, body, names):
    path = write_grid(tmp_path, body)
    with pytest.raises(GSFConfigError) as info:
        resolved(read_grid(path))
    for name in [str(path), *names]:
        assert name in str(info.value)


def test_two_trials_resolving_to_one_configuration_are_rejected(tmp_path):
    path = write_grid(tmp_path, """
        axes:
          model.temporal: [gsf]
        include:
          - {model.temporal: gsf, model.groups: 2}
    """)
    with pytest.raises(GSFConfigError, match="same configuration"):
        resolved(read_grid(path))


def test_every_shipped_grid_loads_and_resolves():
    grids = [validate_grid(g) for g in load_grids([GRIDS])]
    assert {"demo"} <= {g.name for g in grids}
    for grid in grids:
        assert resolved(grid), grid.path


def _cli(argv: list[str]) -> int:
    """``gsf sweep ARGV``'s exit status (the command's errors are reported by gsf.cli)."""
    from gsf.cli import main

    return main(["sweep", *argv])


def test_dry_run_lists_every_demo_trial_with_gmacs_and_params(capsys):
    assert _cli([str(GRIDS / "demo.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "15 trials" in out and "GMACs/view" in out and "params (M)" in out
    assert "temporal=gsf,groups=1,seed=2" in out


def test_dry_run_takes_a_shipped_grid_by_its_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no file named gating_groups here
    assert _cli(["gating_groups", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"grid {GRIDS / 'gating_groups.yaml'}:" in out and "groups=8,seed=0" in out


def test_an_existing_file_wins_over_a_shipped_grid_of_that_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_grid(tmp_path, "axes:\n  model.temporal: [tsm]\n", name="gating_groups")
    assert _cli(["gating_groups", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "grid gating_groups:" in out and "temporal=tsm" in out and "groups=" not in out


def test_an_unknown_grid_name_exits_2_listing_the_shipped_grids(tmp_path, monkeypatch, capsys):
    from gsf.shipped import grid_names

    monkeypatch.chdir(tmp_path)
    assert _cli(["gating_grups", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "'gating_grups'" in err and all(name in err for name in grid_names())
    assert {"demo", "gating_groups"} <= set(grid_names())
    assert _cli([str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    assert f"grid file {tmp_path / 'missing.yaml'} does not exist" in capsys.readouterr().err


def test_complexity_only_takes_shipped_grids_by_name(tmp_path):
    import csv

    assert _cli(["gating_groups.yaml", "demo", "--complexity-only", "--out", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.csv")) == ["demo.csv", "gating_groups.csv"]
    assert {r["grid"] for r in csv.DictReader((tmp_path / "gating_groups.csv").open())} == {"gating_groups"}


def test_sweep_help_names_the_shipped_grids():
    import argparse

    from gsf.shipped import grid_names

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    text = " ".join(parser.format_help().split())
    assert "name of a shipped grid" in text and all(name in text for name in grid_names())


def test_dry_run_of_a_bad_grid_exits_2_naming_the_file(tmp_path, capsys):
    path = write_grid(tmp_path, "axes:\n  model.temporal: [gsf, lstm]\n")
    assert _cli([str(path), "--dry-run"]) == 2
    assert str(path) in capsys.readouterr().err


def test_complexity_only_writes_one_csv_per_grid_at_paper_resolution(tmp_path):
    import csv

    path = write_grid(tmp_path, "axes:\n  model.temporal: [none, gsf]\nseeds: [0, 1]\n")
    assert _cli([str(path), "--complexity-only", "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "g.csv").open()))
    assert [r["slug"] for r in rows] == ["temporal=none,seed=0", "temporal=none,seed=1",
                                         "temporal=gsf,seed=0", "temporal=gsf,seed=1"]
    assert {r["input_size"] for r in rows} == {"224"}
    assert rows[0]["gmacs_per_view"] == rows[1]["gmacs_per_view"]
    assert float(rows[0]["gmacs_per_view"]) > 0 and float(rows[0]["params_m"]) < float(rows[2]["params_m"])
    assert int(rows[2]["temporal_modules"]) > 0 == int(rows[0]["temporal_modules"])


@pytest.mark.parametrize("temporal", ["none", "tsm", "gsf"])
def test_complexity_of_a_trial_equals_fvcore_on_its_model(tmp_path, temporal):
    from experiments.grid.complexity import complexity_of, num_classes
    from gsf.complexity import measure_complexity_fvcore
    from gsf.engine.config import TrainConfig, model_kwargs
    from gsf.models import build_model

    grid = read_grid(write_grid(tmp_path, f"axes:\n  model.temporal: [{temporal}]\nset: {{data.num_frames: 8}}\n"))
    config = resolved(grid)[0].config_dict
    kwargs = model_kwargs(TrainConfig.from_dict(config), num_classes=num_classes(config), pretrained=False)
    reference = measure_complexity_fvcore(build_model(**kwargs), num_frames=8, input_size=64)
    assert complexity_of(config, input_size=64) == reference

"""Grid resources for data-parallel trials and how the sweep turns them into each trial's
``runtime.world_size`` (no Ray)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import read_grid
from experiments.grid.resolve import config_hash
from experiments.trials import TrialSpec, processes_per_trial, with_world_size
from gsf.engine.config import TrainConfig
from gsf.errors import GSFConfigError

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "synthetic.yaml"


def grid_with(tmp_path: Path, resources: str):
    path = tmp_path / "g.yaml"
    path.write_text(f"study: s\ntable: t\nbase_config: {CONFIG}\naxes:\n  model.temporal: [gsf]\n"
                    + textwrap.dedent(resources), encoding="utf-8")
    return read_grid(path)


@pytest.mark.parametrize(("resources", "workers", "gpus"), [
    ("", 1, 0.0),
    ("resources: {data_parallel: ddp, workers_per_trial: 2}\n", 2, 0.0),
    ("resources: {gpus_per_trial: 4, data_parallel: ddp}\n", 4, 4.0),
    ("resources: {gpus_per_trial: 2, data_parallel: ddp, workers_per_trial: 2}\n", 2, 2.0),
    ("resources: {gpus_per_trial: 0.5, workers_per_trial: 1}\n", 1, 0.5),
])
def test_processes_per_trial_follow_the_gpus_or_the_cpu_workers(tmp_path, resources, workers, gpus):
    r = grid_with(tmp_path, resources).resources
    assert (r.workers_per_trial, r.gpus_per_trial) == (workers, gpus)


@pytest.mark.parametrize(("resources", "names"), [
    ("{gpus_per_trial: 1, data_parallel: ddp}", ["resources.data_parallel", "GPUs >= 2", "gpus_per_trial=1"]),
    ("{gpus_per_trial: 2.5, data_parallel: ddp}", ["resources.data_parallel", "whole number"]),
    ("{data_parallel: ddp}", ["resources.data_parallel", "workers_per_trial >= 2", "None"]),
    ("{data_parallel: ddp, workers_per_trial: 1}", ["resources.data_parallel", "workers_per_trial >= 2"]),
    ("{workers_per_trial: 2}", ["resources.workers_per_trial", "data_parallel: ddp"]),
    ("{gpus_per_trial: 4, data_parallel: ddp, workers_per_trial: 2}",
     ["resources.workers_per_trial", "one process per GPU"]),
    ("{data_parallel: ddp, workers_per_trial: 1.5}", ["resources.workers_per_trial", "integer"]),
    ("{data_parallel: ddp, worker_per_trial: 2}", ["resources", "workers_per_trial"]),
])
def test_bad_data_parallel_resources_name_the_grid_and_the_field(tmp_path, resources, names):
    with pytest.raises(GSFConfigError) as info:
        grid_with(tmp_path, f"resources: {resources}\n")
    for name in [str(tmp_path / "g.yaml"), *names]:
        assert name in str(info.value)


def specs_of(*world_sizes: int) -> dict[str, TrialSpec]:
    specs = {}
    for i, world_size in enumerate(world_sizes):
        config = TrainConfig().to_dict()
        config["runtime"]["world_size"] = world_size
        specs[f"t{i}"] = TrialSpec(slug=f"t{i}", seed=0, config=config, config_hash=config_hash(config), axes={},
                                   complexity={})
    return specs


def planned(grid, specs: dict[str, TrialSpec], *, gpus_per_trial=None) -> tuple[int, dict[str, TrialSpec]]:
    """What plan_trials does with the processes per trial, on ready-made specs."""
    world_size = processes_per_trial(grid, gpus_per_trial=gpus_per_trial)
    return world_size, {slug: with_world_size(grid, spec, world_size) for slug, spec in specs.items()}


def test_the_sweep_writes_the_processes_per_trial_into_each_trial_and_its_hash(tmp_path):
    grid = grid_with(tmp_path, "resources: {cpus_per_trial: 2, data_parallel: ddp, workers_per_trial: 2}\n")
    before = specs_of(1, 2)["t0"].config_hash
    world_size, specs = planned(grid, specs_of(1, 2))
    assert world_size == 2
    for spec in specs.values():
        assert spec.config["runtime"]["world_size"] == 2
        assert spec.config_hash == config_hash(spec.config)
    assert specs["t0"].config_hash != before  # a DDP trial is not the one-process trial

    world_size, plain = planned(grid_with(tmp_path, ""), specs_of(1))
    assert world_size == 1
    assert plain["t0"].config["runtime"]["world_size"] == 1


def test_gpus_per_trial_on_the_command_line_sets_the_processes_of_a_gpu_grid(tmp_path):
    grid = grid_with(tmp_path, "resources: {gpus_per_trial: 2, data_parallel: ddp}\n")
    world_size, specs = planned(grid, specs_of(1), gpus_per_trial=4)
    assert world_size == 4
    assert specs["t0"].config["runtime"]["world_size"] == 4
    with pytest.raises(GSFConfigError, match=r"--gpus-per-trial 1.5: .* whole number >= 2"):
        planned(grid, specs_of(1), gpus_per_trial=1.5)


def test_a_trial_asking_for_other_processes_than_the_resources_give_is_refused(tmp_path):
    with pytest.raises(GSFConfigError, match=r"trial t0: runtime.world_size=2 .* 1 process\(es\) per trial"):
        planned(grid_with(tmp_path, ""), specs_of(2))
    ddp = grid_with(tmp_path, "resources: {data_parallel: ddp, workers_per_trial: 2}\n")
    with pytest.raises(GSFConfigError, match=r"runtime.world_size=3 .* 2 process\(es\)"):
        planned(ddp, specs_of(3))

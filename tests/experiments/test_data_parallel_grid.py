"""Grid resources for data-parallel trials and how the sweep turns them into each trial's
``runtime.world_size`` (no Ray)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import read_grid, resolved

from experiments.grid.resolve import config_hash
from experiments.trials import TrialSpec, plan_trials
from gsf.errors import GSFConfigError

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "synthetic.yaml"


def grid_with(tmp_path: Path, resources: str):
    path = tmp_path / "g.yaml"
    path.write_text(f"study: s\ntable: t\nbase_config: {CONFIG}\naxes:\n  model.temporal: [gsf]\n"
                    + textwrap.dedent(resources), encoding="utf-8")
    return read_grid(path)


@pytest.mark.parametrize(("resources", "expected"), [
    ("", dict(workers_per_trial=1, cpus_per_trial=1.0, gpus_per_trial=0.0)),
    ("resources: {gpus_per_trial: 0.5, workers_per_trial: 1}\n", dict(workers_per_trial=1, gpus_per_trial=0.5)),
    ("resources: {data_parallel: ddp, workers_per_trial: 2}\n",
     dict(workers_per_trial=2, cpus_per_worker=1.0, gpus_per_worker=0.0, placement="pack", gpus_per_trial=0.0)),
    ("resources: {data_parallel: ddp, workers_per_trial: 8, gpus_per_worker: 1, cpus_per_worker: 4, "
     "placement: spread}\n", dict(workers_per_trial=8, cpus_per_worker=4.0, gpus_per_worker=1.0, placement="spread")),
])
def test_a_data_parallel_trial_is_a_worker_group_each_worker_reserving_its_own(tmp_path, resources, expected):
    from experiments.grid.types import DRIVER_CPUS
    from experiments.runner import _worker_group

    grid = grid_with(tmp_path, resources)
    for key, value in expected.items():
        assert getattr(grid.resources, key) == value, key
    group = _worker_group(grid)
    if grid.resources.data_parallel == "none":
        assert group is None
        return
    # the trial's own process only waits on its workers: a sliver of a CPU, never one a worker needs
    assert grid.resources.cpus_per_trial == DRIVER_CPUS < 0.1
    assert (group.num_workers, group.cpus_per_worker, group.gpus_per_worker, group.placement, group.max_failures) == (
        expected["workers_per_trial"], expected["cpus_per_worker"], expected["gpus_per_worker"], expected["placement"],
        grid.tune.max_failures)
    scaling = group.scaling_config()
    assert scaling.num_workers == expected["workers_per_trial"]
    assert scaling.placement_strategy == expected["placement"].upper()
    assert scaling.use_gpu == (expected["gpus_per_worker"] > 0)
    assert scaling.resources_per_worker == {"CPU": expected["cpus_per_worker"],
                                            **({"GPU": 1.0} if expected["gpus_per_worker"] else {})}


@pytest.mark.parametrize(("resources", "names"), [
    ("{data_parallel: ddp}", ["resources.data_parallel", "workers_per_trial >= 2", "None"]),
    ("{data_parallel: ddp, workers_per_trial: 1}", ["resources.data_parallel", "workers_per_trial >= 2"]),
    ("{data_parallel: ddp, workers_per_trial: 1.5}", ["resources.data_parallel", "integer", "1.5"]),
    ("{workers_per_trial: 2}", ["resources.workers_per_trial", "data_parallel: ddp"]),
    ("{placement: spread}", ["resources.placement", "data_parallel: ddp"]),
    ("{gpus_per_trial: 4, data_parallel: ddp, workers_per_trial: 4}",
     ["resources.gpus_per_trial", "gpus_per_worker instead"]),
    ("{cpus_per_trial: 2, data_parallel: ddp, workers_per_trial: 2}",
     ["resources.cpus_per_trial", "cpus_per_worker instead"]),
    ("{data_parallel: ddp, workers_per_trial: 2, gpus_per_worker: 2}", ["resources.gpus_per_worker", "0 (gloo"]),
    ("{data_parallel: ddp, workers_per_trial: 2, gpus_per_worker: 0.5}", ["resources.gpus_per_worker", "0.5"]),
    ("{data_parallel: ddp, workers_per_trial: 2, cpus_per_worker: 0}", ["resources.cpus_per_worker", "> 0"]),
    ("{data_parallel: ddp, workers_per_trial: 2, placement: strict}", ["resources.placement", "'strict'", "pack"]),
    ("{data_parallel: ddp, worker_per_trial: 2}", ["resources", "workers_per_trial"]),
])
def test_bad_data_parallel_resources_name_the_grid_and_the_field(tmp_path, resources, names):
    with pytest.raises(GSFConfigError) as info:
        grid_with(tmp_path, f"resources: {resources}\n")
    for name in [str(tmp_path / "g.yaml"), *names]:
        assert name in str(info.value)


def planned(grid, tmp_path: Path, *, asked: int | None = None, gpus_per_trial=None) -> dict[str, TrialSpec]:
    """The sweep's own planning step (:func:`plan_trials`) of the grid's trials, each asking for ``asked``
    processes (``runtime.world_size``) when given; ``tmp_path`` stands for the data folder."""
    extra = {"data.root": str(tmp_path)}
    if asked is not None:
        extra["runtime.world_size"] = asked
    return plan_trials(grid, resolved(grid, extra=extra), gpus_per_trial=gpus_per_trial)


def test_the_sweep_writes_the_processes_per_trial_into_each_trial_and_its_hash(tmp_path):
    (plain,) = planned(grid_with(tmp_path, ""), tmp_path).values()
    assert plain.config["runtime"]["world_size"] == 1 and plain.config_hash == config_hash(plain.config)

    grid = grid_with(tmp_path, "resources: {cpus_per_worker: 2, data_parallel: ddp, workers_per_trial: 2}\n")
    for asked in (None, 1, 2):  # nothing asked, the one-process count or the grid's own: the grid's is written in
        (spec,) = planned(grid, tmp_path, asked=asked).values()
        assert spec.slug == plain.slug
        assert spec.config["runtime"]["world_size"] == 2
        assert spec.config_hash == config_hash(spec.config)
        assert spec.config_hash != plain.config_hash  # a DDP trial is not the one-process trial
        # and nothing else differs from the one-process trial
        assert {**spec.config, "runtime": {**spec.config["runtime"], "world_size": 1}} == plain.config


def test_gpus_per_trial_on_the_command_line_is_for_single_process_trials(tmp_path):
    grid = grid_with(tmp_path, "resources: {gpus_per_worker: 1, data_parallel: ddp, workers_per_trial: 2}\n")
    (spec,) = planned(grid, tmp_path).values()
    assert spec.config["runtime"]["world_size"] == 2
    with pytest.raises(GSFConfigError, match=r"--gpus-per-trial 4: .* set resources.gpus_per_worker"):
        planned(grid, tmp_path, gpus_per_trial=4)
    (single,) = planned(grid_with(tmp_path, ""), tmp_path, gpus_per_trial=1).values()
    assert single.config["runtime"]["world_size"] == 1


def test_a_trial_asking_for_other_processes_than_the_resources_give_is_refused(tmp_path):
    with pytest.raises(GSFConfigError,
                       match=r"trial temporal=gsf,seed=0: runtime.world_size=2 .* 1 process\(es\) per trial"):
        planned(grid_with(tmp_path, ""), tmp_path, asked=2)
    ddp = grid_with(tmp_path, "resources: {data_parallel: ddp, workers_per_trial: 2}\n")
    with pytest.raises(GSFConfigError, match=r"runtime.world_size=3 .* 2 process\(es\)"):
        planned(ddp, tmp_path, asked=3)

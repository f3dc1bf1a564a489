"""A grid's ``tune`` section: validation errors naming the file and field, the dry-run's trial count, the
Optuna space and the last-epoch rule of ASHA (no Ray run), and real sweeps (slow): ASHA stopping a trial,
random search next to a grid axis resumed after its driver was killed, Optuna under ASHA, all checked in
MLflow, with no checkpoint staging folder left in the sweep folder."""

from __future__ import annotations

import math
import os
import signal
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import TINY_GRID, read_grid, resolved, sweep_env, wait_pg_gone

from experiments.grid.expand import planned_trials
from gsf.errors import GSFConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "configs" / "synthetic.yaml"
LR_BOUNDS = (0.001, 0.1)


def write_grid(tmp_path: Path, body: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"study: s\ntable: t\nbase_config: {CONFIG}\n" + textwrap.dedent(body), encoding="utf-8")
    return path


# --- validation (no Ray) ------------------------------------------------------------------------------

AXIS = "axes:\n  model.temporal: [gsf]\n"
EVERY_EPOCH = "set: {runtime.eval_every: 1}\n"  # ASHA and Optuna read the metric at every epoch


@pytest.mark.parametrize(("tune", "names"), [
    ("{metric: accuracy}", ["tune.metric", "'accuracy'", "val_top1"]),
    ("{metric: lr}", ["tune.metric", "'lr'"]),
    ("{metric: val_loss, mode: max}", ["tune.mode", "val_loss", "mode: min"]),
    ("{metric: val_top1, mode: min}", ["tune.mode", "mode: max"]),
    ("{scheduler: {type: hyperband}}", ["tune.scheduler.type", "hyperband"]),
    ("{scheduler: {grace_period: 0}}", ["tune.scheduler.grace_period", "> 0"]),
    ("{scheduler: {grace_period: 1.5}}", ["tune.scheduler.grace_period", "integer"]),
    ("{scheduler: {reduction_factor: 1}}", ["tune.scheduler.reduction_factor", "> 1"]),
    ("{scheduler: {grace_period: 4, max_t: 4}}", ["tune.scheduler.max_t", "grace_period=4"]),
    ("{scheduler: {rungs: 3}}", ["tune.scheduler", "'rungs'"]),
    ("{search: {algorithm: bayes, space: {optim.lr: {uniform: [0.1, 0.2]}}}}", ["tune.search.algorithm", "bayes"]),
    ("{search: {num_samples: 0, space: {optim.lr: {uniform: [0.1, 0.2]}}}}", ["tune.search.num_samples"]),
    ("{search: {space: {}}}", ["tune.search.space", "at least one"]),
    ("{search: {space: {optim.lr: {loguniform: [0.1, 0.001]}}}}", ["tune.search.space.optim.lr", "low < high"]),
    ("{search: {space: {optim.lr: {loguniform: [0, 0.1]}}}}", ["tune.search.space.optim.lr", "positive low"]),
    ("{search: {space: {optim.lr: {uniform: [0.1, .inf]}}}}", ["tune.search.space.optim.lr", "finite"]),
    ("{search: {space: {optim.lr: {uniform: [a, 1]}}}}", ["tune.search.space.optim.lr", "two numbers"]),
    ("{search: {space: {optim.lr: {uniform: [0.1]}}}}", ["tune.search.space.optim.lr", "[low, high]"]),
    ("{search: {space: {optim.epochs: {randint: [2, 2]}}}}", ["tune.search.space.optim.epochs", "exclusive"]),
    ("{search: {space: {optim.epochs: {randint: [2.5, 4]}}}}", ["tune.search.space.optim.epochs", "integers"]),
    ("{search: {space: {model.groups: {choice: []}}}}", ["tune.search.space.model.groups", "non-empty"]),
    ("{search: {space: {model.groups: {choice: [2, 2]}}}}", ["tune.search.space.model.groups", "repeats"]),
    ("{search: {space: {optim.lr: {normal: [0, 1]}}}}", ["tune.search.space.optim.lr", "loguniform"]),
    ("{search: {space: {runtime.seed: {randint: [0, 9]}}}}", ["tune.search.space.runtime.seed", "seeds"]),
    ("{search: {space: {model.temporal: {choice: [tsm]}}}}", ["tune.search.space.model.temporal", "grid axis"]),
    ("{search: {num_samples: 3, space: {model.groups: {choice: [2, 4]}}}}",
     ["tune.search.num_samples", "only 2 distinct"]),
])
def test_bad_tune_settings_name_the_grid_file_and_the_field(tmp_path, tune, names):
    path = write_grid(tmp_path, f"{AXIS}tune: {tune}\n")
    with pytest.raises(GSFConfigError) as info:
        read_grid(path)
    for name in [str(path), *names]:
        assert name in str(info.value)


@pytest.mark.parametrize(("body", "names"), [
    ("set: {optim.epochs: 3, runtime.eval_every: 1}\ntune: {scheduler: {grace_period: 3}}\n",
     ["tune.scheduler.grace_period", "optim.epochs=3", "trial temporal=gsf,seed=0"]),
    ("set: {optim.epochs: 3, optim.warmup_epochs: 1, runtime.eval_every: 1}\n"
     "tune: {scheduler: {grace_period: 5}}\n",
     ["tune.scheduler.grace_period", "5 is not below optim.epochs=3"]),
    ("set: {optim.epochs: 3, runtime.eval_every: 1}\ntune: {scheduler: {max_t: 9}}\n",
     ["tune.scheduler.max_t", "optim.epochs=3"]),
    ("set: {runtime.eval_every: 2}\ntune: {scheduler: {grace_period: 1}}\n",
     ["tune.metric", "runtime.eval_every=2", "trial temporal=gsf,seed=0"]),
    ("set: {runtime.eval_every: 2}\ntune: {search: {algorithm: optuna, space: {optim.lr: {uniform: [0.1, 0.2]}}}}\n",
     ["tune.metric", "runtime.eval_every=2"]),
    ("tune: {search: {space: {model.dropout: {uniform: [0.5, 1.5]}}}}\n",
     ["tune.search.space.model.dropout", "model.dropout", "trial temporal=gsf,seed=0"]),
    ("tune: {search: {space: {model.channel_fraction: {choice: [0.5, 0.3]}}}}\n",
     ["tune.search.space.model.channel_fraction", "0.3"]),
])
def test_tune_settings_that_do_not_fit_a_trial_name_the_grid_the_field_and_the_trial(tmp_path, body, names):
    path = write_grid(tmp_path, AXIS + body)
    grid = read_grid(path)
    with pytest.raises(GSFConfigError) as info:
        resolved(grid)
    for name in [str(path), *names]:
        assert name in str(info.value)


def test_set_of_a_sampled_key_is_rejected(tmp_path):
    grid = read_grid(write_grid(tmp_path, AXIS + "tune: {search: {space: {optim.lr: {loguniform: [0.001, 0.1]}}}}\n"))
    with pytest.raises(GSFConfigError, match=r"tune\.search\.space\.optim\.lr: is sampled, but --set optim\.lr"):
        resolved(grid, extra={"optim.lr": 0.5})


def test_a_valid_tune_section_is_normalised_with_its_defaults(tmp_path):
    grid = read_grid(write_grid(tmp_path, AXIS + EVERY_EPOCH + textwrap.dedent("""
        tune:
          metric: val_loss
          mode: min
          scheduler: {type: asha}
          search: {algorithm: optuna, num_samples: 5, space: {optim.lr: {loguniform: [0.001, 0.1]}}}
    """)))
    assert grid.tune.scheduler == {"type": "asha", "grace_period": 1, "reduction_factor": 3, "max_t": None}
    assert grid.tune.search["space"] == {"optim.lr": {"loguniform": [0.001, 0.1]}}
    assert grid.tune.samples_per_point == 5 and planned_trials(grid, 3) == 15
    assert resolved(grid)


# --- dry run: the trial count of a search grid ---------------------------------------------------------

def _cli(argv: list[str]) -> int:
    """``gsf sweep ARGV``'s exit status (the command's errors are reported by gsf.cli)."""
    from gsf.cli import main

    return main(["sweep", *argv])


@pytest.mark.parametrize("algorithm", ["random", "optuna"])
def test_dry_run_counts_samples_times_grid_points_without_sampling(tmp_path, capsys, algorithm):
    path = write_grid(tmp_path, f"""
        set: {{data.input_size: 32, data.num_frames: 4, runtime.eval_every: 1}}
        axes:
          model.temporal: [none, gsf]
        seeds: [0, 1]
        tune:
          metric: val_top1
          scheduler: {{grace_period: 2, reduction_factor: 2}}
          search: {{algorithm: {algorithm}, num_samples: 3, space: {{optim.lr: {{loguniform: [0.001, 0.1]}}}}}}
    """)
    assert _cli([str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "12 trials" in out.splitlines()[0]
    assert f"4 grid points x 3 samples = 12 trials ({algorithm} search over optim.lr ~ loguniform[0.001, 0.1]" in out
    assert "ASHA early stopping on val_top1 (max): grace_period 2, reduction_factor 2" in out
    rows = [line for line in out.splitlines() if line.startswith("temporal=")]
    assert [r.split()[0] for r in rows] == ["temporal=none,seed=0", "temporal=none,seed=1", "temporal=gsf,seed=0",
                                            "temporal=gsf,seed=1"]  # grid points: nothing was sampled


@pytest.mark.slow  # counts ResNet-50's GMACs at 224 px
def test_the_readme_dry_run_of_the_example_tune_grid_plans_twelve_optuna_trials_under_asha(capsys):
    grid = read_grid(REPO / "experiments" / "grids" / "tune_lr.yaml")
    config = resolved(grid)[0].config_dict
    assert config["model"]["backbone"] == "resnet50" and config["data"]["dataset"] == "ssv1"
    assert grid.tune.scheduler["grace_period"] < config["optim"]["epochs"]
    assert _cli([str(grid.path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 grid point x 12 samples = 12 trials (optuna search over optim.lr ~ loguniform[0.002, 0.05]" in out
    assert "ASHA early stopping on val_top1 (max): grace_period 2, reduction_factor 2" in out


# --- the Tune pieces, without a Ray cluster -------------------------------------------------------------

def test_optuna_space_hands_out_grid_points_in_turn_and_samples_within_bounds():
    import optuna

    from experiments.tune_search import OptunaSpace

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = OptunaSpace(["a", "b", "c"], {"optim.lr": {"loguniform": list(LR_BOUNDS)},
                                          "model.stages": {"choice": [[3, 4], [4]]},
                                          "optim.epochs": {"randint": [2, 4]}})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    configs = []
    for _ in range(6):
        trial = study.ask()
        fixed = space(trial)
        configs.append({**trial.params, **fixed})
        study.tell(trial, 0.5)
    assert [c["trial"] for c in configs] == ["a", "b", "c", "a", "b", "c"]
    assert all(LR_BOUNDS[0] <= c["optim.lr"] <= LR_BOUNDS[1] for c in configs)
    assert all(c["model.stages"] in ([3, 4], [4]) and c["optim.epochs"] in (2, 3) for c in configs)
    assert len({c["optim.lr"] for c in configs}) == 6


def _asha_decisions(scheduler, reports) -> list[str]:
    trials = {}
    decisions = []
    for name, epoch, loss in reports:
        if name not in trials:
            trials[name] = SimpleNamespace(trial_id=name)
            scheduler.on_trial_add(None, trials[name])
        result = {"training_iteration": epoch, "epoch": epoch, "val_loss": loss, "total_epochs": 2}
        decisions.append(scheduler.on_trial_result(None, trials[name], result))
    return decisions


def test_asha_stops_a_trial_at_a_rung_but_never_at_its_last_epoch():
    from ray.tune.schedulers import ASHAScheduler

    from experiments.tune_search import make_asha

    settings = {"type": "asha", "grace_period": 1, "reduction_factor": 2, "max_t": None}
    # a: good; b: worse than a at epoch 1 (a rung); c: fine at epoch 1, worse than a at its last epoch (a rung)
    reports = [("a", 1, 1.0), ("a", 2, 0.9), ("b", 1, 5.0), ("c", 1, 1.1), ("c", 2, 3.0)]
    ours = _asha_decisions(make_asha(settings, metric="val_loss", mode="min", epochs=2), reports)
    plain = _asha_decisions(ASHAScheduler(time_attr="training_iteration", metric="val_loss", mode="min", max_t=2,
                                          grace_period=1, reduction_factor=2, stop_last_trials=False), reports)
    assert plain == ["CONTINUE", "CONTINUE", "STOP", "CONTINUE", "STOP"]
    assert ours == ["CONTINUE", "CONTINUE", "STOP", "CONTINUE", "CONTINUE"]


# --- real sweeps (local Ray, SQLite MLflow) -------------------------------------------------------------

def tune_grid(tmp_path: Path, name: str, **fields) -> Path:
    """The tiny plumbing grid with ``fields`` replaced (study ``gsf-test-<name>``)."""
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["study"] = f"gsf-test-{name}"
    grid.update(fields)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def staging_left(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "sweeps").rglob("ckpt*") if p.is_dir()]


def assert_sampled_runs(children, *, key: str, bounds: tuple[float, float]) -> None:
    """Each sampled trial has its own run whose params, axis tag, slug and config hash carry its value."""
    values = [float(r.data.params[key]) for r in children]
    assert all(bounds[0] <= v <= bounds[1] for v in values)
    assert len(set(values)) == len(children)
    assert len({r.data.tags["gsf.config_hash"] for r in children}) == len(children)
    for run in children:
        assert float(run.data.tags[f"gsf.axis.{key}"]) == float(run.data.params[key])
        short = key.rsplit(".", 1)[-1]
        slug = run.data.tags["gsf.slug"]
        assert f",{short}=" in slug and run.info.run_name == f"{run.data.tags['gsf.variant']} ({slug})"
        slug_value = float(slug.split(f",{short}=")[1].split(",")[0])
        assert math.isclose(slug_value, float(run.data.params[key]), rel_tol=1e-5)


WD_BOUNDS = (1e-5, 1e-4)


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory, synth_root) -> Path:
    """One sweep for the ASHA and Optuna tests: Optuna samples the weight decay of each of three grid points (one
    sample a point) under ASHA on val_loss (grace period 1: the rung is epoch 1), one trial at a time in Optuna's
    order (point n mod 3): lr 0.01, lr 30, lr 1.0. lr 30 diverges and reaches the rung behind lr 0.01, so it is
    stopped there; lr 1.0 passes the rung but is worse than lr 0.01 at epoch 2, its last, where plain ASHA would
    stop it too. The folder holding its MLflow store, sweep folder and log."""
    from conftest import Processes
    from test_sweep import finish, sweep_args

    folder = tmp_path_factory.mktemp("asha_sweep")
    grid = tune_grid(folder, "asha", axes={"optim.lr": [0.01, 30.0, 1.0]}, baseline={"optim.lr": 0.01},
                     tune={"metric": "val_loss", "mode": "min", "max_failures": 0,
                           "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
                           "search": {"algorithm": "optuna", "num_samples": 1,
                                      "space": {"optim.weight_decay": {"loguniform": list(WD_BOUNDS)}}}})
    started = Processes()
    try:
        log = folder / "sweep.log"
        finish(started.sweep(sweep_args(folder, synth_root, grid, "--max-concurrent", "1"), log=log,
                             env=sweep_env(), cwd=folder), log)
    finally:
        started.kill_all()
    return folder


@pytest.mark.slow
def test_asha_stops_a_diverging_trial_which_ends_finished_and_tagged_and_the_report_reads_it(tmp_path, asha_sweep):
    from test_sweep import epochs_logged, runs_of

    assert "ASHA early stopping on val_loss (min)" in (asha_sweep / "sweep.log").read_text()
    client, parents, children = runs_of(asha_sweep, "gsf-test-asha")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    by_lr = {float(r.data.params["optim.lr"]): r for r in children}
    assert sorted(by_lr) == [0.01, 1.0, 30.0]
    assert {r.info.status for r in children} == {"FINISHED"}
    stopped = by_lr[30.0]
    assert stopped.data.tags["gsf.stopped_early"] == "true" and stopped.data.tags["gsf.stopped_at_epoch"] == "1"
    assert epochs_logged(client, stopped) == [1] and "final_val_top1" not in stopped.data.metrics
    for lr in (0.01, 1.0):
        assert "gsf.stopped_early" not in by_lr[lr].data.tags
        assert epochs_logged(client, by_lr[lr]) == [1, 2] and "final_val_top1" in by_lr[lr].data.metrics
    assert staging_left(asha_sweep) == []

    import csv

    from gsf.cli import main

    out = tmp_path / "report"
    assert main(["report", "--tracking-uri", f"sqlite:///{asha_sweep / 'mlflow.db'}", "--study", "gsf-test-asha",
                 "--out", str(out)]) == 0
    folder = next(out.glob("*/table.csv")).parent
    rows = {float(r["optim.lr"]): r for r in csv.DictReader((folder / "table.csv").open())}
    assert rows[30.0]["status"] == "1 stopped early" and rows[30.0]["n"] == "0"
    assert rows[0.01]["status"] == "1 finished" and rows[0.01]["n"] == "1" and rows[1.0]["n"] == "1"
    assert "without final_val_top1" not in rows[30.0]["warnings"]
    statuses = {float(r["optim.lr"]): r["status"] for r in csv.DictReader((folder / "runs.csv").open())}
    assert statuses == {0.01: "FINISHED", 1.0: "FINISHED", 30.0: "FINISHED (stopped early)"}


def random_grid(tmp_path: Path, temporal: list[str]) -> Path:
    return tune_grid(tmp_path, "random", axes={"model.temporal": temporal}, baseline={"model.temporal": temporal[0]},
                     tune={"max_failures": 1, "search": {"algorithm": "random", "num_samples": 2,
                                                         "space": {"optim.lr": {"loguniform": list(LR_BOUNDS)}}}})


@pytest.mark.slow
def test_random_search_next_to_a_grid_axis_gives_each_sample_its_own_run(tmp_path, synth_root, processes):
    from test_sweep import epochs_logged, finish, runs_of, sweep_args

    grid = random_grid(tmp_path, ["none", "gsf"])
    log = tmp_path / "sweep.log"
    finish(processes.sweep(sweep_args(tmp_path, synth_root, grid, "--max-concurrent", "2"), log=log,
                           env=sweep_env(), cwd=tmp_path), log)
    assert "2 grid points x 2 samples = 4 trials (random search over optim.lr" in log.read_text()
    client, parents, children = runs_of(tmp_path, "gsf-test-random")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED" and parents[0].data.params["num_trials"] == "4"
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}
    assert sorted(r.data.tags["gsf.axis.model.temporal"] for r in children) == ["gsf", "gsf", "none", "none"]
    assert_sampled_runs(children, key="optim.lr", bounds=LR_BOUNDS)
    for run in children:
        assert epochs_logged(client, run) == [1, 2] and "final_val_top1" in run.data.metrics
    assert staging_left(tmp_path) == []


@pytest.mark.slow
def test_random_search_resumed_after_a_killed_driver_keeps_its_samples_and_draws_none_again(
        tmp_path, synth_root, processes):
    import sys

    from conftest import kill_marked, tune_state_epochs
    from sweep_recording_starts import attempts
    from test_sweep import RECORDING_STARTS, SWEEP_TIMEOUT_S, epochs_logged, finish, runs_of, sweep_args

    epochs = 5  # room for the kill between the second sample's first checkpoint and its end
    # batches of 2: epochs of a few seconds, so the kill lands while Tune's state names a checkpoint that exists
    args = sweep_args(tmp_path, synth_root, random_grid(tmp_path, ["gsf"]), "--max-concurrent", "1", "--set",
                      f"optim.epochs={epochs}", "--set", "data.batch_size=2")
    records, folder = tmp_path / "records", tmp_path / "sweeps" / "s"
    log = tmp_path / "first.log"
    first = processes.start([sys.executable, str(RECORDING_STARTS), str(records), *args], log=log, env=sweep_env(),
                            cwd=tmp_path)
    deadline = time.monotonic() + SWEEP_TIMEOUT_S

    def one_done_one_checkpointed_mid_trial() -> bool:
        """In the state --resume restores (a file read per poll): one sample at its last epoch, the other (one at
        a time, so the first has ended) past its first checkpoint and short of its last epoch."""
        reached = sorted(epoch for _, epoch in tune_state_epochs(folder))
        return len(reached) == 2 and 1 <= reached[0] < epochs == reached[1]

    while not one_done_one_checkpointed_mid_trial():
        assert first.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() < deadline, f"no sample checkpointed mid-sweep in {SWEEP_TIMEOUT_S} s"
        time.sleep(0.2)
    at_kill = [(float(config["optim.lr"]), epoch) for config, epoch in tune_state_epochs(folder)]

    def epoch_at_kill(run) -> int:  # MLflow may round the logged value
        (epoch,) = (e for lr, e in at_kill if math.isclose(lr, float(run.data.params["optim.lr"]), rel_tol=1e-5))
        return epoch

    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    if not wait_pg_gone(first.pid, timeout=10):
        os.killpg(first.pid, signal.SIGKILL)
        assert wait_pg_gone(first.pid)
    kill_marked(first.marker)
    client, _, before = runs_of(tmp_path, "gsf-test-random")
    lr_before = {r.info.run_id: r.data.params["optim.lr"] for r in before}
    assert len(lr_before) == 2
    finished = next(r for r in before if r.info.status == "FINISHED")
    interrupted = next(r for r in before if r.info.status != "FINISHED")
    assert epoch_at_kill(finished) == epochs
    history = [(m.step, m.timestamp) for m in client.get_metric_history(finished.info.run_id, "epoch")]
    (cut,) = attempts(records)[interrupted.data.tags["gsf.slug"]]  # the sample's own record of its attempt
    assert cut["start_epoch"] == 1 and cut["epochs"] == list(range(1, len(cut["epochs"]) + 1))
    checkpointed = epoch_at_kill(interrupted)
    assert checkpointed <= len(cut["epochs"]) < epochs, "the sample had finished before the kill"

    log = tmp_path / "resume.log"
    finish(processes.start([sys.executable, str(RECORDING_STARTS), str(records), *args, "--resume"], log=log,
                           env=sweep_env(), cwd=tmp_path), log)
    client, parents, children = runs_of(tmp_path, "gsf-test-random")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.info.run_id: r.data.params["optim.lr"] for r in children} == lr_before  # same runs, same draws
    assert {r.info.status for r in children} == {"FINISHED"}
    assert all(epochs_logged(client, run) == list(range(1, epochs + 1)) for run in children)
    assert [(m.step, m.timestamp) for m in client.get_metric_history(finished.info.run_id, "epoch")] == history
    assert_sampled_runs(children, key="optim.lr", bounds=LR_BOUNDS)
    # Tune made no new trial: the finished sample was not rerun, and the interrupted one continued from its
    # checkpoint (at least the one in the state at the kill), not from epoch 1
    recorded = attempts(records)
    assert sorted(recorded) == sorted(r.data.tags["gsf.slug"] for r in children)
    assert [(a["start_epoch"], a["epochs"]) for a in recorded[finished.data.tags["gsf.slug"]]] == [
        (1, list(range(1, epochs + 1)))]
    again, resumed = recorded[interrupted.data.tags["gsf.slug"]]
    assert again == cut
    assert checkpointed + 1 <= resumed["start_epoch"] <= len(cut["epochs"]) + 1, (checkpointed, cut, resumed)
    assert resumed["epochs"] == list(range(resumed["start_epoch"], epochs + 1))
    assert len(list(folder.glob("*/result.json"))) == 2  # two trial folders: no third sample was drawn
    assert staging_left(tmp_path) == []


@pytest.mark.slow
def test_optuna_under_asha_stops_the_sample_worse_at_its_rung_and_runs_the_others_to_the_end(asha_sweep):
    from test_sweep import epochs_logged, runs_of

    text = (asha_sweep / "sweep.log").read_text()
    assert "3 grid points x 1 sample = 3 trials (optuna search over optim.weight_decay" in text
    client, parents, children = runs_of(asha_sweep, "gsf-test-asha")
    assert len(parents) == 1 and parents[0].data.params["num_trials"] == "3"
    assert len(children) == 3 and {r.info.status for r in children} == {"FINISHED"}
    assert_sampled_runs(children, key="optim.weight_decay", bounds=WD_BOUNDS)
    by_lr = {float(r.data.params["optim.lr"]): r for r in children}
    loss_at_rung = {lr: next(m.value for m in client.get_metric_history(r.info.run_id, "val_loss") if m.step == 1)
                    for lr, r in by_lr.items()}
    worse = by_lr[30.0]  # worse at the rung than every trial that went on, and stopped there
    assert worse.data.tags.get("gsf.stopped_early") == "true" and worse.data.tags["gsf.stopped_at_epoch"] == "1"
    assert epochs_logged(client, worse) == [1] and "final_val_top1" not in worse.data.metrics
    assert all(loss_at_rung[30.0] > loss_at_rung[lr] for lr in (0.01, 1.0)), loss_at_rung
    for lr in (0.01, 1.0):  # the better ones went on to their last epoch
        assert "gsf.stopped_early" not in by_lr[lr].data.tags
        assert epochs_logged(client, by_lr[lr]) == [1, 2] and "final_val_top1" in by_lr[lr].data.metrics

"""Run a grid with Ray Tune: one engine run per trial, reported to Tune and MLflow every epoch.

The driver (:func:`run_sweep`) resolves and checks every trial, measures its complexity, opens the sweep's
MLflow parent run and hands Tune one trial per grid point. The trainable (:func:`train_trial`) runs
:func:`gsf.engine.train` with a callback that, after each epoch, reports the metrics with a checkpoint (a
copy of the engine's output folder) to Tune and logs them to the trial's MLflow child run.

Fault tolerance:

- a failed trial is retried ``tune.max_failures`` times, each from its last Tune checkpoint: the trainable
  copies the checkpoint back into the engine's folder and resumes the engine exactly;
- a driver that died is resumed with ``--resume`` (``Tuner.restore(..., resume_errored=True)``): finished
  trials are kept, unfinished ones continue from their checkpoints; runs it left RUNNING are marked KILLED
  first and set RUNNING again by the trial that continues them;
- a trial's MLflow run is found by sweep id + config hash, so a retry never makes a duplicate, and epochs
  already logged are never logged twice (those missing are back-filled from the checkpoint's history).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gsf.errors import GSFConfigError, GSFError

log = logging.getLogger(__name__)

# Fault injection for tests: the first attempt of every trial raises after this epoch was reported.
FAIL_ONCE_ENV = "GSF_SWEEP_FAIL_ONCE_AT_EPOCH"
SWEEP_STATE = "gsf_sweep.json"
HISTORY = "history.json"


class InjectedFailure(RuntimeError):
    """Raised once per trial when GSF_SWEEP_FAIL_ONCE_AT_EPOCH is set (tests of the retry path)."""


@dataclass
class SweepOptions:
    address: str | None = None
    tracking_uri: str | None = None
    storage: str | Path = "results/sweeps"
    name: str | None = None
    resume: bool = False
    max_concurrent: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    overrides: Mapping[str, Any] | None = None
    verbose: int = 1


# --- trial identity (shared by the driver and the trainable) -----------------------------------------

def trial_identity(context: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial Tune scheduled (``config``: its slug and any sampled values) as a full spec: resolved config,
    slug (with the sampled values), config hash and axis values."""
    from experiments.grid import apply_overrides, config_hash, format_value, slug_names

    spec = dict(context["trials"][config["trial"]])
    sampled = {k: v for k, v in config.items() if k != "trial"}
    if sampled:
        resolved = apply_overrides(spec["config"], sampled, source=f"trial {spec['slug']} sampled {sampled}",
                                   check=False)
        spec["config"] = resolved.to_dict()
        spec["config_hash"] = config_hash(spec["config"])
        names = slug_names(sampled)
        spec["slug"] = spec["slug"] + "," + ",".join(f"{names[k]}={format_value(v)}" for k, v in sampled.items())
        spec["axes"] = {**spec["axes"], **sampled}
    return spec


def _flat(config_dict: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in config_dict.items() for key, value in values.items()}


def _copy_tree(src: Path, dst: Path, *, skip: tuple[str, ...] = ()) -> None:
    """Copy ``src`` into ``dst``, hard-linking files where possible (checkpoints can be large)."""
    for path in src.rglob("*"):
        relative = path.relative_to(src)
        if relative.parts and relative.parts[0] in skip:
            continue
        target = dst / relative
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


# --- the trainable -----------------------------------------------------------------------------------

STAGING_PATTERN = re.compile(r"ckpt\d{4}_\w+")


def remove_staging_folders(trial_dir: Path) -> list[Path]:
    """Delete the ``ckpt<epoch>_*`` checkpoint staging folders that earlier versions of the reporter made in a
    trial folder and an attempt killed mid-report could leave behind. Returns the folders removed."""
    removed = []
    if trial_dir.is_dir():
        for path in trial_dir.iterdir():
            if path.is_dir() and not path.is_symlink() and STAGING_PATTERN.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


class _TrialReporter:
    """Engine callback: report each epoch to Tune (with a checkpoint) and to the trial's MLflow run."""

    def __init__(self, *, out_dir: Path, mlflow_client, run_id: str, history: list[dict], logged: set[int],
                 fail_at: int | None, fail_marker: Path | None):
        self.out_dir = out_dir
        self.client = mlflow_client
        self.run_id = run_id
        self.history = history
        self.logged = logged
        self.fail_at = fail_at
        self.fail_marker = fail_marker
        self.last_val: dict[str, float] = {}
        self.total_epochs: int | None = None

    # Engine Callback interface (duck-typed so this module imports without the engine).
    def on_train_start(self, config, out_dir, start_epoch) -> None:
        self.total_epochs = int(config.optim.epochs)
        remove_staging_folders(self.out_dir.parent)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint_path: Path) -> None:
        from ray import tune

        from experiments import tracking
        from experiments.tune_search import TOTAL_EPOCHS

        self.history.append(dict(metrics))
        (self.out_dir / HISTORY).write_text(json.dumps(self.history), encoding="utf-8")
        # Tune sees validation metrics carried forward between validation epochs, so a scheduler always
        # finds its metric; MLflow gets exactly what the engine measured.
        self.last_val.update({k: v for k, v in metrics.items() if k.startswith(("val_", "best_"))})
        # The checkpoint is the engine folder itself: tune.report copies it to the trial's storage before it
        # returns (nothing writes to it meanwhile), so no staging copy is made that could be left behind or
        # swept into storage half-deleted by the driver's sync of the trial folder. A trial a scheduler stops
        # here never returns (Tune exits its thread inside tune.report): the driver's callback logs this epoch
        # to MLflow from the checkpoint's history.
        tune.report({**self.last_val, **metrics, TOTAL_EPOCHS: self.total_epochs},
                    checkpoint=tune.Checkpoint.from_directory(str(self.out_dir)))
        if epoch not in self.logged:
            tracking.log_metrics(self.client, self.run_id, metrics, step=epoch)
            self.logged.add(epoch)
        if self.fail_at is not None and epoch == self.fail_at and not self.fail_marker.exists():
            self.fail_marker.parent.mkdir(parents=True, exist_ok=True)
            self.fail_marker.write_text(f"failed once after epoch {epoch}\n", encoding="utf-8")
            raise InjectedFailure(f"injected failure after epoch {epoch} ({FAIL_ONCE_ENV})")

    def on_train_end(self, result: dict[str, float]) -> None:
        pass


def train_trial(config: dict, context: dict) -> None:
    """Ray Tune function trainable: one engine run for the trial in ``config``, in its MLflow child run."""
    from ray import tune

    from experiments import tracking
    from gsf.engine import TrainConfig, train

    spec = trial_identity(context, config)
    trial_dir = Path(tune.get_context().get_trial_dir())
    out_dir = trial_dir / "engine"
    history: list[dict] = []
    resume = False
    checkpoint = tune.get_checkpoint()
    if out_dir.exists():
        shutil.rmtree(out_dir)  # whatever an earlier attempt left: the Tune checkpoint is the truth
    out_dir.mkdir(parents=True)
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            _copy_tree(Path(folder), out_dir)
        if (out_dir / HISTORY).is_file():
            history = json.loads((out_dir / HISTORY).read_text(encoding="utf-8"))
        resume = (out_dir / "checkpoints" / "last.pt").is_file()

    mlflow_client = tracking.client(context["tracking_uri"])
    tags = tracking.trial_tags(slug=spec["slug"], config_hash=spec["config_hash"], grid=context["grid"],
                               table=context["table"], sweep_id=context["sweep_id"], seed=spec["seed"],
                               code=context["code_version"], parent_run_id=context["parent_run_id"],
                               axes=spec["axes"])
    run_id, _ = tracking.open_trial_run(mlflow_client, context["experiment_id"], tags=tags,
                                        params=_flat(spec["config"]), complexity=spec["complexity"])
    try:
        logged = tracking.logged_steps(mlflow_client, run_id)
        for metrics in history:  # epochs the checkpoint knows but MLflow missed (a crash in between)
            epoch = int(metrics["epoch"])
            if epoch not in logged:
                tracking.log_metrics(mlflow_client, run_id, metrics, step=epoch)
                logged.add(epoch)
        fail_at = context.get("fail_once_at_epoch")
        marker = Path(context["marker_dir"]) / f"failed_once_{spec['config_hash'][:16]}" if fail_at else None
        reporter = _TrialReporter(out_dir=out_dir, mlflow_client=mlflow_client, run_id=run_id, history=history,
                                  logged=logged, fail_at=fail_at, fail_marker=marker)
        result = train(TrainConfig.from_dict(spec["config"]), out_dir=out_dir, resume=resume, callbacks=[reporter])
        final = dict(result)
        if "final_val_mean_class_acc" not in final:
            last_val = [m for m in history if "val_mean_class_acc" in m]
            if last_val:
                final["final_val_mean_class_acc"] = last_val[-1]["val_mean_class_acc"]
        last = history[-1] if history else {}
        # best_val_top1/best_epoch were logged with the last epoch already: no second entry at that step
        tracking.log_metrics(mlflow_client, run_id, {k: final[k] for k in tracking.FINAL_METRICS
                                                     if k in final and last.get(k) != final[k]},
                             step=int(last.get("epoch", 0)))
        _log_artifacts(mlflow_client, run_id, out_dir)
        mlflow_client.set_terminated(run_id, status="FINISHED")
    except SystemExit:
        # Tune ends a trial it stopped (an ASHA rung) with sys.exit inside tune.report; the driver's callback has
        # already closed its run as FINISHED, tagged gsf.stopped_early.
        raise
    except BaseException:
        try:
            mlflow_client.set_terminated(run_id, status="FAILED")
        except Exception:  # the tracking server is down too: the driver marks it
            log.exception("could not mark MLflow run %s FAILED", run_id)
        raise


def _log_artifacts(mlflow_client, run_id: str, out_dir: Path) -> None:
    if (out_dir / "config.yaml").is_file():
        mlflow_client.log_artifact(run_id, str(out_dir / "config.yaml"))
    if (out_dir / "scores").is_dir():
        mlflow_client.log_artifacts(run_id, str(out_dir / "scores"), artifact_path="scores")


# --- driver-side bookkeeping -------------------------------------------------------------------------

STATE_BACKUP_DIR = ".gsf-state-backup"
STATE_BACKUP_EVERY_S = 2.0


def _tune_state_files(sweep_dir: Path) -> list[Path]:
    """Tune's experiment state files in a sweep folder: JSON, rewritten in place at each snapshot. (The search
    algorithm's ``*-state-*.json`` are pickles despite their name, and not checked here.)"""
    return sorted(sweep_dir.glob("experiment_state-*.json"))


def _complete_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def backup_tune_state(sweep_dir: Path) -> None:
    """Keep the last complete copy of each of Tune's state files under ``.gsf-state-backup/``.

    Tune rewrites its experiment state in place; a driver killed during that write leaves a cut-off file,
    from which ``Tuner.restore`` cannot resume (it silently restarts the whole experiment instead).
    """
    backup = sweep_dir / STATE_BACKUP_DIR
    for path in _tune_state_files(sweep_dir):
        target = backup / path.name
        try:
            if target.exists() and target.stat().st_mtime_ns >= path.stat().st_mtime_ns:
                continue
            backup.mkdir(exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(path, partial)  # then checked: the copy, not the file Tune may be rewriting
            if _complete_json(partial):
                os.replace(partial, target)
            else:
                partial.unlink(missing_ok=True)
        except OSError:  # bookkeeping must never take the sweep down
            log.exception("could not back up Tune's state file %s", path)


def repair_tune_state(sweep_dir: Path) -> list[str]:
    """Before ``Tuner.restore``: put back the last complete copy of any Tune state file a killed driver left
    cut off. Returns the names repaired; raises when a file is cut off and no complete copy exists."""
    repaired = []
    for path in _tune_state_files(sweep_dir):
        if _complete_json(path):
            continue
        copy = sweep_dir / STATE_BACKUP_DIR / path.name
        if not _complete_json(copy):
            raise GSFError(f"Tune's state file {path} is cut off (the driver was killed while writing it) and "
                           f"there is no complete copy in {copy.parent}: the sweep cannot be resumed from it; "
                           f"start a new sweep (without --resume, or with another --name)")
        shutil.copyfile(copy, path)
        repaired.append(path.name)
    return repaired


def _tune_callback(context: dict):
    """A Tune callback on the driver that closes MLflow runs the trainable could not: a trial stopped early
    by the scheduler ends FINISHED (tagged ``gsf.stopped_early``), one that errored for good ends FAILED.
    Every few seconds it also keeps a complete copy of Tune's state files (:func:`backup_tune_state`)."""
    from ray import tune

    from experiments import tracking

    class _Closer(tune.Callback):
        def __init__(self):
            super().__init__()
            self._last_backup = float("-inf")

        def _close(self, trial, status: str, extra_tags: dict | None = None, *, backfill: bool = False) -> None:
            try:
                spec = trial_identity(context, trial.config)
                mlflow_client = tracking.client(context["tracking_uri"])
                run = tracking.find_trial_run(mlflow_client, context["experiment_id"], sweep_id=context["sweep_id"],
                                              config_hash=spec["config_hash"])
                if run is None or run.info.status not in ("RUNNING", "SCHEDULED"):
                    return
                if backfill:
                    _log_missing_epochs(mlflow_client, run.info.run_id, trial.checkpoint)
                for key, value in (extra_tags or {}).items():
                    mlflow_client.set_tag(run.info.run_id, key, value)
                mlflow_client.set_terminated(run.info.run_id, status=status)
            except Exception:  # bookkeeping must never take the sweep down
                log.exception("could not close the MLflow run of trial %s", trial)

        def on_trial_complete(self, iteration, trials, trial, **info):
            # Called before Tune stops the trial's actor: a trial the scheduler stopped is parked in tune.report
            # of the epoch it was judged on, not yet in MLflow (its checkpoint has it); one that ran to its end
            # has closed its run already.
            tags = {"gsf.stopped_early": "true"}
            epoch = (trial.last_result or {}).get("epoch")
            if epoch is not None:
                tags["gsf.stopped_at_epoch"] = str(int(epoch))
            self._close(trial, "FINISHED", tags, backfill=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._close(trial, "FAILED")

        def on_step_end(self, iteration, trials, **info):
            now = time.monotonic()
            if now - self._last_backup >= STATE_BACKUP_EVERY_S:
                self._last_backup = now
                backup_tune_state(Path(context["sweep_dir"]))

    return _Closer()


def _log_missing_epochs(mlflow_client, run_id: str, checkpoint) -> None:
    """Log the epochs of a Tune checkpoint's history that the trial's MLflow run lacks (the epoch a scheduler
    stopped it on)."""
    from experiments import tracking

    if checkpoint is None:
        return
    try:  # that one small file, not the whole checkpoint (storage may be remote)
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{HISTORY}") as stream:
            history = json.loads(stream.read())
    except (FileNotFoundError, OSError):
        return
    logged = tracking.logged_steps(mlflow_client, run_id)
    for metrics in history:
        if int(metrics["epoch"]) not in logged:
            tracking.log_metrics(mlflow_client, run_id, metrics, step=int(metrics["epoch"]))


def start_ray(address: str | None, *, num_cpus: int | None = None) -> str | None:
    """Connect to ``address`` (``auto``, ``host:port``, ``ray://...``) or start a local Ray on 127.0.0.1 with
    no dashboard and token auth off. Returns the temp folder of a local Ray (for cleanup), else None."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # One checkpoint per epoch is the design; Tune's warning about frequent state snapshots is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address:
        ray.init(address=address, log_to_driver=True)
        return None
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp_dir = tempfile.mkdtemp(prefix="gsfray", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Workers import this package: put the checkout on their path (a cluster installs it on every node).
    repo = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
             log_to_driver=True, runtime_env={"env_vars": {"PYTHONPATH": path}})
    return temp_dir


def _sweep_dir(storage: Path, grid_name: str, name: str | None, resume: bool) -> Path:
    if name:
        return storage / name
    if resume:
        candidates = sorted((p for p in storage.glob(f"{grid_name}-*") if (p / SWEEP_STATE).is_file()),
                            key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise GSFConfigError(f"--resume: no sweep of grid {grid_name!r} under {storage} (pass --name)")
        return candidates[-1]
    return storage / f"{grid_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _absolute_root(config_dict: dict) -> dict:
    root = config_dict["data"].get("root")
    if root and not Path(root).is_absolute():
        config_dict["data"]["root"] = str(Path(root).resolve())
    return config_dict


def prepare_trials(grid, overrides: Mapping[str, Any] | None) -> dict[str, dict]:
    """Resolve and check every trial (data must exist) and measure its complexity: slug -> spec."""
    from experiments.grid import axis_tags, complexity_of, config_hash, resolve

    extra = dict(overrides or {})
    resolved = resolve(grid, extra=extra)
    cache: dict = {}
    specs = {}
    for item in resolved:
        config_dict = _absolute_root(item.config_dict)
        if not Path(config_dict["data"]["root"]).is_dir():
            raise GSFConfigError(f"grid {grid.path}, trial {item.slug}: data.root={config_dict['data']['root']!r} "
                                 "is not an existing folder (pass --set data.root=PATH)")
        specs[item.slug] = {"slug": item.slug, "seed": item.trial.seed, "config": config_dict,
                            "config_hash": config_hash(config_dict), "axes": axis_tags(grid, config_dict),
                            "complexity": complexity_of(config_dict, cache=cache).as_dict()}
    return specs


def _search_space(grid) -> dict[str, Any]:
    """Tune domains of the grid's sampled keys (random search); empty without ``tune.search``."""
    from experiments.tune_search import random_space

    return random_space(grid.tune.search["space"]) if grid.tune.search else {}


def _make_tuner(grid, context: dict, sweep_dir: Path, options: SweepOptions):
    """The Tuner of a sweep: one trial per grid point, or ``num_samples`` sampled trials per grid point with
    ``tune.search`` (random: the points crossed with independent draws; optuna: one seeded TPE study handing
    the points out in turn), under ASHA with ``tune.scheduler``."""
    from ray import tune

    from experiments.grid import planned_trials

    slugs = list(context["trials"])
    cpus = options.cpus_per_trial or grid.resources.cpus_per_trial
    gpus = options.gpus_per_trial if options.gpus_per_trial is not None else grid.resources.gpus_per_trial
    trainable = tune.with_resources(tune.with_parameters(train_trial, context=context), {"cpu": cpus, "gpu": gpus})
    search = grid.tune.search
    scheduler = None
    if grid.tune.scheduler:
        from experiments.tune_search import make_asha

        epochs = max(s["config"]["optim"]["epochs"] for s in context["trials"].values())
        scheduler = make_asha(grid.tune.scheduler, metric=grid.tune.metric, mode=grid.tune.mode, epochs=epochs)
    search_alg, num_samples = None, 1
    param_space: dict[str, Any] = {"trial": tune.grid_search(slugs)}
    if search and search["algorithm"] == "optuna":
        try:
            from experiments.tune_search import make_optuna

            search_alg = make_optuna(slugs, search["space"], metric=grid.tune.metric, mode=grid.tune.mode)
        except ImportError as err:
            raise GSFConfigError(f"grid {grid.path}: tune.search.algorithm=optuna needs the optuna package "
                                 f"(pip install optuna; {err})") from err
        # Optuna cannot enumerate a grid: its space hands out the grid points; Tune asks it for every trial.
        param_space = {}
        num_samples = planned_trials(grid, len(slugs))
    concurrent = options.max_concurrent or grid.resources.max_concurrent
    if search and search["algorithm"] == "random":
        from experiments.tune_search import make_random

        param_space.update(_search_space(grid))
        num_samples = search["num_samples"]  # per grid point: Tune repeats the whole grid_search
        search_alg, concurrent = make_random(max_concurrent=concurrent), None  # the generator limits itself
    tune_config = tune.TuneConfig(
        # Metric and mode live in the scheduler and the searcher; Tune checks each report carries the metric.
        scheduler=scheduler, search_alg=search_alg, num_samples=num_samples,
        max_concurrent_trials=concurrent, trial_name_creator=_trial_name, trial_dirname_creator=_trial_dirname)
    run_config = tune.RunConfig(
        name=sweep_dir.name, storage_path=str(sweep_dir.parent),
        failure_config=tune.FailureConfig(max_failures=grid.tune.max_failures),
        # Two, not one: Tune deletes the older checkpoint when a newer one registers, and a driver killed
        # before its next state snapshot would otherwise resume from a checkpoint that is gone
        # ("Could not recover from checkpoint as it does not exist on storage anymore", seen in CI).
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[_tune_callback(context)], verbose=options.verbose)
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config), trainable


def _trial_name(trial) -> str:
    extra = ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in trial.config.items() if k != "trial")
    return trial.config["trial"] + (f",{extra}" if extra else "")


def _trial_dirname(trial) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", f"{trial.trial_id}_{_trial_name(trial)}")[:200]


def run_sweep(grid_path: str | Path, options: SweepOptions) -> int:
    """Run (or resume) a sweep of the grid at ``grid_path``; returns 0 when every trial finished."""
    import ray

    from experiments import tracking
    from experiments.grid import describe_tune, load_grid, planned_trials

    grid = load_grid(grid_path)
    storage = Path(options.storage).resolve()
    sweep_dir = _sweep_dir(storage, grid.name, options.name, options.resume)
    state_path = sweep_dir / SWEEP_STATE
    if options.resume:
        if not state_path.is_file():
            raise GSFConfigError(f"--resume: {sweep_dir} holds no sweep ({SWEEP_STATE} missing)")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        overrides = state["overrides"]
        uri = options.tracking_uri or state["tracking_uri"]
    else:
        if sweep_dir.exists():
            raise GSFConfigError(f"sweep folder {sweep_dir} exists: pass --resume to continue it or another --name")
        state = None
        overrides = dict(options.overrides or {})
        uri = options.tracking_uri or tracking.default_tracking_uri()
    tracking.preflight(uri)
    specs = prepare_trials(grid, overrides)
    world_size = _apply_data_parallel(grid, options, specs)
    mlflow_client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(mlflow_client, grid.study, uri=uri, description=grid.description)
    if state is None:
        sweep_id = f"{sweep_dir.name}-{uuid.uuid4().hex[:8]}"
        code = tracking.code_version()
    else:
        sweep_id, code = state["sweep_id"], state["code_version"]
        orphans = tracking.mark_orphans(mlflow_client, experiment_id, sweep_id)
        if orphans:
            print(f"gsf sweep: marked {len(orphans)} run(s) left RUNNING by the previous driver as KILLED")
    parent = tracking.open_sweep_run(mlflow_client, experiment_id, name=sweep_dir.name,
                                     tags=tracking.sweep_tags(grid=grid.name, table=grid.table, sweep_id=sweep_id,
                                                              code=code))
    if state is None:
        mlflow_client.log_param(parent, "grid_file", str(grid.path))
        mlflow_client.log_param(parent, "num_trials", planned_trials(grid, len(specs)))
        sweep_dir.mkdir(parents=True)
        state_path.write_text(json.dumps({"sweep_id": sweep_id, "grid": str(grid.path.resolve()), "tracking_uri": uri,
                                          "overrides": overrides, "code_version": code, "parent_run_id": parent},
                                         indent=2), encoding="utf-8")
    fail_at = os.environ.get(FAIL_ONCE_ENV)
    context = {"trials": specs, "tracking_uri": uri, "experiment_id": experiment_id, "parent_run_id": parent,
               "sweep_id": sweep_id, "grid": grid.name, "table": grid.table, "code_version": code,
               "fail_once_at_epoch": int(fail_at) if fail_at else None, "marker_dir": str(sweep_dir / "faults"),
               "sweep_dir": str(sweep_dir)}
    if world_size > 1:
        print(f"gsf sweep: each trial trains with {world_size} data-parallel (DDP) processes")
    print(f"gsf sweep: {grid.name}: {planned_trials(grid, len(specs))} trials, sweep {sweep_id}, tracking {uri}, "
          f"folder {sweep_dir}")
    for line in describe_tune(grid, len(specs)):
        print(f"gsf sweep: {line}")
    temp_dir = start_ray(options.address)
    status, code, reported = "FAILED", 1, False
    try:
        from ray import tune

        tuner, trainable = _make_tuner(grid, context, sweep_dir, options)
        if options.resume:
            for name in repair_tune_state(sweep_dir):
                print(f"gsf sweep: {name} was cut off when the driver died; restored its last complete copy")
            tuner = tune.Tuner.restore(str(sweep_dir), trainable=trainable, resume_errored=True)
        results = tuner.fit()
        errors = [r for r in results if r.error is not None]
        for result in errors:
            print(f"gsf sweep: trial {result.config.get('trial')} failed: {type(result.error).__name__}: "
                  f"{_first_line(result.error)}")
        status = "FINISHED" if not errors else "FAILED"
        print(f"gsf sweep: {len(results) - len(errors)}/{len(results)} trials finished; MLflow experiment "
              f"{grid.study!r} ({experiment_id}), parent run {parent}")
        code = 0 if not errors else 1
    finally:
        try:
            mlflow_client.set_terminated(parent, status=status)
        except Exception as err:  # the tracking server went away: say so instead of a traceback
            code, reported = 1, True
            print(f"gsf sweep: error: MLflow tracking server {uri} cannot be reached to close the sweep's run "
                  f"{parent} ({type(err).__name__}); checkpoints are kept under {sweep_dir}: bring the server "
                  f"back and rerun with --resume --name {sweep_dir.name}", flush=True)
        finally:
            ray.shutdown()
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)
    if code and not reported and _tracking_failed(uri):
        print(f"gsf sweep: MLflow tracking server {uri} does not answer: bring it back and rerun with --resume "
              f"--name {sweep_dir.name} (trials continue from their checkpoints)", flush=True)
    return code


def _apply_data_parallel(grid, options: SweepOptions, specs: dict[str, dict]) -> int:
    """Processes per trial (``resources.data_parallel: ddp``: ``workers_per_trial``, or one per GPU of
    ``--gpus-per-trial`` when given), written into every trial's ``runtime.world_size``, so its config,
    hash and MLflow params say how it was trained and the engine launches that many processes: rank 0 in
    the trial's own process, reporting to Tune and MLflow, the others spawned beside it."""
    from experiments.grid import config_hash

    resources = grid.resources
    world_size = resources.workers_per_trial if resources.data_parallel == "ddp" else 1
    gpus = options.gpus_per_trial
    if resources.data_parallel == "ddp" and resources.gpus_per_trial > 0 and gpus is not None:
        if gpus < 2 or gpus != int(gpus):
            raise GSFConfigError(f"--gpus-per-trial {gpus}: grid {grid.path} trains each trial with DDP, one process "
                                 "per GPU: give a whole number >= 2")
        world_size = int(gpus)
    for spec in specs.values():
        runtime = spec["config"]["runtime"]
        asked = runtime.get("world_size", 1)
        if asked == world_size:
            continue
        if asked != 1:
            raise GSFConfigError(f"grid {grid.path}, trial {spec['slug']}: runtime.world_size={asked} but the grid's "
                                 f"resources give {world_size} process(es) per trial; set resources.data_parallel: "
                                 "ddp with workers_per_trial (CPU) or gpus_per_trial instead")
        runtime["world_size"] = world_size
        spec["config_hash"] = config_hash(spec["config"])
    return world_size


def _first_line(error: BaseException) -> str:
    """The error's message without the remote traceback Ray appends."""
    text = str(error).strip()
    return text.splitlines()[-1] if "Traceback" in text else text


def _tracking_failed(uri: str) -> bool:
    from experiments import tracking

    try:
        tracking.preflight(uri, timeout=2)
    except GSFError:
        return True
    return False


def sweep_error(err: GSFError) -> str:
    return f"gsf sweep: error: {err}"

"""Run a grid with Ray Tune: one engine run per trial, reported to Tune and MLflow every epoch.

:func:`run_sweep` is the pipeline of a sweep, one named step after another, each taking the previous step's
value: the grid is loaded, validated, expanded and resolved (:mod:`experiments.grid`), its trials planned
(:func:`experiments.trials.plan_trials`), the sweep's folder found (:func:`locate_sweep`), its MLflow parent
run opened (:func:`open_sweep`, giving the :class:`SweepContext` every trial reads) and the trials run
(:func:`run_trials`). The trainable (:func:`train_trial`) runs :func:`gsf.engine.train` with a callback that,
after each epoch, reports the metrics with a checkpoint (the engine's output folder) to Tune and logs them to
the trial's MLflow child run. Names in MLflow come from :mod:`gsf.mlflow_schema`.

Fault tolerance:

- a failed trial is retried ``tune.max_failures`` times, each from its last Tune checkpoint: the trainable
  copies the checkpoint back into the engine's folder and resumes the engine exactly;
- a driver that died is resumed with ``--resume`` (``Tuner.restore(..., resume_errored=True)``): finished
  trials are kept, unfinished ones continue from their checkpoints; runs it left RUNNING are marked KILLED
  first and set RUNNING again by the trial that continues them; Tune's state files cut off by the kill are
  put back first (:mod:`experiments.tune_state`);
- a trial's MLflow run is found by sweep id + config hash, so a retry never makes a duplicate, and epochs
  already logged are never logged twice (those missing are back-filled from the checkpoint's history);
- the data the trials read are fingerprinted by the driver (:mod:`gsf.data.fingerprint`; each trial's MLflow
  dataset input) and kept in the sweep's folder: ``--resume`` on data whose digest changed is refused, naming
  what changed, before any trial runs (:func:`refuse_changed_data`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments.grid.expand import describe_tune, expand, planned_trials
from experiments.grid.load import load_grid
from experiments.grid.resolve import resolve
from experiments.grid.types import Grid
from experiments.grid.validate import validate_grid
from experiments.trials import TrialSpec, plan_trials, with_sampled
from experiments.tune_state import STATE_BACKUP_EVERY_S, backup_tune_state, repair_tune_state
from gsf import mlflow_schema as schema
from gsf.errors import GSFConfigError, GSFDataError, GSFError

log = logging.getLogger(__name__)

SWEEP_STATE = "gsf_sweep.json"
HISTORY = "history.json"
DATA_FINGERPRINTS = "data_fingerprints.json"  # in a sweep's folder: the fingerprint of each data set it reads
# Extra engine callbacks of a trial, made in the trial's process from its spec (after the reporter, so they
# see each epoch once Tune and MLflow have it). Tests inject faults with it; it must pickle (Tune ships it).
TrialCallbacks = Callable[[TrialSpec], Sequence[Any]]


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
    trial_callbacks: TrialCallbacks | None = None
    register_best: str | None = None  # registered model name: the best trial's model becomes a new version
    seeds: Sequence[int] | None = None  # run these seeds instead of the grid's ``seeds``
    log_models: bool = True  # each finished trial's best checkpoint as an MLflow (ONNX) model


@dataclass(frozen=True)
class SweepFolder:
    """Where a sweep keeps its state and Tune checkpoints; ``state``: its saved :data:`SWEEP_STATE` when
    resumed (None for a new sweep), ``overrides`` and ``tracking_uri`` as the sweep was started with."""

    path: Path
    state: dict | None
    overrides: dict[str, Any]
    tracking_uri: str
    seeds: list[int] | None = None  # the seeds the sweep runs in place of the grid's (``--seeds``)


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep reads (shipped to each trial by Tune: plain, picklable values)."""

    trials: dict[str, TrialSpec]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_id: str
    grid: str
    table: str
    code_version: str
    sweep_dir: Path
    trial_callbacks: TrialCallbacks | None = None
    log_models: bool = True
    # data-parallel trials: the Ray Train worker group of each (gsf.engine.worker_group.WorkerGroup), else None
    worker_group: Any = None
    # data_key -> DataFingerprint.summary() of the data the trials read (each trial's MLflow dataset input)
    data: dict[str, dict] = dataclasses.field(default_factory=dict)

    def trial_spec(self, config: Mapping[str, Any]) -> TrialSpec:
        """The trial Tune scheduled (``config``: its grid point and any sampled values) as a full spec."""
        return with_sampled(self.trials[config["trial"]], {k: v for k, v in config.items() if k != "trial"})


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy ``src`` into ``dst``, hard-linking files where possible (checkpoints can be large)."""
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
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

STATUS_COLUMNS = ("epoch", "val_top1", "best_val_top1", "train_loss")


def status_columns_first(report: dict[str, float], history: list[dict]) -> dict[str, float]:
    """``report`` with :data:`STATUS_COLUMNS` first, ``best_val_top1`` among them on epochs without validation
    too (the best validation top-1 of ``history`` so far): Ray Tune's status table shows the first four
    metrics of a trial's last result, in their order."""
    seen = [float(h["val_top1"]) for h in history if "val_top1" in h]
    if seen and "best_val_top1" not in report:
        report = {**report, "best_val_top1": max(seen)}
    first = {key: report[key] for key in STATUS_COLUMNS if key in report}
    return {**first, **{k: v for k, v in report.items() if k not in first}}


class _TrialReporter:
    """Engine callback: report each epoch to Tune (with a checkpoint) and to the trial's MLflow run."""

    def __init__(self, *, out_dir: Path, mlflow_client, run_id: str, history: list[dict], logged: set[int],
                 on_ray_train: bool = False, log_model: bool = True):
        self.out_dir = out_dir
        self.log_model = log_model
        self.client = mlflow_client
        self.run_id = run_id
        self.history = history
        self.logged = logged
        self.last_val: dict[str, float] = {}
        self.total_epochs: int | None = None
        # rank 0 of a data-parallel trial's Ray Train worker group: report through Ray Train (which hands the
        # metrics to the trial's Tune session and persists the checkpoint in the sweep's storage)
        self.on_ray_train = on_ray_train

    # Engine Callback interface (duck-typed so this module imports without the engine).
    def on_train_start(self, config, out_dir, start_epoch) -> None:
        self.total_epochs = int(config.optim.epochs)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint_path: Path) -> None:
        from ray import tune

        from experiments import tracking
        from experiments.tune_search import TOTAL_EPOCHS

        self.history.append(dict(metrics))
        (self.out_dir / HISTORY).write_text(json.dumps(self.history), encoding="utf-8")
        # Tune sees validation metrics carried forward between validation epochs, so a scheduler always
        # finds its metric; MLflow gets exactly what the engine measured.
        self.last_val.update({k: v for k, v in metrics.items() if k.startswith(schema.VALIDATION_PREFIXES)})
        # The checkpoint is the engine folder itself: tune.report copies it to the trial's storage before it
        # returns (nothing writes to it meanwhile), so no staging copy is made that could be left behind or
        # swept into storage half-deleted by the driver's sync of the trial folder. A trial a scheduler stops
        # here never returns (Tune exits its thread inside tune.report): the driver's callback logs this epoch
        # to MLflow from the checkpoint's history.
        report = status_columns_first({**self.last_val, **metrics, TOTAL_EPOCHS: self.total_epochs}, self.history)
        if self.on_ray_train:
            import ray.train

            ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(str(self.out_dir)))
        else:
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(str(self.out_dir)))
        if epoch not in self.logged:
            tracking.log_metrics(self.client, self.run_id, metrics, step=epoch)
            self.logged.add(epoch)

    def on_train_end(self, result: dict[str, float]) -> None:
        from experiments import tracking

        last_epoch = int(self.history[-1][schema.EPOCH]) if self.history else 0
        tracking.log_metrics(self.client, self.run_id, _final_metrics(result, self.history), step=last_epoch)
        _log_trial_outputs(self.client, self.run_id, self.out_dir, with_model=self.log_model)


def _restore_engine_folder(out_dir: Path, checkpoint) -> tuple[list[dict], bool]:
    """Make ``out_dir`` the trial's Tune checkpoint (empty without one). Returns the epochs' history it holds
    and whether the engine resumes from it."""
    if out_dir.exists():
        shutil.rmtree(out_dir)  # whatever an earlier attempt left: the Tune checkpoint is the truth
    out_dir.mkdir(parents=True)
    if checkpoint is None:
        return [], False
    with checkpoint.as_directory() as folder:
        _copy_tree(Path(folder), out_dir)
    history = json.loads((out_dir / HISTORY).read_text(encoding="utf-8")) if (out_dir / HISTORY).is_file() else []
    return history, (out_dir / "checkpoints" / "last.pt").is_file()


def _trial_tags(context: SweepContext, spec: TrialSpec, flat_config: Mapping[str, Any]) -> dict[str, str]:
    from experiments import tracking
    from experiments.variant_names import variant_name

    return tracking.trial_tags(slug=spec.slug, variant=variant_name(flat_config), config_hash=spec.config_hash,
                               grid=context.grid, table=context.table, sweep_id=context.sweep_id, seed=spec.seed,
                               code=context.code_version, parent_run_id=context.parent_run_id, axes=spec.axes)


def _log_missing(mlflow_client, run_id: str, history: list[dict]) -> set[int]:
    """Log the epochs of ``history`` the run lacks (a crash between the checkpoint and MLflow); returns the
    epochs now logged."""
    from experiments import tracking

    logged = tracking.logged_steps(mlflow_client, run_id)
    for metrics in history:
        epoch = int(metrics[schema.EPOCH])
        if epoch not in logged:
            tracking.log_metrics(mlflow_client, run_id, metrics, step=epoch)
            logged.add(epoch)
    return logged


def _final_metrics(result: Mapping[str, Any], history: list[dict]) -> dict[str, float]:
    """The result keys logged once at the trial's end (:func:`gsf.mlflow_schema.is_final_metric`: the final
    validation metrics and every ``test_*`` protocol metric), but those already logged at the last epoch."""
    final = dict(result)
    if schema.FINAL_VAL_MEAN_CLASS_ACC not in final:
        last_val = [m for m in history if schema.VAL_MEAN_CLASS_ACC in m]
        if last_val:
            final[schema.FINAL_VAL_MEAN_CLASS_ACC] = last_val[-1][schema.VAL_MEAN_CLASS_ACC]
    last = history[-1] if history else {}
    # best_val_top1/best_epoch were logged with the last epoch already: no second entry at that step
    return {k: v for k, v in final.items() if schema.is_final_metric(k) and last.get(k) != v}


def _log_trial_outputs(mlflow_client, run_id: str, out_dir: Path, *, with_model: bool) -> None:
    """What a finished trial leaves in its MLflow run beside its metrics: the resolved config and the
    per-video scores, and (``with_model``) the best checkpoint as an MLflow model; the same as a ``gsf train``
    run leaves (:func:`experiments.run_logging.log_run_outputs`)."""
    from experiments.run_logging import log_run_outputs

    log_run_outputs(mlflow_client, run_id, out_dir, with_model=with_model)


def train_trial(config: dict, context: SweepContext) -> None:
    """Ray Tune function trainable: one engine run for the trial in ``config``, in its MLflow child run."""
    from ray import tune

    from experiments import tracking
    from gsf.engine import TrainConfig, train

    spec = context.trial_spec(config)
    if context.worker_group is not None:
        return _train_trial_on_workers(context, spec)
    out_dir = Path(tune.get_context().get_trial_dir()) / "engine"
    history, resume = _restore_engine_folder(out_dir, tune.get_checkpoint())
    train_config = TrainConfig.from_dict(spec.config)
    params = train_config.flat()
    mlflow_client = tracking.client(context.tracking_uri)
    run_id, _ = tracking.open_trial_run(mlflow_client, context.experiment_id, tags=_trial_tags(context, spec, params),
                                        params=params, complexity=spec.complexity)
    with _closing_trial_run(mlflow_client, run_id):
        _log_trial_data(mlflow_client, run_id, context, spec)
        logged = _log_missing(mlflow_client, run_id, history)
        reporter = _TrialReporter(out_dir=out_dir, mlflow_client=mlflow_client, run_id=run_id, history=history,
                                  logged=logged, log_model=context.log_models)
        extra = list(context.trial_callbacks(spec)) if context.trial_callbacks else []
        train(train_config, out_dir=out_dir, resume=resume, callbacks=[reporter, *extra])


def _log_trial_data(mlflow_client, run_id: str, context: SweepContext, spec: TrialSpec) -> None:
    """The trial's data (fingerprinted by the driver) as its MLflow run's dataset input."""
    from experiments.run_logging import log_data_input

    data = context.data.get(data_key(spec.config))
    if data is not None:
        log_data_input(mlflow_client, run_id, data)


@contextlib.contextmanager
def _closing_trial_run(mlflow_client, run_id: str):
    """The trial's MLflow run ends FINISHED when the block returns and FAILED when it raises, but for the
    SystemExit with which Tune ends a trial it stopped (an ASHA rung) inside tune.report: the driver's callback
    has already closed that run as FINISHED, tagged gsf.stopped_early."""
    try:
        yield
    except SystemExit:
        raise
    except BaseException:
        try:
            mlflow_client.set_terminated(run_id, status="FAILED")
        except Exception:  # the tracking server is down too: the driver marks it
            log.exception("could not mark MLflow run %s FAILED", run_id)
        raise
    mlflow_client.set_terminated(run_id, status="FINISHED")


TRAIN_RUNS = "train"  # under the sweep's folder: the Ray Train runs (checkpoints) of data-parallel trials


class _WorkerCallbacks:
    """The engine callbacks of each rank of a data-parallel trial, made in the rank's process: rank 0 reports
    every epoch through Ray Train (its run folder as the checkpoint) and logs it to the trial's MLflow run (the
    epochs it lacks back-filled first, so a restarted worker group logs each epoch once); the other ranks
    only make the report every rank must make."""

    def __init__(self, context: SweepContext, spec: TrialSpec, run_id: str):
        self.context, self.spec, self.run_id = context, spec, run_id

    def __call__(self, rank: int, folder: Path) -> list:
        from experiments import tracking
        from gsf.engine.worker_group import ReportToRayTrain

        # SweepOptions.trial_callbacks, in every rank (the engine calls those not marked every_rank in rank 0 only)
        extra = list(self.context.trial_callbacks(self.spec)) if self.context.trial_callbacks else []
        if rank:
            return [ReportToRayTrain(rank=rank, run_dir=folder, with_checkpoint=False), *extra]
        history = json.loads((folder / HISTORY).read_text(encoding="utf-8")) if (folder / HISTORY).is_file() else []
        mlflow_client = tracking.client(self.context.tracking_uri)
        logged = _log_missing(mlflow_client, self.run_id, history)
        reporter = _TrialReporter(out_dir=folder, mlflow_client=mlflow_client, run_id=self.run_id, history=history,
                                  logged=logged, on_ray_train=True, log_model=self.context.log_models)
        return [reporter, *extra]


def _train_trial_on_workers(context: SweepContext, spec: TrialSpec) -> None:
    """A data-parallel trial: its Ray Train worker group (:func:`gsf.engine.worker_group.fit_worker_group`) run
    from this Tune trial, the metrics reaching Tune through ``TuneReportCallback``. The Train run is named by
    the trial's id under the sweep's storage, so a restarted trial (or a resumed sweep) continues from its
    last checkpoint; a worker (or node) failure restarts the group there, ``tune.max_failures`` times."""
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from experiments import tracking
    from gsf.engine import TrainConfig
    from gsf.engine.worker_group import fit_worker_group

    params = TrainConfig.from_dict(spec.config).flat()
    mlflow_client = tracking.client(context.tracking_uri)
    run_id, _ = tracking.open_trial_run(mlflow_client, context.experiment_id, tags=_trial_tags(context, spec, params),
                                        params=params, complexity=spec.complexity)
    trial = tune.get_context()
    with _closing_trial_run(mlflow_client, run_id):
        _log_trial_data(mlflow_client, run_id, context, spec)
        fit_worker_group(spec.config, Path(trial.get_trial_dir()) / "engine", context.worker_group,
                         storage_path=str(context.sweep_dir / TRAIN_RUNS), name=trial.get_trial_id(),
                         clear_run_dir=True, rank_callbacks=_WorkerCallbacks(context, spec, run_id),
                         run_callbacks=[TuneReportCallback()])


def _worker_group(grid: Grid):
    """The Ray Train worker group of each trial of a data-parallel grid (None for single-process trials)."""
    r = grid.resources
    if r.data_parallel != "ddp":
        return None
    from gsf.engine.worker_group import WorkerGroup

    return WorkerGroup(r.workers_per_trial, cpus_per_worker=r.cpus_per_worker, gpus_per_worker=r.gpus_per_worker,
                       placement=r.placement, max_failures=grid.tune.max_failures)


# --- the driver's Tune callback and Ray ------------------------------------------------------------------

def _tune_callback(context: SweepContext):
    """A Tune callback on the driver that closes MLflow runs the trainable could not: a trial stopped early
    by the scheduler ends FINISHED (tagged :data:`~gsf.mlflow_schema.STOPPED_EARLY`), one that errored for good ends FAILED.
    Every few seconds it also keeps a complete copy of Tune's state files (:func:`backup_tune_state`)."""
    from ray import tune

    from experiments import tracking

    class _Closer(tune.Callback):
        def __init__(self):
            super().__init__()
            self._last_backup = float("-inf")

        def _close(self, trial, status: str, extra_tags: dict | None = None, *, backfill: bool = False) -> None:
            try:
                spec = context.trial_spec(trial.config)
                mlflow_client = tracking.client(context.tracking_uri)
                run = tracking.find_trial_run(mlflow_client, context.experiment_id, sweep_id=context.sweep_id,
                                              config_hash=spec.config_hash)
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
            tags = {schema.STOPPED_EARLY: schema.TRUE}
            epoch = (trial.last_result or {}).get(schema.EPOCH)
            if epoch is not None:
                tags[schema.STOPPED_AT_EPOCH] = str(int(epoch))
            self._close(trial, "FINISHED", tags, backfill=True)

        def on_trial_error(self, iteration, trials, trial, **info):
            self._close(trial, "FAILED")

        def on_step_end(self, iteration, trials, **info):
            now = time.monotonic()
            if now - self._last_backup >= STATE_BACKUP_EVERY_S:
                self._last_backup = now
                backup_tune_state(context.sweep_dir)

    return _Closer()


def _log_missing_epochs(mlflow_client, run_id: str, checkpoint) -> None:
    """Log the epochs of a Tune checkpoint's history that the trial's MLflow run lacks (the epoch a scheduler
    stopped it on)."""
    if checkpoint is None:
        return
    try:  # that one small file, not the whole checkpoint (storage may be remote)
        with checkpoint.filesystem.open_input_stream(f"{checkpoint.path}/{HISTORY}") as stream:
            history = json.loads(stream.read())
    except (FileNotFoundError, OSError):
        return
    _log_missing(mlflow_client, run_id, history)


def start_ray(address: str | None, *, num_cpus: int | None = None) -> str | None:
    """Connect to ``address`` (``auto``, ``host:port``, ``ray://...``) or start a local Ray on 127.0.0.1 with
    no dashboard and token auth off. Returns the temp folder of a local Ray (for cleanup), else None."""
    if not address:
        from gsf.engine.worker_group import local_ray_on_loopback

        local_ray_on_loopback()  # before ray is imported (Ray would register the outward interface)
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # One checkpoint per epoch is the design; Tune's warning about frequent state snapshots is noise here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune adds its CSV, JSON and TensorBoard loggers unless told not to; the tuner passes the first two itself
    # (:func:`_tuner`), so no TensorBoard event files are written and no TensorBoard hint is printed.
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if address:
        ray.init(address=address, log_to_driver=True)
        return None
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp_dir = tempfile.mkdtemp(prefix="gsfray", dir="/tmp")  # short: Ray's socket paths have a length limit
    # Workers import this package: a checkout goes on their path (a cluster installs it on every node).
    from gsf.engine.worker_group import local_workers_pythonpath

    path = local_workers_pythonpath()
    ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
             log_to_driver=True, runtime_env={"env_vars": {"PYTHONPATH": path}} if path else None)
    return temp_dir


# --- the steps of a sweep ----------------------------------------------------------------------------------

def run_sweep(grid_path: str | Path, options: SweepOptions) -> int:
    """Run (or resume) a sweep of the grid at ``grid_path``; returns 0 when every trial finished."""
    if options.register_best and not options.log_models:
        raise GSFConfigError(f"--register-best {options.register_best} needs the trials' models; drop --no-models")
    if not options.address:  # before the grid steps import ray
        from gsf.engine.worker_group import local_ray_on_loopback

        local_ray_on_loopback()
    grid = validate_grid(load_grid(grid_path))
    folder = locate_sweep(grid, options)
    grid = with_seeds(grid, folder.seeds)
    trials = plan_trials(grid, resolve(grid, expand(grid), extra=folder.overrides),
                         gpus_per_trial=options.gpus_per_trial)
    data = fingerprint_trials(trials)
    refuse_changed_data(folder, data)  # --resume on other data: refused before any trial runs
    context = open_sweep(grid, folder, trials, trial_callbacks=options.trial_callbacks, log_models=options.log_models,
                         data=data)
    announce(grid, context)
    return run_trials(grid, context, options)


def data_key(config: Mapping[str, Any]) -> str:
    """Which data a trial reads: data set, root, the splits and ``max_videos`` of its configuration."""
    d = config["data"]
    return f"{d['dataset']}:{d['root']}:{d.get('train_split')},{d.get('val_split')}:{d.get('max_videos')}"


def fingerprint_trials(trials: Mapping[str, TrialSpec]) -> dict[str, Any]:
    """:func:`data_key` -> fresh :class:`gsf.data.fingerprint.DataFingerprint` of each data the trials read."""
    from gsf.engine import TrainConfig
    from gsf.engine.loaders import data_fingerprint

    out: dict[str, Any] = {}
    for spec in trials.values():
        key = data_key(spec.config)
        if key not in out:
            out[key] = data_fingerprint(TrainConfig.from_dict(spec.config))
            log.info("%s", out[key].describe())
    return out


def refuse_changed_data(folder: SweepFolder, data: Mapping[str, Any]) -> None:
    """For ``--resume``: raise :class:`GSFDataError` naming what changed (annotation file, sample counts, the
    samples) when the data the trials read are not those the sweep started on. A sweep started before data
    were fingerprinted is resumed unchecked (said in the log)."""
    if folder.state is None:
        return
    from gsf.data.fingerprint import describe_changes

    saved_file = folder.path / DATA_FINGERPRINTS
    saved = json.loads(saved_file.read_text(encoding="utf-8")) if saved_file.is_file() else folder.state.get("data")
    if not saved:
        log.info("the sweep in %s recorded no data fingerprint: its data are not checked", folder.path)
        return
    problems = []
    for key, fingerprint in data.items():
        before = saved.get(key)
        if before is None and len(saved) == 1 and len(data) == 1:
            before = next(iter(saved.values()))  # one data set, its key (root) spelled differently
        where = f"{fingerprint.dataset} under {fingerprint.root}"
        if before is None:
            problems.append(f"{where}: not read by the sweep when it started")
            continue
        changes = describe_changes(before, fingerprint)
        if changes:
            problems.append(f"{where} (digest {before.get('digest')} -> {fingerprint.digest}): " + "; ".join(changes))
    if problems:
        raise GSFDataError(f"--resume: the data of the sweep in {folder.path} changed since it started, so its "
                           f"trials would not be comparable: {' | '.join(problems)}. Put the data back as they were, "
                           "or start a new sweep (another --name)")


def with_seeds(grid: Grid, seeds: Sequence[int] | None) -> Grid:
    """``grid`` with its ``seeds`` replaced by ``seeds`` (None: as it is), checked again as the file's would be."""
    if seeds is None:
        return grid
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise GSFConfigError(f"--seeds must be distinct integers, got {seeds!r}")
    return validate_grid(dataclasses.replace(grid, seeds=seeds))


def locate_sweep(grid: Grid, options: SweepOptions) -> SweepFolder:
    """The sweep's folder: ``--name``, else the grid's latest sweep for ``--resume`` (its saved state read
    back), else a new ``GRID-YYYYmmdd-HHMMSS``; the tracking store checked reachable."""
    from experiments import tracking

    storage = storage_folder(options.storage)
    path = _sweep_dir(storage, grid.name, options.name, options.resume)
    state_path = path / SWEEP_STATE
    if options.resume:
        if not state_path.is_file():
            raise GSFConfigError(f"--resume: {path} holds no sweep ({SWEEP_STATE} missing)")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        saved_seeds = state.get("seeds")
        if options.seeds is not None and list(options.seeds) != (saved_seeds or grid.seeds):
            raise GSFConfigError(f"--resume: the sweep in {path} runs seeds {saved_seeds or grid.seeds}, not "
                                 f"--seeds {','.join(str(s) for s in options.seeds)}; resume it without --seeds "
                                 "or start another --name")
        folder = SweepFolder(path, state, state["overrides"], options.tracking_uri or state["tracking_uri"],
                             saved_seeds)
    else:
        if path.exists():
            raise GSFConfigError(f"sweep folder {path} exists: pass --resume to continue it or another --name")
        folder = SweepFolder(path, None, dict(options.overrides or {}),
                             options.tracking_uri or tracking.default_tracking_uri(),
                             list(options.seeds) if options.seeds is not None else None)
    tracking.preflight(folder.tracking_uri)
    return folder


def storage_folder(storage: str | Path) -> Path:
    """``--storage`` as the folder the sweep keeps its state, Tune's and Ray Train's checkpoints in: a path (a
    shared file system on a cluster) or a ``file://`` URI. Object stores (``s3://``, ``gs://``) are refused
    with the way round: the sweep's own state and Tune's state repair read local files."""
    from urllib.parse import unquote, urlparse

    text = str(storage)
    scheme = urlparse(text).scheme if "://" in text else ""
    if scheme == "file":
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise GSFConfigError(f"--storage {text}: a file:// URI names a local path (file:///ABS/PATH)")
        return Path(unquote(parsed.path)).resolve()
    if scheme:
        raise GSFConfigError(f"--storage {text}: {scheme}:// storage is not supported yet (the sweep's state "
                             "and Tune's state repair read local files); mount it on every node and pass the "
                             "folder, or use a shared file system")
    return Path(text).resolve()


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


def open_sweep(grid: Grid, folder: SweepFolder, trials: dict[str, TrialSpec], *,
               trial_callbacks: TrialCallbacks | None = None, log_models: bool = True,
               data: Mapping[str, Any] | None = None) -> SweepContext:
    """The sweep's MLflow parent run, opened (a resumed sweep's continued, the runs its dead driver left
    RUNNING marked KILLED), tagged with the grid's baseline; a new sweep's state saved in its folder, with the
    fingerprints ``data`` (:func:`fingerprint_trials`) of the data its trials read."""
    from experiments import tracking

    uri = folder.tracking_uri
    mlflow_client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(mlflow_client, grid.study, uri=uri, description=grid.description)
    if folder.state is None:
        sweep_id, code = f"{folder.path.name}-{uuid.uuid4().hex[:8]}", tracking.code_version()
    else:
        sweep_id, code = folder.state["sweep_id"], folder.state["code_version"]
        orphans = tracking.mark_orphans(mlflow_client, experiment_id, sweep_id)
        if orphans:
            log.info("marked %d run(s) left RUNNING by the previous driver as KILLED", len(orphans))
    tags = tracking.sweep_tags(grid=grid.name, table=grid.table, sweep_id=sweep_id, code=code,
                               baseline=grid.baseline)
    parent = tracking.open_sweep_run(mlflow_client, experiment_id, name=folder.path.name, tags=tags)
    if folder.state is None:
        from experiments.run_logging import log_data_input

        for fingerprint in (data or {}).values():
            log_data_input(mlflow_client, parent, fingerprint.summary())
        mlflow_client.log_param(parent, schema.GRID_FILE_PARAM, str(grid.path))
        mlflow_client.log_param(parent, schema.NUM_TRIALS_PARAM, planned_trials(grid, len(trials)))
        folder.path.mkdir(parents=True)
        state = {"sweep_id": sweep_id, "grid": str(grid.path.resolve()), "tracking_uri": uri,
                 "overrides": folder.overrides, "code_version": code, "parent_run_id": parent,
                 "seeds": folder.seeds, "data": {key: f.summary() for key, f in (data or {}).items()}}
        (folder.path / SWEEP_STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
        (folder.path / DATA_FINGERPRINTS).write_text(json.dumps({k: f.to_dict() for k, f in (data or {}).items()}),
                                                     encoding="utf-8")
    return SweepContext(trials=trials, tracking_uri=uri, experiment_id=experiment_id, parent_run_id=parent,
                        sweep_id=sweep_id, grid=grid.name, table=grid.table, code_version=code,
                        sweep_dir=folder.path, trial_callbacks=trial_callbacks, log_models=log_models,
                        worker_group=_worker_group(grid), data={k: f.summary() for k, f in (data or {}).items()})


def announce(grid: Grid, context: SweepContext) -> None:
    """Say what the sweep runs: processes per trial, trial count, sweep id, store and folder, search and
    scheduler."""
    world_size = max(spec.config["runtime"]["world_size"] for spec in context.trials.values())
    if world_size > 1:
        group = context.worker_group
        log.info("each trial trains with %d data-parallel (DDP) processes: Ray Train workers of %g CPU and %g GPU "
                 "each, placed %s", world_size, group.cpus_per_worker, group.gpus_per_worker, group.placement)
    log.info("%s: %d trials, sweep %s, tracking %s, folder %s", grid.name, planned_trials(grid, len(context.trials)),
             context.sweep_id, context.tracking_uri, context.sweep_dir)
    for line in describe_tune(grid, len(context.trials)):
        log.info("%s", line)


def run_trials(grid: Grid, context: SweepContext, options: SweepOptions) -> int:
    """Run the trials on Ray (resumed from their checkpoints with ``--resume``) and close the parent run;
    0 when every trial finished."""
    import ray

    temp_dir = start_ray(options.address)
    status, code, reported = "FAILED", 1, False
    try:
        errors, total = _fit(grid, context, options)
        for result in errors:
            log.info("trial %s failed: %s: %s", result.config.get("trial"), type(result.error).__name__,
                     _first_line(result.error))
        log.info("%d/%d trials finished; MLflow experiment %r (%s), parent run %s", total - len(errors), total,
                 grid.study, context.experiment_id, context.parent_run_id)
        status, code = ("FINISHED", 0) if not errors else ("FAILED", 1)
        if options.register_best and not _register_best(context, options.register_best):
            code = 1
    finally:
        reported = not _close_parent(context, status)
        if reported:
            code = 1
        ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    if code and not reported and _tracking_failed(context.tracking_uri):
        log.error("MLflow tracking server %s does not answer: bring it back and rerun with --resume --name %s "
                  "(trials continue from their checkpoints)", context.tracking_uri, context.sweep_dir.name)
    return code


def _fit(grid: Grid, context: SweepContext, options: SweepOptions) -> tuple[list, int]:
    """Tune's run of the sweep: the trials' results that ended in an error, and how many trials ran."""
    from ray import tune

    tuner, trainable = _make_tuner(grid, context, options)
    if options.resume:
        for name in repair_tune_state(context.sweep_dir):
            log.info("%s was cut off when the driver died; restored its last complete copy", name)
        tuner = tune.Tuner.restore(str(context.sweep_dir), trainable=trainable, resume_errored=True)
    results = tuner.fit()
    return [r for r in results if r.error is not None], len(results)


def _register_best(context: SweepContext, name: str) -> bool:
    """``--register-best NAME``: the sweep's best finished trial's model as a new version of ``NAME``
    (:func:`experiments.run_logging.register_best_model`); False when none could be registered."""
    from experiments.run_logging import register_best_model

    try:
        version = register_best_model(context.tracking_uri, experiment_id=context.experiment_id,
                                      parent_run_id=context.parent_run_id, name=name)
    except Exception as err:  # the registry refused: the trials' results stand, say why
        log.error("error: --register-best %s failed: %s: %s", name, type(err).__name__, _first_line(err))
        return False
    return version is not None


def _close_parent(context: SweepContext, status: str) -> bool:
    """Set the parent run's final status; False (and says why) when the tracking server cannot be reached."""
    from experiments import tracking

    try:
        tracking.client(context.tracking_uri).set_terminated(context.parent_run_id, status=status)
    except Exception as err:  # the tracking server went away: say so instead of a traceback
        log.error("error: MLflow tracking server %s cannot be reached to close the sweep's run %s (%s); "
                  "checkpoints are kept under %s: bring the server back and rerun with --resume --name %s",
                  context.tracking_uri, context.parent_run_id, type(err).__name__, context.sweep_dir,
                  context.sweep_dir.name)
        return False
    return True


def _search_space(grid: Grid) -> dict[str, Any]:
    """Tune domains of the grid's sampled keys (random search); empty without ``tune.search``."""
    from experiments.tune_search import random_space

    return random_space(grid.tune.search["space"]) if grid.tune.search else {}


def _make_tuner(grid: Grid, context: SweepContext, options: SweepOptions):
    """The Tuner of a sweep: one trial per grid point, or ``num_samples`` sampled trials per grid point with
    ``tune.search`` (random: the points crossed with independent draws; optuna: one seeded TPE study handing
    the points out in turn), under ASHA with ``tune.scheduler``."""
    from ray import tune

    slugs = list(context.trials)
    cpus = options.cpus_per_trial or grid.resources.cpus_per_trial
    gpus = options.gpus_per_trial if options.gpus_per_trial is not None else grid.resources.gpus_per_trial
    trainable = tune.with_resources(tune.with_parameters(train_trial, context=context), {"cpu": cpus, "gpu": gpus})
    search = grid.tune.search
    scheduler = None
    if grid.tune.scheduler:
        from experiments.tune_search import make_asha

        epochs = max(s.config["optim"]["epochs"] for s in context.trials.values())
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
        name=context.sweep_dir.name, storage_path=str(context.sweep_dir.parent),
        failure_config=tune.FailureConfig(max_failures=grid.tune.max_failures),
        # Two, not one: Tune deletes the older checkpoint when a newer one registers, and a driver killed
        # before its next state snapshot would otherwise resume from a checkpoint that is gone
        # ("Could not recover from checkpoint as it does not exist on storage anymore", seen in CI).
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        callbacks=[_tune_callback(context), tune.logger.CSVLoggerCallback(), tune.logger.JsonLoggerCallback()],
        verbose=options.verbose)
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config), trainable


def _trial_name(trial) -> str:
    extra = ",".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in trial.config.items() if k != "trial")
    return trial.config["trial"] + (f",{extra}" if extra else "")


def _trial_dirname(trial) -> str:
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", f"{trial.trial_id}_{_trial_name(trial)}")[:200]


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

"""MLflow runs outside a sweep, and MLflow models of trained runs.

- ``gsf train --tracking-uri URI`` (or ``MLFLOW_TRACKING_URI``): :func:`train_tracked` logs the run as a sweep
  logs a trial (:mod:`experiments.runner`): the flat configuration as params; tags for role (``train``), code
  version, seed, config hash and variant; complexity metrics at step 0; every epoch's engine metrics at
  step = epoch; the final and ``test_<P>_*`` protocol metrics at the last epoch; ``config.yaml``, the
  per-video scores and the best checkpoint as an MLflow model. The run's id is kept in the run folder
  (:data:`RUN_FILE`), so ``--resume`` continues the same MLflow run and back-fills the epochs it lacks.
- ``gsf eval --tracking-uri URI [--run-id ID]``: :func:`log_evaluation` writes the protocol metrics
  (``test_<P>_top1``, ``test_<P>_top5``, ``test_<P>_mean_class_acc``) and the scores file into the run
  ``ID`` (a sweep trial's, or a ``gsf train`` run's), or into a new run with role ``eval``.
- :func:`log_best_model`: a run's best checkpoint exported to ONNX (:func:`gsf.inference.export.export_model`,
  checked against the eager model) and logged as an MLflow model of the ONNX flavour, with signature, input
  example and the prediction metadata, so ``gsf predict --model models:/...`` and
  ``mlflow.pyfunc.load_model`` both run it. :func:`register_best_model` registers the best trial of a sweep.

Every name written comes from :mod:`gsf.mlflow_schema`; all calls go through an explicit
:class:`~mlflow.tracking.MlflowClient` and run id (no active-run global state).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from experiments import tracking
from gsf import mlflow_schema as schema
from gsf.engine.callbacks import Callback
from gsf.errors import GSFError, GSFTrackingError

log = logging.getLogger(__name__)

RUN_FILE = "mlflow_run.json"  # in a gsf train run folder: {"tracking_uri", "experiment_id", "run_id"}
MODEL_NAME = "model"  # the logged model's name in its run
DEFAULT_EXPERIMENT = "gsf-runs"


def tracking_uri_from(flag: str | None) -> str | None:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else None (no tracking)."""
    return flag or os.environ.get("MLFLOW_TRACKING_URI") or None


def open_client(uri: str):
    """A client of ``uri``, checked reachable first (a clear error naming the URI)."""
    tracking.preflight(uri)
    return tracking.client(uri)


def run_tags(config, *, role: str) -> dict[str, str]:
    """The tags a sweep trial carries that a standalone run has too: role, code version, seed, config hash
    and variant name (no grid, table, sweep or axes)."""
    from experiments.grid.resolve import config_hash
    from gsf.variant_names import variant_name

    return {schema.ROLE: role, schema.CODE_VERSION: tracking.code_version(), schema.SEED: str(config.runtime.seed),
            schema.CONFIG_HASH: config_hash(config.to_dict()), schema.VARIANT: variant_name(config.flat())}


def create_run(mlflow_client, experiment_id: str, config, *, role: str, run_name: str | None = None) -> str:
    """A new run with a trial's params (the flat configuration), tags and complexity metrics (step 0)."""
    from mlflow.entities import Param

    from experiments.grid.complexity import complexity_of

    tags = run_tags(config, role=role)
    run = mlflow_client.create_run(experiment_id, tags=tags, run_name=run_name or tags[schema.VARIANT])
    run_id = run.info.run_id
    items = [Param(key, tracking.param_value(value)) for key, value in config.flat().items()]
    for start in range(0, len(items), 100):
        mlflow_client.log_batch(run_id, params=items[start:start + 100])
    complexity = complexity_of(config.to_dict()).as_dict()
    tracking.log_metrics(mlflow_client, run_id, {k: complexity[k] for k in schema.COMPLEXITY_METRICS if k in complexity},
                         step=0)
    return run_id


def data_input(data: Mapping[str, Any]):
    """The run's data (a :meth:`gsf.data.fingerprint.DataFingerprint.summary`) as an ``mlflow.data`` dataset:
    name = the data set, digest = the fingerprint's, source = the root as given, schema = the fields of one
    record (:func:`gsf.data.fingerprint.record_schema`), profile = samples per split. MLflow shows it in the
    run's Dataset column."""
    from mlflow.data.dataset_source_registry import get_registered_sources
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset
    from mlflow.types import ColSpec, Schema

    from gsf.data.fingerprint import record_schema

    # the local-file source class MLflow registers (resolving a bare path finds it twice and warns)
    local = next(s for s in get_registered_sources() if s._get_source_type() == "local")
    schema_ = Schema([ColSpec(kind, name, required=name != "num_frames") for name, kind in record_schema(data["dataset"])])
    meta = MetaDataset(local(str(data["root"])), name=str(data["dataset"]), digest=str(data["digest"]), schema=schema_)
    profile = {"num_samples": {name: split["num_samples"] for name, split in data["splits"].items()},
               "max_videos": data.get("max_videos")}
    return Dataset(**meta.to_dict(), profile=json.dumps(profile))


def log_data_input(mlflow_client, run_id: str, data: Mapping[str, Any], *,
                   context: str = schema.TRAINING_CONTEXT) -> None:
    """Log ``data`` (:func:`data_input`) as the run's dataset input with MLflow's context tag, as
    ``mlflow.log_input(dataset, context=...)`` does for the active run (here through an explicit client).
    Logging the same data again adds nothing."""
    from mlflow.entities import DatasetInput, InputTag

    mlflow_client.log_inputs(run_id, datasets=[DatasetInput(data_input(data),
                                                            tags=[InputTag(schema.DATASET_CONTEXT_TAG, context)])])


def data_digests(run, context: str = schema.TRAINING_CONTEXT) -> list[str]:
    """The digests of the datasets a run logged as inputs in ``context`` (:func:`log_data_input`; an input
    without a context tag counts as training data), in logging order."""
    inputs = getattr(run, "inputs", None)
    return [d.dataset.digest for d in (inputs.dataset_inputs if inputs else [])
            if schema.input_context(d.tags) == context]


# --- gsf train -----------------------------------------------------------------------------------------------

class EpochLogger(Callback):
    """Engine callback: each epoch's metrics to the run at step = epoch (epochs it has already skipped)."""

    def __init__(self, mlflow_client, run_id: str, logged: set[int]):
        self.client, self.run_id, self.logged = mlflow_client, run_id, logged
        self.history: list[dict] = []

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint_path: Path) -> None:
        self.history.append(dict(metrics))
        if epoch not in self.logged:
            tracking.log_metrics(self.client, self.run_id, metrics, step=epoch)
            self.logged.add(epoch)


def _read_history(out_dir: Path) -> list[dict]:
    path = out_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _train_run(mlflow_client, uri: str, config, out_dir: Path, *, resume: bool, experiment: str,
               run_name: str | None, data: Mapping[str, Any] | None = None) -> tuple[str, set[int]]:
    """The run of ``out_dir``: on resume the one recorded in :data:`RUN_FILE` (set RUNNING, its missing
    epochs back-filled from ``metrics.jsonl``), else a new one, recorded there."""
    record = out_dir / RUN_FILE
    if resume and record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved.get("tracking_uri") == uri:
            run_id = saved["run_id"]
            mlflow_client.update_run(run_id, status="RUNNING")
            logged = tracking.logged_steps(mlflow_client, run_id)
            for metrics in _read_history(out_dir):
                epoch = int(metrics[schema.EPOCH])
                if epoch not in logged:
                    tracking.log_metrics(mlflow_client, run_id, metrics, step=epoch)
                    logged.add(epoch)
            if data is not None:
                log_data_input(mlflow_client, run_id, data)
            return run_id, logged
        log.warning("%s names a run of another tracking URI (%s); starting a new run", record, saved.get("tracking_uri"))
    experiment_id = tracking.ensure_experiment(mlflow_client, experiment, uri=uri)
    run_id = create_run(mlflow_client, experiment_id, config, role=schema.ROLE_TRAIN, run_name=run_name)
    if data is not None:
        log_data_input(mlflow_client, run_id, data)
    out_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"tracking_uri": uri, "experiment_id": experiment_id, "run_id": run_id}),
                      encoding="utf-8")
    return run_id, set()


def final_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The result keys a trial logs once at its end (:func:`gsf.mlflow_schema.is_final_metric`), finite only."""
    return {k: float(v) for k, v in result.items() if schema.is_final_metric(k) and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v)}


def log_run_outputs(mlflow_client, run_id: str, out_dir: Path, *, with_model: bool = True) -> None:
    """``config.yaml``, ``scores/`` and (``with_model``) the best checkpoint as an MLflow model
    (:func:`log_best_model`)."""
    if (out_dir / "config.yaml").is_file():
        mlflow_client.log_artifact(run_id, str(out_dir / "config.yaml"))
    if (out_dir / "scores").is_dir():
        mlflow_client.log_artifacts(run_id, str(out_dir / "scores"), artifact_path="scores")
    if with_model:
        log_best_model(mlflow_client, run_id, out_dir)


def train_tracked(config, out_dir: str | Path, *, tracking_uri: str, resume: bool = False,
                  experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                  fingerprint=None) -> tuple[dict[str, float], str]:
    """:func:`gsf.engine.train` logged to MLflow as a sweep trial is, its data as the run's dataset input
    (``fingerprint``, else the one cached in ``out_dir``); returns ``(result, run_id)``. The run ends FINISHED,
    or FAILED (and the error is raised) when training fails."""
    from gsf.engine.loaders import data_fingerprint
    from gsf.engine.trainer import train

    out_dir = Path(out_dir)
    mlflow_client = open_client(tracking_uri)
    fingerprint = fingerprint or data_fingerprint(config, out_dir)
    run_id, logged = _train_run(mlflow_client, tracking_uri, config, out_dir, resume=resume, experiment=experiment,
                                run_name=run_name, data=fingerprint.summary())
    try:
        logger = EpochLogger(mlflow_client, run_id, logged)
        result = train(config, out_dir, resume=resume, callbacks=[logger])
        history = _read_history(out_dir)
        last_epoch = int(history[-1][schema.EPOCH]) if history else 0
        tracking.log_metrics(mlflow_client, run_id, final_metrics(result), step=last_epoch)
        log_run_outputs(mlflow_client, run_id, out_dir)
        mlflow_client.set_terminated(run_id, status="FINISHED")
    except BaseException:
        try:
            mlflow_client.set_terminated(run_id, status="FAILED")
        except Exception:  # the store went away too; the training error is the one to report
            log.exception("could not mark MLflow run %s FAILED", run_id)
        raise
    return result, run_id


# --- gsf eval ------------------------------------------------------------------------------------------------

def protocol_metrics(result: Mapping[str, Any], views: str) -> dict[str, float]:
    """``test_<P>_<measure>`` of an evaluation at views ``P``: keys already named by protocol are kept, the
    unnamed ``test_top1`` ... of :func:`gsf.engine.evaluate_checkpoint` are named for ``views``."""
    out = {}
    for key, value in result.items():
        if schema.parse_protocol_metric(key):
            out[key] = float(value)
        elif key.startswith(schema.TEST_PREFIX) and key[len(schema.TEST_PREFIX):] in schema.TEST_MEASURES:
            out[schema.protocol_metric(views, key[len(schema.TEST_PREFIX):])] = float(value)
    return out


def log_evaluation(config, result: Mapping[str, Any], *, views: str, tracking_uri: str, run_id: str | None = None,
                   scores: str | Path | None = None, experiment: str = DEFAULT_EXPERIMENT,
                   data: Mapping[str, Any] | None = None) -> str:
    """Log an evaluation's protocol metrics (and its scores file) into run ``run_id``, or into a new run with
    role ``eval`` and the trial's params and tags; returns the run id. ``data`` (the fingerprint summary of
    the split evaluated) becomes the run's dataset input in context ``evaluation``."""
    from mlflow.exceptions import MlflowException

    mlflow_client = open_client(tracking_uri)
    metrics = protocol_metrics(result, views)
    if run_id is not None:
        try:
            mlflow_client.get_run(run_id)
        except MlflowException as err:
            raise GSFTrackingError(f"--run-id {run_id}: no such run in {tracking_uri} ({err.message})") from err
        # at the run's last epoch, where a trial logs its final metrics
        step, created = max(tracking.logged_steps(mlflow_client, run_id) or {0}), False
    else:
        experiment_id = tracking.ensure_experiment(mlflow_client, experiment, uri=tracking_uri)
        run_id, step, created = create_run(mlflow_client, experiment_id, config, role=schema.ROLE_EVAL), 0, True
    tracking.log_metrics(mlflow_client, run_id, metrics, step=step)
    if data is not None:
        log_data_input(mlflow_client, run_id, data, context=schema.EVALUATION_CONTEXT)
    if scores is not None and Path(scores).is_file():
        mlflow_client.log_artifact(run_id, str(scores), artifact_path="scores")
    if created:
        mlflow_client.set_terminated(run_id, status="FINISHED")
    return run_id


def scores_file(checkpoint: str | Path, views: str, out_dir: str | Path | None = None) -> Path | None:
    """The ``scores/test_<views>.csv`` an evaluation of ``checkpoint`` wrote: under ``out_dir``, else beside
    the checkpoint's run folder (or the checkpoint), where :func:`gsf.engine.evaluate_checkpoint` puts it."""
    checkpoint = Path(checkpoint)
    folders = [Path(out_dir)] if out_dir is not None else [checkpoint.parent.parent, checkpoint.parent]
    found = [f / "scores" / f"test_{views}.csv" for f in folders if (f / "scores" / f"test_{views}.csv").is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


# --- the CLIs' entry points (gsf train / gsf eval flags) ----------------------------------------------------

def add_tracking_arguments(parser, *, run_id: bool = False) -> None:
    """``--tracking-uri`` and ``--experiment`` (and, for ``gsf eval``, ``--run-id``)."""
    parser.add_argument("--tracking-uri", default=None,
                        help="log to this MLflow store as a sweep trial is (default: $MLFLOW_TRACKING_URI; "
                             "neither: nothing is logged)")
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                        help=f"MLflow experiment (study) of a new run (default {DEFAULT_EXPERIMENT})")
    if run_id:
        parser.add_argument("--run-id", default=None,
                            help="log the test metrics into this existing MLflow run (a sweep trial's or a gsf "
                                 "train run's) instead of a new one")


def train_from_cli(config, out_dir: Path, *, resume: bool, tracking_uri: str | None = None,
                   experiment: str = DEFAULT_EXPERIMENT, fingerprint=None) -> dict[str, float]:
    """``gsf train``: tracked in ``experiment`` when a tracking URI is given (``tracking_uri``, else
    ``$MLFLOW_TRACKING_URI``; the data's ``fingerprint`` is the run's dataset input), else plain training."""
    from gsf.engine.trainer import train

    uri = tracking_uri_from(tracking_uri)
    if uri is None:
        return train(config, out_dir, resume=resume)
    result, run_id = train_tracked(config, out_dir, tracking_uri=uri, resume=resume, experiment=experiment,
                                   fingerprint=fingerprint)
    log.info("MLflow run %s in %s (experiment %s)", run_id, uri, experiment)
    return result


def eval_to_tracking(config, result: Mapping[str, Any], *, checkpoint: str | Path, tracking_uri: str | None = None,
                     run_id: str | None = None, split: str | None = None, out_dir: str | Path | None = None,
                     experiment: str = DEFAULT_EXPERIMENT) -> str | None:
    """``gsf eval``: log ``result`` (of ``checkpoint`` on ``split``, default ``data.val_split``; its scores under
    ``out_dir``, default the checkpoint's run folder) when a tracking URI is given (``tracking_uri``, else
    ``$MLFLOW_TRACKING_URI``), into run ``run_id`` or a new run of ``experiment``. The run id, or None."""
    uri = tracking_uri_from(tracking_uri)
    if uri is None:
        if run_id:
            raise GSFTrackingError("--run-id needs --tracking-uri (or MLFLOW_TRACKING_URI)")
        return None
    from gsf.data.fingerprint import fingerprint_dataset

    views = f"{int(result['clips'])}x{int(result['crops'])}"  # the protocol evaluate_checkpoint ran
    d = config.data
    split = split or d.val_split  # the split evaluate_checkpoint tested
    data = fingerprint_dataset(d.dataset, d.root, [split], max_videos=d.max_videos).summary()
    return log_evaluation(config, result, views=views, tracking_uri=uri, run_id=run_id,
                          scores=scores_file(checkpoint, views, out_dir), experiment=experiment, data=data)


# --- MLflow models ---------------------------------------------------------------------------------------------

def best_checkpoint(out_dir: Path) -> Path | None:
    """``checkpoints/best.pt`` of an engine run folder, else ``last.pt`` (no validation yet), else None."""
    for name in ("best.pt", "last.pt"):
        if (out_dir / "checkpoints" / name).is_file():
            return out_dir / "checkpoints" / name
    return None


def log_best_model(mlflow_client, run_id: str, out_dir: str | Path) -> str | None:
    """Log the best checkpoint of engine folder ``out_dir`` as MLflow model :data:`MODEL_NAME` of run
    ``run_id`` (ONNX flavour; signature and input example from the export's check clip; the prediction
    metadata in the model's ``metadata``). Returns its ``models:/m-...`` URI, or None without a checkpoint
    or for a model ``gsf export`` refuses (several heads, an export check that failed): a warning, not an
    error, so a trained run never fails for it."""
    from importlib.metadata import version

    import mlflow.onnx
    import numpy as np
    import onnx
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from gsf.inference.export import example_clip, export_model
    from gsf.inference.predict import METADATA_KEY

    checkpoint = best_checkpoint(Path(out_dir))
    if checkpoint is None:
        return None
    with tempfile.TemporaryDirectory(prefix="gsf-model-") as tmp:
        try:
            exported = export_model(checkpoint, format="onnx", out=Path(tmp) / "model.onnx")
        except GSFError as err:  # a trained run is not failed for want of an exportable model
            log.warning("run %s: no MLflow model logged: %s", run_id, err)
            return None
        # two decimals keep the example's JSON small (a ResNet-50 view has 1.2 M values)
        example = np.round(example_clip(exported.preprocessing, seed=0).numpy(), 2)
        classes = len(exported.preprocessing.class_names)
        signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), example.shape, "video")]),
                                   outputs=Schema([TensorSpec(np.dtype(np.float32), (1, classes), "logits")]))
        local = Path(tmp) / MODEL_NAME
        mlflow.onnx.save_model(
            onnx.load(str(exported.path)), str(local), signature=signature, input_example=example,
            onnx_execution_providers=["CPUExecutionProvider"],
            metadata={METADATA_KEY: exported.preprocessing.to_json(), "checkpoint": str(checkpoint)},
            pip_requirements=[f"onnx=={version('onnx')}", f"onnxruntime=={version('onnxruntime')}"],
            save_as_external_data=False)
        run = mlflow_client.get_run(run_id)
        model = mlflow_client.create_logged_model(run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id,
                                                  model_type="onnx")
        try:
            mlflow_client.log_model_artifacts(model.model_id, str(local))
        except BaseException:
            mlflow_client.finalize_logged_model(model.model_id, "FAILED")
            raise
        mlflow_client.finalize_logged_model(model.model_id, "READY")
    return f"models:/{model.model_id}"


def logged_model_of(mlflow_client, run) -> Any | None:
    """The READY model :data:`MODEL_NAME` a run logged (the newest), or None."""
    found = mlflow_client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = {schema.quote(run.info.run_id)}")
    ready = [m for m in found if m.name == MODEL_NAME and str(m.status).endswith("READY")]
    return max(ready, key=lambda m: m.creation_timestamp) if ready else None


def register_best_model(tracking_uri: str, *, experiment_id: str, parent_run_id: str, name: str,
                        metric: str = schema.BEST_VAL_TOP1):
    """Register the model of the sweep's best FINISHED trial (highest ``metric``) as a new version of
    registered model ``name``; returns the version, or None (with a warning) when no trial logged a model."""
    mlflow_client = tracking.client(tracking_uri)
    tags = {schema.PARENT_RUN_ID: parent_run_id, schema.ROLE: schema.ROLE_TRIAL}
    runs = mlflow_client.search_runs([experiment_id], filter_string=schema.tag_filter(tags)
                                     + " and attributes.status = 'FINISHED'", max_results=5000)
    ranked = sorted((r for r in runs if metric in r.data.metrics and math.isfinite(r.data.metrics[metric])),
                    key=lambda r: (-r.data.metrics[metric], r.info.start_time))
    for run in ranked:
        model = logged_model_of(mlflow_client, run)
        if model is None:
            continue
        from mlflow.exceptions import MlflowException

        try:
            mlflow_client.get_registered_model(name)
        except MlflowException:
            mlflow_client.create_registered_model(name, description="best trial of a gsf sweep (gsf sweep --register-best)")
        version = mlflow_client.create_model_version(
            name, source=model.artifact_location, run_id=run.info.run_id, model_id=model.model_id,
            tags={metric: str(run.data.metrics[metric]), schema.PARENT_RUN_ID: parent_run_id},
            description=f"trial {run.info.run_name}: {metric} {run.data.metrics[metric]:.4f}")
        log.info("registered %s version %s: trial %s (%s %.4f)", name, version.version, run.info.run_name, metric,
                 run.data.metrics[metric])
        return version
    log.warning("--register-best %s: no finished trial of sweep run %s logged a model", name, parent_run_id)
    return None

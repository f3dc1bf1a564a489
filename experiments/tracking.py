"""The MLflow layout of a sweep (docs/CONTRIBUTING.md, "Grids and MLflow layout").

Experiment = study (one grid); one parent run per sweep (``gsf.role=sweep``); one child run per trial
(``gsf.role=trial``), found again by its sweep id and config hash, so a retried or resumed trial continues
its own run instead of starting a duplicate. Everything goes through :class:`mlflow.tracking.MlflowClient`
with explicit run ids: no active-run global state, safe in Ray workers. Every tag, param and metric name
comes from :mod:`gsf.mlflow_schema`.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gsf import mlflow_schema as schema
from gsf.errors import GSFTrackingError
from gsf.provenance import code_version  # noqa: F401 (re-exported: the runner tags runs with it)

PREFLIGHT_TIMEOUT_S = 5.0
MAX_PARAM_LENGTH = 6000


def default_tracking_uri(folder: str | Path | None = None) -> str:
    """SQLite ``mlflow.db`` in ``folder`` (default: the working folder), as an absolute URI."""
    return f"sqlite:///{(Path(folder or Path.cwd()) / 'mlflow.db').resolve()}"


def preflight(uri: str, *, timeout: float = PREFLIGHT_TIMEOUT_S) -> None:
    """Fail fast, naming ``uri``, when the tracking store cannot be reached (HTTP: GET /health with a short
    timeout and no retries; SQLite: the database's folder must exist and be writable)."""
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                if response.status != 200:
                    raise GSFTrackingError(f"MLflow tracking server {uri} answered {response.status} on /health")
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise GSFTrackingError(
                f"MLflow tracking server {uri} cannot be reached ({getattr(err, 'reason', err)}); start it "
                "(see docs/cluster.md) or pass another --tracking-uri") from err
        return
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise GSFTrackingError(f"MLflow tracking URI {uri}: folder {folder} does not exist or is not writable")
        return
    if "://" not in uri or uri.startswith("file://"):
        raise GSFTrackingError(f"MLflow tracking URI {uri}: use sqlite:///ABS/PATH/mlflow.db or an http(s) "
                               "server (the ./mlruns file store is deprecated)")


def client(uri: str):
    """An MlflowClient bound to ``uri`` (HTTP retries limited, so a dead server fails in seconds)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a SQLite database (``mlartifacts/``); the server's
    default for an HTTP server."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def ensure_experiment(mlflow_client, study: str, *, uri: str, description: str = "") -> str:
    """The id of experiment ``study``, created (with its artifact root) if it does not exist; either way of
    the model-training kind (:func:`mark_model_training`)."""
    experiment = mlflow_client.get_experiment_by_name(study)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(experiment.experiment_id)
        mark_model_training(mlflow_client, experiment)
        return experiment.experiment_id
    tags = {schema.EXPERIMENT_KIND: schema.EXPERIMENT_KIND_MODEL_TRAINING}
    if description:
        tags[schema.NOTE] = description
    return mlflow_client.create_experiment(study, artifact_location=artifact_root(uri), tags=tags)


def mark_model_training(mlflow_client, experiment) -> bool:
    """Tag ``experiment`` (an MLflow ``Experiment``) as a model-training experiment, so that MLflow 3's UI opens
    it in its "Model training" view (runs, metrics, charts) rather than the GenAI one (traces, judges, prompts).
    A kind already set (by the suite, or chosen in the UI) is kept. Returns whether the tag was added."""
    if schema.EXPERIMENT_KIND in experiment.tags:
        return False
    mlflow_client.set_experiment_tag(experiment.experiment_id, schema.EXPERIMENT_KIND,
                                     schema.EXPERIMENT_KIND_MODEL_TRAINING)
    return True


def suite_experiments(mlflow_client) -> list:
    """The active experiments holding at least one run the suite logged (a sweep, trial, train or eval run)."""
    found = []
    for experiment in mlflow_client.search_experiments(max_results=1000):
        if mlflow_client.search_runs([experiment.experiment_id], filter_string=f"tags.`{schema.ROLE}` != ''",
                                     max_results=1):
            found.append(experiment)
    return found


def find_runs(mlflow_client, experiment_id: str, tags: Mapping[str, str], *, status: str | None = None) -> list:
    """Runs of ``experiment_id`` carrying every tag in ``tags`` (oldest first)."""
    clauses = [schema.tag_filter(dict(tags))] if tags else []
    if status:
        clauses.append(f"attributes.status = {schema.quote(status)}")
    runs = mlflow_client.search_runs([experiment_id], filter_string=" and ".join(clauses), max_results=5000,
                                     order_by=["attributes.start_time ASC"])
    return list(runs)


def sweep_tags(*, grid: str, table: str, sweep_id: str, code: str,
               baseline: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The parent run's tags; ``baseline`` (the grid's, a mapping of axis values) as JSON in
    :data:`~gsf.mlflow_schema.BASELINE`, so a report never has to read the grid file again."""
    return {schema.ROLE: schema.ROLE_SWEEP, schema.GRID: grid, schema.TABLE: table, schema.SWEEP_ID: sweep_id,
            schema.CODE_VERSION: code, schema.BASELINE: json.dumps(dict(baseline or {}))}


def open_sweep_run(mlflow_client, experiment_id: str, *, name: str, tags: Mapping[str, str]) -> str:
    """The sweep's parent run (continued when the sweep is resumed), left RUNNING."""
    found = find_runs(mlflow_client, experiment_id, {schema.ROLE: schema.ROLE_SWEEP,
                                                      schema.SWEEP_ID: tags[schema.SWEEP_ID]})
    if found:
        run_id = found[0].info.run_id
        mlflow_client.update_run(run_id, status="RUNNING")
        return run_id
    run = mlflow_client.create_run(experiment_id, tags=dict(tags), run_name=name)
    return run.info.run_id


def trial_tags(*, slug: str, variant: str, config_hash: str, grid: str, table: str, sweep_id: str, seed: int,
               code: str, parent_run_id: str, axes: Mapping[str, Any]) -> dict[str, str]:
    """A trial run's tags; its run name is :func:`gsf.mlflow_schema.trial_run_name` of variant and slug."""
    tags = {schema.PARENT_RUN_ID: parent_run_id, schema.ROLE: schema.ROLE_TRIAL, schema.SLUG: slug,
            schema.VARIANT: variant,
            schema.CONFIG_HASH: config_hash, schema.GRID: grid, schema.TABLE: table, schema.SWEEP_ID: sweep_id,
            schema.SEED: str(seed), schema.CODE_VERSION: code}
    for key, value in axes.items():
        if key != schema.SEED_PARAM:
            tags[schema.axis_tag(key)] = str(value)
    return tags


def find_trial_run(mlflow_client, experiment_id: str, *, sweep_id: str, config_hash: str):
    """The trial's existing child run, or None."""
    found = find_runs(mlflow_client, experiment_id, {schema.ROLE: schema.ROLE_TRIAL, schema.SWEEP_ID: sweep_id,
                                                      schema.CONFIG_HASH: config_hash})
    return found[0] if found else None


def param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def open_trial_run(mlflow_client, experiment_id: str, *, tags: Mapping[str, str], params: Mapping[str, Any],
                   complexity: Mapping[str, float]) -> tuple[str, bool]:
    """The trial's child run: found by sweep id + config hash and set RUNNING again, or created with its
    params, tags and complexity metrics (step 0). Returns ``(run_id, created)``."""
    from mlflow.entities import Metric, Param

    existing = find_trial_run(mlflow_client, experiment_id, sweep_id=tags[schema.SWEEP_ID],
                              config_hash=tags[schema.CONFIG_HASH])
    if existing is not None:
        mlflow_client.update_run(existing.info.run_id, status="RUNNING")
        return existing.info.run_id, False
    run = mlflow_client.create_run(experiment_id, tags=dict(tags),
                                   run_name=schema.trial_run_name(tags[schema.VARIANT], tags[schema.SLUG]))
    run_id = run.info.run_id
    items = [Param(key, param_value(value)) for key, value in params.items()]
    for start in range(0, len(items), 100):
        mlflow_client.log_batch(run_id, params=items[start:start + 100])
    now = _now_ms()
    mlflow_client.log_batch(run_id, metrics=[Metric(k, float(complexity[k]), now, 0)
                                             for k in schema.COMPLEXITY_METRICS if k in complexity])
    return run_id, True


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


def log_metrics(mlflow_client, run_id: str, metrics: Mapping[str, Any], *, step: int) -> None:
    """Numeric entries of ``metrics`` at ``step`` (non-numbers skipped)."""
    from mlflow.entities import Metric

    now = _now_ms()
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if items:
        mlflow_client.log_batch(run_id, metrics=items)


def logged_steps(mlflow_client, run_id: str, key: str = schema.EPOCH) -> set[int]:
    """Steps at which ``key`` was logged (to avoid logging an epoch twice after a retry)."""
    return {m.step for m in mlflow_client.get_metric_history(run_id, key)}


def mark_orphans(mlflow_client, experiment_id: str, sweep_id: str, *, status: str = "KILLED") -> list[str]:
    """Runs of a sweep left RUNNING by a driver that died: set to ``status`` (their trials, when resumed,
    set them RUNNING again). Returns the run ids."""
    orphans = find_runs(mlflow_client, experiment_id, {schema.SWEEP_ID: sweep_id}, status="RUNNING")
    for run in orphans:
        mlflow_client.set_terminated(run.info.run_id, status=status)
    return [run.info.run_id for run in orphans]

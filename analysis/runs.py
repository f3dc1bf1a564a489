"""Read the sweep runner's MLflow runs into tidy pandas frames.

The layout read here is the one in docs/CONTRIBUTING.md, "Grids and MLflow layout": an
experiment per study, a parent run per sweep (``gsf.role=sweep``) and a child run per trial
(``gsf.role=trial``) with ``gsf.*`` tags, the flat config as params and per-epoch metrics; every name read
here comes from :mod:`gsf.mlflow_schema`. A sweep's baseline is read from its parent run
(:data:`~gsf.mlflow_schema.BASELINE`), never from the grid file, so moving or editing a grid leaves old
reports as they were.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import yaml

from gsf import mlflow_schema as schema
from gsf.errors import GSFConfigError, GSFTrackingError

log = logging.getLogger(__name__)

SEED_PARAM = schema.SEED_PARAM
AXIS_PREFIX = schema.AXIS_PREFIX
# Per-epoch metrics kept for training curves (step = 1-based epoch).
HISTORY_KEYS = schema.HISTORY_METRICS
# load_runs' metric columns: column -> the metric logged.
METRIC_COLUMNS = {"gmacs": schema.GMACS, "gmacs_all_ops": schema.GMACS_ALL_OPS, "params": schema.PARAMS,
                  "temporal_params": schema.TEMPORAL_PARAMS, "top1": schema.FINAL_VAL_TOP1,
                  "top5": schema.FINAL_VAL_TOP5, "best_top1": schema.BEST_VAL_TOP1, "best_epoch": schema.BEST_EPOCH,
                  "mean_class_acc": schema.FINAL_VAL_MEAN_CLASS_ACC, "last_epoch_metric": schema.EPOCH,
                  "num_classes": schema.NUM_CLASSES}
_PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def tracking(uri: str):
    """Point the ``mlflow`` fluent API at ``uri`` for the duration of the block, then restore it (and the
    ``MLFLOW_TRACKING_URI`` variable, which MLflow writes)."""
    from gsf.mlflow_uris import mlflow_uris

    return mlflow_uris(uri)


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


DATA_AXIS = "data"  # the pseudo-axis that tells apart runs of one configuration that read different data


def data_digests(uri: str, experiment_ids: Sequence[str]) -> dict[str, str]:
    """run id -> the digest of the data it trained on (its MLflow dataset inputs in the training context,
    logged by the sweep runner and ``gsf train``; several sorted and space-separated), for the runs that logged
    one. A split ``gsf eval`` tested in that run (context ``evaluation``) does not change it."""
    client = _client(uri)
    out: dict[str, str] = {}
    token = None
    while True:
        page = client.search_runs(list(experiment_ids), max_results=1000, page_token=token)
        for run in page:
            inputs = run.inputs.dataset_inputs if run.inputs else []
            digests = sorted({d.dataset.digest for d in inputs
                              if d.dataset.digest and schema.input_context(d.tags) == schema.TRAINING_CONTEXT})
            if digests:
                out[run.info.run_id] = " ".join(digests)
        token = page.token
        if not token:
            return out


def split_by_data(rows: list[dict]) -> None:
    """Keep runs that read different data apart: each run's ``config_key`` gets its data digest, and where one
    configuration of a study was run on more than one data digest, those runs get the :data:`DATA_AXIS` axis
    (the digest), so the report shows them as separate rows."""
    digests: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        digests.setdefault((row["study"], row["config_key"]), set()).add(row["data_digest"])
    for row in rows:
        if row["data_digest"]:
            row["config_key"] = json.dumps({**row["config"], "data digest": row["data_digest"]}, sort_keys=True)
        if len(digests[(row["study"], json.dumps(row["config"], sort_keys=True))]) > 1:
            row["axes"] = {**row["axes"], DATA_AXIS: row["data_digest"] or "not recorded"}


# The runs a study table is made of: sweep trials and standalone ``gsf train`` runs (same params, tags and
# metrics; a train run has no parent sweep, so its baseline is empty).
RESULT_ROLES = (schema.ROLE_TRIAL, schema.ROLE_TRAIN)


def list_studies(uri: str) -> list[str]:
    """Names of the experiments (studies) of ``uri`` that hold at least one trial or train run, sorted."""
    client = _client(uri)
    try:
        experiments = client.search_experiments()
    except Exception as error:  # MLflow raises many types for an unreachable or corrupt store
        raise GSFTrackingError(f"cannot read experiments from tracking URI {uri!r}: {error}") from error
    names = []
    for experiment in experiments:
        if any(client.search_runs([experiment.experiment_id], schema.tag_filter({schema.ROLE: role}), max_results=1)
               for role in RESULT_ROLES):
            names.append(experiment.name)
    return sorted(names)


def _search(uri: str, studies: Sequence[str], role: str) -> pd.DataFrame:
    import mlflow

    with tracking(uri):
        frame = mlflow.search_runs(
            experiment_names=list(studies), filter_string=schema.tag_filter({schema.ROLE: role}), output_format="pandas"
        )
    return frame


def sweep_run_ids(uri: str, study: str) -> list[str]:
    """The run ids of the study's sweep parent runs (``gsf.role=sweep``), oldest first."""
    parents = _search(uri, [study], schema.ROLE_SWEEP)
    if parents.empty:
        return []
    return list(parents.sort_values("start_time")["run_id"])


def parse_mapping(text) -> dict[str, str]:
    """A baseline recorded as a tag or param: a YAML/JSON mapping (``{model.temporal: none}``) or
    ``key=value`` pairs separated by commas or semicolons. Values come back as normalised strings."""
    if text is None or (isinstance(text, float) and pd.isna(text)) or str(text).strip() == "":
        return {}
    text = str(text)
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = None
    if isinstance(loaded, dict):
        return {str(k): normalise_value(v) for k, v in loaded.items()}
    pairs = [p for p in re.split(r"[;,]", text) if p.strip()]
    if pairs and all("=" in p for p in pairs):
        return {k.strip(): normalise_value(v.strip()) for k, v in (p.split("=", 1) for p in pairs)}
    raise GSFConfigError(f"cannot read baseline {text!r}: expected a mapping or key=value pairs")


def normalise_value(value) -> str:
    """One spelling per value, so a YAML ``1.0``, a tag ``"1.0"`` and a param ``"1"`` compare sensibly."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return _number_text(float(value))
    text = str(value).strip()
    try:
        return _number_text(float(text))
    except ValueError:
        return text.lower() if text.lower() in ("true", "false", "none", "null") else text


def _number_text(x: float) -> str:
    return str(int(x)) if x.is_integer() else repr(x)


def parse_views(text) -> str:
    """``"[2, 3]"``, ``"(2, 3)"``, ``"2x3"`` or ``{clips: 2, crops: 3}`` -> ``"2x3"`` (clips x crops)."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return ""
    try:
        loaded = yaml.safe_load(str(text))
    except yaml.YAMLError:
        loaded = str(text)
    if isinstance(loaded, dict):
        loaded = [loaded.get("clips", loaded.get("num_clips")), loaded.get("crops", loaded.get("num_crops"))]
    if isinstance(loaded, (list, tuple)) and len(loaded) == 2:
        return f"{int(loaded[0])}x{int(loaded[1])}"
    numbers = re.findall(r"\d+", str(loaded))
    return f"{numbers[0]}x{numbers[1]}" if len(numbers) == 2 else str(text)


def _column(frame: pd.DataFrame, name: str, default=None) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def _number(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


def load_runs(uri: str, studies: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per trial run (or standalone ``gsf train`` run) of ``studies`` (default: every study in ``uri``), any status.

    Columns: ``study, run_id, run_name, status, sweep_id, grid, table, slug, config_hash, stopped_early``
    (FINISHED runs an ASHA scheduler stopped before their last epoch: no final metrics), ``code_version,
    seed, axes`` (dict of the ``gsf.axis.*`` tags), ``config`` (dict of params minus the seed),
    ``config_key`` (its canonical JSON, with the run's data digest: runs that read different data are never
    pooled), ``data_digest`` (:func:`data_digests`; empty where none was logged; a configuration run on several
    digests also gets the ``data`` axis, :func:`split_by_data`), ``baseline`` (dict, from a ``gsf.baseline`` tag or ``baseline``
    param of the trial or of its parent sweep run; empty, with a warning, for a sweep that logged none),
    ``variant`` (the ``gsf.variant`` tag), ``backbone, temporal, dataset, frames, input_size, views, gmacs,
    gmacs_all_ops, params, temporal_params, top1, top5, best_top1, best_epoch, mean_class_acc, num_classes``
    (accuracies as fractions, as logged), one column per test-protocol metric logged (``test_2x3_top1``, ...; see
    :func:`gsf.mlflow_schema.parse_protocol_metric`) and per routing metric of the best checkpoint
    (``ckpt_gate_abs/layer1``, ...; :mod:`gsf.engine.health`), ``params_json`` (all params), ``artifact_uri`` and
    ``start_time`` (only to order reruns; never written to a table). Sorted by study, config, seed, start
    time.
    """
    studies = list_studies(uri) if studies is None else list(studies)
    columns = ["study", "run_id", "run_name", "status", "seed", "config_key"]
    if not studies:
        return pd.DataFrame(columns=columns)
    client = _client(uri)
    names = {}
    for study in studies:
        experiment = client.get_experiment_by_name(study)
        if experiment is None:
            raise GSFConfigError(f"study {study!r} not found in tracking URI {uri!r}")
        names[experiment.experiment_id] = study
    found = [frame for frame in (_search(uri, studies, role) for role in RESULT_ROLES) if not frame.empty]
    trials = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    if trials.empty:
        return pd.DataFrame(columns=columns)
    parents = _search(uri, studies, schema.ROLE_SWEEP)
    digests = data_digests(uri, list(names))
    parent_baseline = {parent["run_id"]: _parent_baseline(parent) for _, parent in parents.iterrows()}

    param_cols = [c for c in trials.columns if c.startswith(schema.PARAMS_COLUMN)]
    axis_cols = [c for c in trials.columns if c.startswith(_tag(AXIS_PREFIX))]
    rows = []
    for _, run in trials.iterrows():
        params = {c[len(schema.PARAMS_COLUMN):]: run[c] for c in param_cols if isinstance(run[c], str)}
        config = {k: v for k, v in params.items() if k != SEED_PARAM}
        axes = {c[len(_tag(AXIS_PREFIX)):]: run[c] for c in axis_cols if isinstance(run[c], str)}
        seed_text = _first_present(run, [_tag(schema.SEED), schema.PARAMS_COLUMN + SEED_PARAM])
        own = _baseline_text(run)
        baseline = parse_mapping(own) if own is not None else parent_baseline.get(
            _tag_of(run, schema.PARENT_RUN_ID), {})
        rows.append({
            "study": names.get(run["experiment_id"], run["experiment_id"]),
            "run_id": run["run_id"],
            "run_name": _tag_of(run, schema.RUN_NAME) or "",
            "status": run["status"],
            "sweep_id": _tag_of(run, schema.SWEEP_ID) or "",
            "grid": _tag_of(run, schema.GRID) or "",
            "table": _tag_of(run, schema.TABLE) or "",
            "slug": _tag_of(run, schema.SLUG) or "",
            "config_hash": _tag_of(run, schema.CONFIG_HASH) or "",
            "stopped_early": _tag_of(run, schema.STOPPED_EARLY) == schema.TRUE,
            "code_version": _tag_of(run, schema.CODE_VERSION) or "",
            "variant": _tag_of(run, schema.VARIANT) or "",
            "seed": int(float(seed_text)) if seed_text is not None else None,
            "axes": axes,
            "config": config,
            "config_key": json.dumps(config, sort_keys=True),
            "data_digest": digests.get(run["run_id"], ""),
            "baseline": baseline,
            "backbone": params.get("model.backbone", ""),
            "temporal": params.get("model.temporal", ""),
            "dataset": params.get("data.dataset", ""),
            "frames": _int_or_none(params.get("data.num_frames")),
            "input_size": _int_or_none(params.get("data.input_size")),
            "views": parse_views(params.get("data.val_views")),
            "params_json": json.dumps(params, sort_keys=True),
            "artifact_uri": run.get("artifact_uri", ""),
            "start_time": run.get("start_time"),
        })
    split_by_data(rows)
    out = pd.DataFrame(rows)
    for name, metric in METRIC_COLUMNS.items():
        out[name] = _number(_column(trials, schema.METRICS_COLUMN + metric)).to_numpy()
    for column in trials.columns:
        metric = column[len(schema.METRICS_COLUMN):]
        if column.startswith(schema.METRICS_COLUMN) and (schema.parse_protocol_metric(metric)
                                                         or metric.startswith(schema.CHECKPOINT_PREFIX)):
            out[metric] = _number(trials[column]).to_numpy()
    out = out.sort_values(["study", "config_key", "seed", "start_time", "run_id"], na_position="last")
    return out.reset_index(drop=True)


def _tag(name: str) -> str:
    return schema.TAGS_COLUMN + name


def _tag_of(row: pd.Series, name: str):
    return _first_present(row, [_tag(name)])


def _baseline_text(row: pd.Series):
    """The baseline a run logged: tag :data:`~gsf.mlflow_schema.BASELINE`, or a ``baseline`` param."""
    return _first_present(row, [_tag(schema.BASELINE), schema.PARAMS_COLUMN + "baseline"])


def _parent_baseline(parent: pd.Series) -> dict[str, str]:
    """The baseline a sweep's parent run logged; empty, with a warning, for a sweep that logged none (sweeps
    before the baseline was logged on the parent run: their grid file is not read, it may have changed)."""
    text = _baseline_text(parent)
    if text is None:
        log.warning("sweep run %s (%s) logged no baseline (tag %s): its trials are compared with none",
                    parent["run_id"], _tag_of(parent, schema.GRID) or "unknown grid", schema.BASELINE)
        return {}
    return parse_mapping(text)


def _first_present(row: pd.Series, keys: Sequence[str]):
    for key in keys:
        value = row.get(key)
        if isinstance(value, str) and value != "":
            return value
    return None


def _int_or_none(text) -> int | None:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        return None


def metric_history(uri: str, run_ids: Iterable[str], keys: Sequence[str] = HISTORY_KEYS) -> pd.DataFrame:
    """Long frame ``run_id, key, epoch, value`` of the per-epoch metrics (MLflow step = epoch), sorted."""
    client = _client(uri)
    rows = []
    for run_id in run_ids:
        for key in keys:
            for metric in client.get_metric_history(run_id, key):
                rows.append({"run_id": run_id, "key": key, "epoch": int(metric.step), "value": float(metric.value)})
    frame = pd.DataFrame(rows, columns=["run_id", "key", "epoch", "value"])
    return frame.sort_values(["run_id", "key", "epoch"]).reset_index(drop=True)


def score_files(uri: str, run_id: str) -> list[str]:
    """Artifact paths ``scores/*.csv`` of a run, sorted."""
    client = _client(uri)
    try:
        listed = client.list_artifacts(run_id, "scores")
    except Exception:  # a run without artifacts, or an artifact store that is gone
        return []
    return sorted(f.path for f in listed if not f.is_dir and f.path.endswith(".csv"))


def choose_score_file(paths: Sequence[str]) -> str | None:
    """The per-video scores a report uses: the last validation epoch (``val_epoch<N>.csv``, largest N,
    the epoch the final metrics come from), else the first ``test_*.csv`` in name order."""
    epochs = []
    for path in paths:
        match = re.search(r"val_epoch(\d+)\.csv$", path)
        if match:
            epochs.append((int(match.group(1)), path))
    if epochs:
        return max(epochs)[1]
    tests = sorted(p for p in paths if Path(p).name.startswith("test_"))
    return tests[0] if tests else None


def download_artifact(uri: str, run_id: str, path: str, dst: Path) -> Path:
    """Download one artifact of a run into ``dst`` and return its local path."""
    import mlflow.artifacts

    dst.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(_PROGRESS_BAR)
    os.environ[_PROGRESS_BAR] = "false"  # the report's output is the files, not a progress bar per artifact
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst),
                                                        tracking_uri=uri))
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_BAR, None)
        else:
            os.environ[_PROGRESS_BAR] = previous

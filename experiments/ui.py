"""The MLflow UI of ``gsf ui`` (:mod:`experiments.ui_cli`): the server command and a study's runs page laid out
as a paper table.

Before the server starts, every experiment of the store that holds the suite's runs is tagged as a
model-training experiment (MLflow 3 opens it in its "Model training" view, not the GenAI one), and the study
gets two saved views (experiment tags MLflow's runs page lists under "Views"): :data:`TABLE_VIEW`, the trials
grouped by sweep and sorted by variant with a paper table's columns, and :data:`CHARTS_VIEW`, the trials
averaged over seeds per variant in charts of the same metrics. The printed address opens the first.

The server is ``mlflow server`` started as a subprocess from an argument list (never a shell string), bound
to 127.0.0.1 unless ``--host`` says otherwise; exposing it on a network is a deliberate choice (see
docs/cluster.md). Ctrl-C stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from gsf import mlflow_schema as schema
from gsf.errors import GSFConfigError, GSFTrackingError

STARTUP_TIMEOUT_S = 180.0  # a hang guard: on a loaded 2-core machine the server has taken over a minute
# Saved views of a study's runs page (ids of experiment tags ``mlflow.sharedViewState.<id>``; rewritten by
# every ``gsf ui``, so that they list the metrics the study's trials have logged so far).
TABLE_VIEW = "gsf-paper-table"
CHARTS_VIEW = "gsf-charts"
VIEW_NAMES = {TABLE_VIEW: "Paper table (trials by sweep)", CHARTS_VIEW: "Charts (mean over seeds per variant)"}
PAPER_SECTION = "gsf-paper"  # the chart section holding the paper table's charts, above MLflow's own


def server_command(uri: str, host: str, port: int) -> list[str]:
    """The ``mlflow server`` argument list (artifacts are served from where each experiment keeps them)."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
            "--port", str(port), "--workers", "1"]


def column(kind: str, key: str) -> str:
    """A runs-page column id: ``tags``, ``params``, ``metrics`` or ``attributes`` and a key, as MLflow's UI
    names them (``metrics.`best_val_top1```)."""
    return f"{kind}.`{key}`"


def _protocol_order(metric: str) -> tuple[int, int]:
    clips, crops = schema.parse_protocol_metric(metric)[0].split("x")
    return int(clips), int(crops)


def trial_columns(mlflow_client, experiment_id: str) -> dict[str, list[str]]:
    """What the study's trial runs hold, in a paper table's order: ``axes`` (the ``gsf.axis.*`` tags: the varied
    knobs), ``test`` (the ``test_<P>_top1`` metrics, by protocol)."""
    from experiments import tracking

    axes: set[str] = set()
    test: set[str] = set()
    for run in tracking.find_runs(mlflow_client, experiment_id, {schema.ROLE: schema.ROLE_TRIAL}):
        axes.update(key for key in run.data.tags if key.startswith(schema.AXIS_PREFIX))
        test.update(key for key in run.data.metrics
                    if (parsed := schema.parse_protocol_metric(key)) and parsed[1] == "top1")
    return {"axes": sorted(axes), "test": sorted(test, key=_protocol_order)}


def table_view(found: dict[str, list[str]]) -> dict:
    """The runs page as a paper table: the study's trials (the sweeps' parent runs filtered out) grouped by
    sweep, sorted by variant, with columns variant, varied knobs, seed, best val top-1, test top-1 per
    protocol, GMACs and params, then the data each trial read (MLflow's Dataset column: the dataset input's
    name and digest); a run's status is the icon of MLflow's "Created" column."""
    columns = ([column("tags", schema.VARIANT)] + [column("tags", key) for key in found["axes"]]
               + [column("tags", schema.SEED), column("metrics", schema.BEST_VAL_TOP1)]
               + [column("metrics", key) for key in found["test"]]
               + [column("metrics", schema.GMACS), column("metrics", schema.PARAMS),
                  column("attributes", "Dataset")])
    return {"searchFilter": f"tags.`{schema.ROLE}` = {schema.quote(schema.ROLE_TRIAL)}",
            "orderByKey": column("tags", schema.VARIANT), "orderByAsc": True,
            "selectedColumns": columns,
            "columnOrder": [column("attributes", "Run Name"), column("attributes", "Created"), *columns],
            "columnWidths": {column("attributes", "Run Name"): 320,
                             **{column("tags", key): 190 for key in found["axes"]}},
            "groupBy": {"aggregateFunction": "average",
                        "groupByKeys": [{"mode": "tag", "groupByData": schema.SWEEP_ID}]}}


def charts_view(found: dict[str, list[str]]) -> dict:
    """The study's charts: the trials averaged over seeds per variant (one bar per variant) for best val
    top-1, each protocol's test top-1, accuracy against GMACs, and the curves of the per-epoch history metrics
    (training loss, validation top-1 and top-5); MLflow adds one chart per other metric below them."""
    def card(index: int, kind: str, **fields) -> dict:
        return {"type": kind, "uuid": f"gsf-chart-{index}", "metricSectionId": PAPER_SECTION, "deleted": False,
                "isGenerated": False, **fields}

    accuracy = [schema.BEST_VAL_TOP1, *found["test"]]
    cards = [card(i, "BAR", metricKey=key) for i, key in enumerate(accuracy)]
    cards.append(card(len(cards), "SCATTER", xaxis={"key": schema.GMACS, "type": "METRIC"},
                      yaxis={"key": accuracy[-1], "type": "METRIC"}, runsCountToCompare=100))
    for key in schema.HISTORY_METRICS:
        cards.append(card(len(cards), "LINE", metricKey=key, selectedMetricKeys=[key], xAxisKey="step",
                          scaleType="linear", lineSmoothness=0))
    table = table_view(found)
    return {"searchFilter": table["searchFilter"], "orderByKey": table["orderByKey"], "orderByAsc": True,
            "groupBy": {"aggregateFunction": "average",
                        "groupByKeys": [{"mode": "tag", "groupByData": schema.VARIANT}]},
            "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "runsHiddenMode": "SHOW_ALL",
            "isAccordionReordered": True, "compareRunCharts": cards,
            "compareRunSections": [{"uuid": PAPER_SECTION, "name": "Paper table", "display": True,
                                    "isReordered": True, "deleted": False, "isGenerated": False}]}


def save_views(mlflow_client, experiment_id: str, *, now_ms: int) -> dict[str, dict]:
    """Write the study's saved views (:data:`TABLE_VIEW`, :data:`CHARTS_VIEW`) as experiment tags, in the
    envelope MLflow's runs page reads (``name``, ``createdAt``, ``state``: the view as JSON). Returns them."""
    found = trial_columns(mlflow_client, experiment_id)
    views = {TABLE_VIEW: table_view(found), CHARTS_VIEW: charts_view(found)}
    for view_id, state in views.items():
        envelope = {"name": VIEW_NAMES[view_id], "createdAt": now_ms, "state": json.dumps(state)}
        mlflow_client.set_experiment_tag(experiment_id, schema.SAVED_VIEW_PREFIX + view_id, json.dumps(envelope))
    return views


def runs_page(base: str, experiment_id: str, *, view: str | None = None, charts: bool = False) -> str:
    """A study's runs page in MLflow's "Model training" view, with saved view ``view`` applied (and its charts
    shown rather than its table when ``charts``)."""
    query = "workflowType=machine_learning"
    if view:
        query += f"&viewStateShareKey={view}"
    if charts:
        query += "&compareRunsMode=CHART"
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def prepare_store(uri: str, study: str | None) -> str | None:
    """Tag the suite's experiments as model-training ones and save the views of ``study`` (default: the most
    recently active experiment); returns its experiment id (None for an empty store)."""
    from experiments import tracking

    client = tracking.client(uri)
    for experiment in tracking.suite_experiments(client):
        tracking.mark_model_training(client, experiment)
    if study:
        experiment = client.get_experiment_by_name(study)
        if experiment is None:
            raise GSFConfigError(f"no study (MLflow experiment) named {study!r} in {uri}")
    else:
        found = client.search_experiments(order_by=["last_update_time DESC"], max_results=1)
        experiment = found[0] if found else None
    if experiment is None:
        return None
    save_views(client, experiment.experiment_id, now_ms=int(time.time() * 1000))
    return experiment.experiment_id


def study_urls(uri: str, host: str, port: int, study: str | None) -> dict[str, str]:
    """After :func:`prepare_store`, the pages of ``study`` (default: the latest active experiment): ``table``,
    its runs page as a paper table (:data:`TABLE_VIEW`), and ``charts`` (:data:`CHARTS_VIEW`); only ``table``,
    the server's home page, for an empty store."""
    base = f"http://{host}:{port}"
    experiment_id = prepare_store(uri, study)
    if experiment_id is None:
        return {"table": base}
    return {"table": runs_page(base, experiment_id, view=TABLE_VIEW),
            "charts": runs_page(base, experiment_id, view=CHARTS_VIEW, charts=True)}


def stop_server(process: subprocess.Popen, *, timeout: float) -> None:
    """Stop ``process`` (an ``mlflow server``): terminate it, and kill it if it has not ended within
    ``timeout`` seconds. A process that has already ended is left as it is."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_ready(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GSFTrackingError(f"mlflow server exited with code {process.returncode} before answering on {url}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):  # noqa: S310 (http only)
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise GSFTrackingError(f"mlflow server did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s")

"""Tracking preflight and ``gsf ui``: a dead server fails fast naming its URI; the UI binds to loopback, opens the
suite's experiments in MLflow's model-training view and the study's runs page as a paper table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments import tracking, ui
from experiments.ui import server_command
from gsf import mlflow_schema as schema
from gsf.errors import GSFTrackingError
from tests.ports import free_port


def test_preflight_fails_fast_naming_an_unreachable_server():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GSFTrackingError, match=uri.replace(".", r"\.")):
        tracking.preflight(uri, timeout=2)


def test_preflight_rejects_a_missing_sqlite_folder_and_the_deprecated_file_store(tmp_path):
    with pytest.raises(GSFTrackingError, match="does not exist"):
        tracking.preflight(f"sqlite:///{tmp_path}/missing/mlflow.db")
    with pytest.raises(GSFTrackingError, match="deprecated"):
        tracking.preflight(str(tmp_path / "mlruns"))
    tracking.preflight(tracking.default_tracking_uri(tmp_path))
    assert tracking.default_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, object]:
    """One SQLite store for the module's tests (each uses experiments of its own names): its URI and client."""
    uri = tracking.default_tracking_uri(tmp_path_factory.mktemp("store"))
    return uri, tracking.client(uri)


def test_experiments_the_suite_creates_or_reuses_are_of_the_model_training_kind(store):
    uri, client = store
    new = tracking.ensure_experiment(client, "gsf-new", uri=uri, description="a study")
    assert client.get_experiment(new).tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_MODEL_TRAINING
    older = client.create_experiment("gsf-older")  # as a store written before the suite set the kind
    assert tracking.ensure_experiment(client, "gsf-older", uri=uri) == older
    assert client.get_experiment(older).tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_MODEL_TRAINING
    chosen = client.create_experiment("gsf-chosen", tags={schema.EXPERIMENT_KIND: "genai_development"})
    tracking.ensure_experiment(client, "gsf-chosen", uri=uri)
    assert client.get_experiment(chosen).tags[schema.EXPERIMENT_KIND] == "genai_development"  # a choice is kept


def hand_logged_study(client, name: str = "gsf-ui-views") -> str:
    """A study as the sweep runner lays it out: a parent run and three trials (two variants, an axis, test
    protocols 1x1, 10x3 and 2x3), logged with the MLflow client in a store of no kind (as an older store)."""
    from mlflow.entities import Metric

    experiment = client.create_experiment(name)
    parent = client.create_run(experiment, run_name="sweep", tags={schema.ROLE: schema.ROLE_SWEEP,
                                                                   schema.SWEEP_ID: "sweep-1"}).info.run_id
    for variant, temporal, seed in (("TSN", "none", 0), ("GSF", "gsf", 0), ("GSF", "gsf", 1)):
        run = client.create_run(experiment, run_name=f"{variant} ({seed})", tags=tracking.trial_tags(
            slug=f"temporal={temporal},seed={seed}", variant=variant, config_hash=f"{temporal}{seed}", grid="g",
            table="t", sweep_id="sweep-1", seed=seed, code="c", parent_run_id=parent,
            axes={"model.temporal": temporal, schema.SEED_PARAM: seed})).info.run_id
        keys = [schema.BEST_VAL_TOP1, schema.GMACS, schema.PARAMS, "test_1x1_top1", "test_10x3_top1",
                "test_2x3_top1", "test_2x3_top5"]
        client.log_batch(run, metrics=[Metric(key, 0.5, 0, 1) for key in keys])
    return experiment


def saved_view(client, experiment_id: str, view_id: str) -> dict:
    envelope = json.loads(client.get_experiment(experiment_id).tags[schema.SAVED_VIEW_PREFIX + view_id])
    assert envelope["name"] == ui.VIEW_NAMES[view_id] and isinstance(envelope["createdAt"], int)
    return json.loads(envelope["state"])


def test_gsf_ui_lays_the_studys_runs_page_out_as_a_paper_table_of_trials_grouped_by_sweep(store):
    uri, client = store
    experiment_id = hand_logged_study(client)
    other = client.create_experiment("not-the-suites")
    urls = ui.study_urls(uri, "127.0.0.1", 5001, "gsf-ui-views")
    assert urls["table"] == (f"http://127.0.0.1:5001/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
                             f"&viewStateShareKey={ui.TABLE_VIEW}")
    assert urls["charts"].endswith(f"viewStateShareKey={ui.CHARTS_VIEW}&compareRunsMode=CHART")
    assert client.get_experiment(experiment_id).tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_MODEL_TRAINING
    assert schema.EXPERIMENT_KIND not in client.get_experiment(other).tags  # only the suite's experiments
    table = saved_view(client, experiment_id, ui.TABLE_VIEW)
    assert table["selectedColumns"] == [
        "tags.`gsf.variant`", "tags.`gsf.axis.model.temporal`", "tags.`gsf.seed`", "metrics.`best_val_top1`",
        "metrics.`test_1x1_top1`", "metrics.`test_2x3_top1`", "metrics.`test_10x3_top1`", "metrics.`gmacs`",
        "metrics.`params`", "attributes.`Dataset`"]
    assert (table["orderByKey"], table["orderByAsc"]) == ("tags.`gsf.variant`", True)
    assert table["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": schema.SWEEP_ID}]
    trials = client.search_runs([experiment_id], filter_string=table["searchFilter"])
    assert sorted(run.data.tags[schema.VARIANT] for run in trials) == ["GSF", "GSF", "TSN"]  # the parent left out


def test_gsf_ui_gives_the_study_charts_of_its_paper_metrics_averaged_per_variant(store):
    uri, client = store
    experiment_id = hand_logged_study(client, "gsf-ui-charts")
    assert ui.prepare_store(uri, "gsf-ui-charts") == experiment_id
    charts = saved_view(client, experiment_id, ui.CHARTS_VIEW)
    assert charts["groupBy"] == {"aggregateFunction": "average",
                                 "groupByKeys": [{"mode": "tag", "groupByData": schema.VARIANT}]}
    bars = [card["metricKey"] for card in charts["compareRunCharts"] if card["type"] == "BAR"]
    assert bars == ["best_val_top1", "test_1x1_top1", "test_2x3_top1", "test_10x3_top1"]
    sections = {section["uuid"] for section in charts["compareRunSections"]}
    assert all(card["metricSectionId"] in sections for card in charts["compareRunCharts"])


def test_ui_server_is_an_argument_list_bound_to_the_given_host():
    argv = server_command("sqlite:////x/mlflow.db", "127.0.0.1", 5001)
    assert argv[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "5001"


@pytest.mark.slow
def test_gsf_ui_prints_the_runs_page_of_the_study(tmp_path):
    uri = tracking.default_tracking_uri(tmp_path)
    client = tracking.client(uri)
    experiment_id = tracking.ensure_experiment(client, "gsf-ui-test", uri=uri)
    port = free_port()
    done = subprocess.run([sys.executable, "-m", "gsf.cli", "ui", "--tracking-uri", uri, "--port", str(port),
                           "--study", "gsf-ui-test", "--exit-when-ready"], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path)  # the server may write beside it: not into the checkout
    assert done.returncode == 0, done.stderr[-3000:]
    runs_page = f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    assert f"MLflow UI: {runs_page}&viewStateShareKey={ui.TABLE_VIEW}\n" in done.stdout
    assert f"charts: {runs_page}&viewStateShareKey={ui.CHARTS_VIEW}&compareRunsMode=CHART\n" in done.stdout


def test_stop_server_terminates_a_server_and_kills_one_that_ignores_the_terminate_signal():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ui.stop_server(polite, timeout=30)
    assert polite.returncode is not None and polite.returncode != 0  # ended by the signal, not by itself
    stubborn = subprocess.Popen([sys.executable, "-c", (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
        "time.sleep(60)")], stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout.readline().strip() == "ready"  # the handler is in place before the stop
    ui.stop_server(stubborn, timeout=0.5)
    assert stubborn.returncode == -9  # SIGKILL: terminate was ignored
    stubborn.stdout.close()
    ui.stop_server(stubborn, timeout=0.5)  # an ended process is left as it is

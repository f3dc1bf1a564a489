"""Tracking preflight and ``gsf ui``: a dead server fails fast naming its URI; the UI binds to loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from experiments import tracking
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


def test_experiments_the_suite_creates_or_reuses_are_of_the_model_training_kind(tmp_path):
    uri = tracking.default_tracking_uri(tmp_path)
    client = tracking.client(uri)
    new = tracking.ensure_experiment(client, "gsf-new", uri=uri, description="a study")
    assert client.get_experiment(new).tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_MODEL_TRAINING
    older = client.create_experiment("gsf-older")  # as a store written before the suite set the kind
    assert tracking.ensure_experiment(client, "gsf-older", uri=uri) == older
    assert client.get_experiment(older).tags[schema.EXPERIMENT_KIND] == schema.EXPERIMENT_KIND_MODEL_TRAINING
    chosen = client.create_experiment("gsf-chosen", tags={schema.EXPERIMENT_KIND: "genai_development"})
    tracking.ensure_experiment(client, "gsf-chosen", uri=uri)
    assert client.get_experiment(chosen).tags[schema.EXPERIMENT_KIND] == "genai_development"  # a choice is kept


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
    assert f"MLflow UI: http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs" in done.stdout

"""The MLflow UI in a real (headless) browser: the page ``gsf ui`` prints, on a store holding a sweep's parent run
and two trial runs (logged here with the MLflow client, in the sweep runner's layout), shows every trial under
its sweep in MLflow's model-training view with a paper table's columns (read from the page's DOM, Chromium's
``--dump-dom``), and a screenshot of it can be taken (into the test's temporary folder: ``python -m
experiments.ui_screenshot`` regenerates the README's from a real sweep).

Chromium is a prerequisite of the test suite (``.ci/run`` and the README's test command install it): missing, the
test fails under CI (``CI=true``) and is skipped elsewhere, with the same message."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from experiments.ui_screenshot import BROWSER_HOST, CHROMIUM, browse, browser_server_env, save_screenshot
from tests.ports import free_port

from .test_faults import Group, sweep_env

STUDY, SWEEP_NAME = "gsf-test-ui", "tiny-ui-sweep"
SWEEP_ID = f"{SWEEP_NAME}-0a1b2c3d"
TRIALS = {"temporal=none,seed=0": "TSN", "temporal=tsm,seed=0": "TSM"}
MISSING = (f"{CHROMIUM} is missing: the browser test needs Chromium (apt-get install -y chromium, as .ci/run "
           "and the README's test command do)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return CHROMIUM


def logged_sweep(uri: str, artifacts: Path) -> dict:
    """A sweep's parent run and its two trial runs, as the sweep runner lays them out (tags, params, two epochs
    of metrics), logged with the MLflow client; returns their names."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.create_experiment(STUDY, artifact_location=artifacts.as_uri())
    sweep_id = SWEEP_ID
    parent = client.create_run(experiment, run_name=SWEEP_NAME, tags={
        "gsf.role": "sweep", "gsf.sweep_id": sweep_id, "gsf.grid": "tiny", "gsf.table": "tiny"}).info.run_id
    names = []
    for step, (slug, variant) in enumerate(TRIALS.items()):
        name = f"{variant} ({slug})"
        run = client.create_run(experiment, run_name=name, tags={
            "mlflow.parentRunId": parent, "gsf.role": "trial", "gsf.slug": slug, "gsf.variant": variant,
            "gsf.sweep_id": sweep_id, "gsf.seed": "0", "gsf.axis.model.temporal": slug.split(",")[0].split("=")[1]})
        metrics = [Metric(key, value, 0, epoch) for epoch in (1, 2)
                   for key, value in (("epoch", epoch), ("val_top1", 0.25 * epoch + 0.1 * step))]
        metrics += [Metric(key, value, 0, 2) for key, value in (
            ("best_val_top1", 0.5 + 0.1 * step), ("test_1x1_top1", 0.4 + 0.1 * step), ("test_2x3_top1", 0.45),
            ("gmacs", 1.5), ("params", 11e6))]
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param("model.temporal", slug.split(",")[0].split("=")[1]), Param("optim.epochs", "2")],
                         tags=[RunTag("gsf.table", "tiny")])
        client.set_terminated(run.info.run_id, "FINISHED")
        names.append(name)
    client.set_terminated(parent, "FINISHED")
    return {"parent": SWEEP_NAME, "trials": sorted(names)}


def test_gsf_ui_shows_every_trial_under_its_sweep_with_a_paper_tables_columns_in_a_browser(tmp_path, chromium):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = logged_sweep(uri, tmp_path / "artifacts")
    group = Group()
    try:
        port = free_port()
        ui_log = tmp_path / "ui.log"
        # The browser calls the server BROWSER_HOST: from a loopback name MLflow opens its Assistant panel over
        # a third of the page, and the table then renders (and puts in the DOM) fewer of its columns.
        group.start([sys.executable, "-m", "gsf.cli", "ui", "--tracking-uri", uri, "--port", str(port),
                     "--study", STUDY], log=ui_log, cwd=tmp_path, env={**browser_server_env(port), **sweep_env()})
        deadline = time.monotonic() + 120  # a hang guard: the server answers within seconds
        while not (found := re.search(r"MLflow UI: (\S+)", ui_log.read_text(errors="replace"))):
            assert time.monotonic() < deadline, ui_log.read_text()[-3000:]
            time.sleep(0.5)
        url = found.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/"), url
        url = url.replace("127.0.0.1", BROWSER_HOST)

        dom = browse(chromium, url, tmp_path / "profile", "--dump-dom", "--window-size=1600,1000")
        genai = [item for item in ("Judges", "Prompts", "Evaluation runs") if item in dom]
        assert "Model registry" in dom and not genai, f"not MLflow's model-training view: GenAI items {genai}"
        assert re.search(r"Group:\s*(<[^>]*>\s*)*" + re.escape(SWEEP_ID), dom), f"no group of sweep {SWEEP_ID}"
        missing = [name for name in logged["trials"] if name not in dom]
        assert not missing, f"{missing} not in the rendered page {url}"
        headers = set(re.findall(r'col-id="([^"]+)"', dom))
        wanted = {"tags.`gsf.variant`", "tags.`gsf.axis.model.temporal`", "tags.`gsf.seed`",
                  "metrics.`best_val_top1`", "metrics.`test_1x1_top1`", "metrics.`test_2x3_top1`",
                  "metrics.`gmacs`", "metrics.`params`", "attributes.`Dataset`"}
        assert wanted <= headers, f"columns {sorted(wanted - headers)} not on the page; it has {sorted(headers)}"
        screenshot = save_screenshot(chromium, url, tmp_path / "ui" / "mlflow-runs.png", tmp_path / "profile")
        assert screenshot.stat().st_size > 10_000
    finally:
        group.kill_all()


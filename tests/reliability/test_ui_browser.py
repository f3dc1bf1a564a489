"""The MLflow UI in a real (headless) browser: ``gsf ui`` on a store holding a sweep's parent run and two trial
runs (logged here with the MLflow client, in the sweep runner's layout) shows every trial's run under its sweep,
and a screenshot of its runs page can be taken (into the test's temporary folder: ``python -m
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

from experiments.ui_screenshot import CHROMIUM, browse, flat_runs_url, save_screenshot
from tests.ports import free_port

from .test_faults import Group, sweep_env

STUDY, SWEEP_NAME = "gsf-test-ui", "tiny-ui-sweep"
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
    sweep_id = f"{SWEEP_NAME}-0a1b2c3d"
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
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param("model.temporal", slug.split(",")[0].split("=")[1]), Param("optim.epochs", "2")],
                         tags=[RunTag("gsf.table", "tiny")])
        client.set_terminated(run.info.run_id, "FINISHED")
        names.append(name)
    client.set_terminated(parent, "FINISHED")
    return {"parent": SWEEP_NAME, "trials": sorted(names)}


def test_gsf_ui_shows_every_trial_under_its_sweep_in_a_browser(tmp_path, chromium):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logged = logged_sweep(uri, tmp_path / "artifacts")
    group = Group()
    try:
        port = free_port()
        ui_log = tmp_path / "ui.log"
        group.start([sys.executable, "-m", "gsf.cli", "ui", "--tracking-uri", uri, "--port", str(port),
                     "--study", STUDY], log=ui_log, cwd=tmp_path, env=sweep_env())
        deadline = time.monotonic() + 120  # a hang guard: the server answers within seconds
        while not (found := re.search(r"MLflow UI: (\S+)", ui_log.read_text(errors="replace"))):
            assert time.monotonic() < deadline, ui_log.read_text()[-3000:]
            time.sleep(0.5)
        url = found.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/") and url.endswith("/runs")

        # The runs page nests a sweep's trials under its collapsed parent, and which parents are expanded is
        # kept in the browser, not in the URL. Sorted by another key than the start time, MLflow lists runs
        # flat: the parent and every trial are rows of the same table.
        flat = flat_runs_url(url)
        dom = browse(chromium, flat, tmp_path / "profile", "--dump-dom")
        rows = re.findall(r'role="row"', dom)
        assert logged["parent"] in dom, dom[-2000:]
        missing = [name for name in logged["trials"] if name not in dom]
        assert not missing, f"{missing} not in the rendered page {flat}"
        assert len(rows) >= 1 + 1 + len(logged["trials"]), f"{len(rows)} table rows in {flat}"  # header, runs
        screenshot = save_screenshot(chromium, flat, tmp_path / "ui" / "mlflow-runs.png", tmp_path / "profile")
        assert screenshot.stat().st_size > 10_000
    finally:
        group.kill_all()

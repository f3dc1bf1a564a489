"""The MLflow UI in a real (headless) browser: ``gsf ui`` on the store of a tiny real sweep shows every
trial's run under its sweep, and a screenshot of its runs page can be taken (into the test's temporary folder:
``python -m experiments.ui_screenshot`` regenerates the README's)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.ui_screenshot import CHROMIUM, browse, flat_runs_url, save_screenshot

from .conftest import free_port
from .test_faults import Group, gsf_sweep, one_trial_grid, sweep_env, wait_exit

SWEEP_NAME = "tiny-ui-sweep"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The system's Chromium, installed with apt-get when missing and we are root; else skip."""
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            pytest.skip("chromium is not installed and cannot be (needs root and apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update"], check=False, capture_output=True, timeout=600, env=env)
        done = subprocess.run([apt, "install", "-y", "--no-install-recommends", "chromium"], capture_output=True,
                              text=True, timeout=900, env=env)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"apt-get install chromium failed: {done.stderr[-500:]}")
    return CHROMIUM


def test_gsf_ui_shows_every_trial_under_its_sweep_in_a_browser(tmp_path, tiny_root, chromium):
    import yaml

    grid = one_trial_grid(tmp_path, epochs=2)
    spec = yaml.safe_load(grid.read_text())
    spec["axes"] = {"model.temporal": ["none", "tsm"]}
    grid.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    group = Group()
    try:
        log = tmp_path / "sweep.log"
        argv = gsf_sweep(grid, tiny_root, tmp_path, uri)
        argv[argv.index("--name") + 1] = SWEEP_NAME  # a name the page shows only as the parent run's
        sweep = group.start(argv, log=log, cwd=tmp_path)
        assert wait_exit(sweep, log) == 0, log.read_text()[-4000:]
        port = free_port()
        ui_log = tmp_path / "ui.log"
        group.start([sys.executable, "-m", "gsf.cli", "ui", "--tracking-uri", uri, "--port", str(port),
                     "--study", "gsf-test-tiny"], log=ui_log, cwd=tmp_path, env=sweep_env())
        deadline = time.monotonic() + 120
        while not (found := re.search(r"MLflow UI: (\S+)", ui_log.read_text(errors="replace"))):
            assert time.monotonic() < deadline, ui_log.read_text()[-3000:]
            time.sleep(0.5)
        url = found.group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/#/experiments/") and url.endswith("/runs")

        from mlflow.tracking import MlflowClient

        runs = MlflowClient(uri).search_runs([url.split("/")[-2]])
        parent = next(r for r in runs if r.data.tags.get("gsf.role") == "sweep")
        slugs = sorted(r.data.tags["gsf.slug"] for r in runs if r.data.tags.get("gsf.role") == "trial")
        assert slugs == ["temporal=none,seed=0", "temporal=tsm,seed=0"]
        names = sorted(r.info.run_name for r in runs if r.data.tags.get("gsf.role") == "trial")
        assert names == ["TSM (temporal=tsm,seed=0)", "TSN (temporal=none,seed=0)"]
        # The runs page nests a sweep's trials under its collapsed parent, and which parents are expanded is
        # kept in the browser, not in the URL. Sorted by another key than the start time, MLflow lists runs
        # flat: the parent and every trial are rows of the same table.
        flat = flat_runs_url(url)
        dom = browse(chromium, flat, tmp_path / "profile", "--dump-dom")
        rows = re.findall(r'role="row"', dom)
        assert parent.info.run_name in dom, dom[-2000:]
        missing = [s for s in names if s not in dom]
        assert not missing, f"{missing} not in the rendered page {flat}"
        assert len(rows) >= 1 + len(slugs) + 1, f"{len(rows)} table rows in {flat}"  # header, parent, trials
        screenshot = save_screenshot(chromium, flat, tmp_path / "ui" / "mlflow-runs.png", tmp_path / "profile")
        assert screenshot.stat().st_size > 10_000
    finally:
        group.kill_all()

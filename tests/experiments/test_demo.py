"""``gsf demo`` end to end on a tiny override of its grid (one seed, one epoch, 2 classes of 5 videos): the first
run writes the data, runs the demo sweep and the report, and exits 0; a second run reuses the data and resumes
the same sweep instead of starting another (no new run, no epoch again) and exits 0; a run whose data cannot be
written or whose sweep cannot start exits with that step's error code. One demo folder for the module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Processes, sweep_env
from test_sweep import SWEEP_TIMEOUT_S, epochs_logged, runs_of

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TINY_DEMO = ["--classes", "2", "--videos-per-class", "5", "--seeds", "0", "--max-concurrent", "2",
             "--set", "optim.epochs=1", "--set", "optim.warmup_epochs=0"]
VARIANTS = ["TSN", "TSM", "GSM", "GSF", "GSF G=1"]  # the demo grid's, at seed 0


def demo(processes: Processes, folder: Path, name: str, *args: str) -> tuple[int, str]:
    """``python -m gsf demo ARGS`` in ``folder`` (data, sweeps, MLflow store and results go under it)."""
    log = folder / f"{name}.log"
    process = processes.start([sys.executable, "-m", "gsf", "demo", *args], log=log,
                              env=sweep_env(PYTHONPATH=str(REPO)), cwd=folder)
    try:
        code = process.wait(timeout=2 * SWEEP_TIMEOUT_S)  # a hang guard: data, sweep and report
    except subprocess.TimeoutExpired:
        pytest.fail(f"gsf demo did not finish:\n{log.read_text()[-4000:]}")
    return code, log.read_text(errors="replace")


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    processes = Processes()
    code, text = demo(processes, folder, "first", *TINY_DEMO)
    yield {"folder": folder, "code": code, "text": text, "processes": processes}
    processes.kill_all()


def demo_runs(folder: Path):
    """The demo study's runs in the MLflow store gsf demo made in ``folder`` (its working directory)."""
    return runs_of(folder, "gsf-demo")


def test_a_first_demo_writes_the_data_runs_the_sweep_and_the_report(first_demo):
    folder, text = first_demo["folder"], first_demo["text"]
    assert first_demo["code"] == 0, text[-6000:]
    assert "writing the synthetic temporal benchmark to data/synth-demo" in text
    assert (folder / "data" / "synth-demo" / "labels.json").is_file()
    client, parents, children = demo_runs(folder)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["gsf.variant"] for r in children) == sorted(VARIANTS)
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["gsf.seed"] == "0"
        assert epochs_logged(client, run) == [1]
    assert (folder / "runs" / "sweeps" / "demo-seeds-0").is_dir()
    report = folder / "results" / "demo"
    assert (report / "README.md").is_file() and list(report.glob("*/table.csv"))
    assert f"gsf ui --tracking-uri sqlite:///{folder / 'mlflow.db'} --study gsf-demo" in text


def test_a_second_demo_reuses_the_data_and_resumes_the_sweep_without_new_runs(first_demo):
    folder = first_demo["folder"]
    data = folder / "data" / "synth-demo"
    written = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    client, _, children = demo_runs(folder)
    before = {r.info.run_id: [(m.step, m.timestamp) for m in client.get_metric_history(r.info.run_id, "epoch")]
              for r in children}

    code, text = demo(first_demo["processes"], folder, "second", *TINY_DEMO)
    assert code == 0, text[-6000:]
    assert "synthetic data already in data/synth-demo, reusing it" in text
    assert "runs/sweeps/demo-seeds-0 exists: resuming that sweep" in text
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()} == written  # not written again
    client, parents, children = demo_runs(folder)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {r.info.run_id: [(m.step, m.timestamp) for m in client.get_metric_history(r.info.run_id, "epoch")]
            for r in children} == before  # the same runs, no epoch trained or logged again


def test_a_demo_exits_with_the_code_of_the_step_that_failed(first_demo):
    folder, processes = first_demo["folder"], first_demo["processes"]
    code, text = demo(processes, folder, "bad-data", *TINY_DEMO, "--classes", "3", "--data", "data/odd")
    assert code == 2, text[-4000:]  # gsf data synth refuses an odd class count; nothing else runs
    assert "num_classes must be even" in text and "=== gsf demo: sweep" not in text
    assert not (folder / "data" / "odd" / "labels.json").exists()

    code, text = demo(processes, folder, "bad-set", *TINY_DEMO, "--set", "optim.lrr=1", "--storage", "runs/other")
    assert code == 2, text[-4000:]  # the sweep refuses the unknown key before it starts; the report still runs
    assert "did you mean 'optim.lr'" in text and "the sweep did not finish every trial" in text
    assert not (folder / "runs" / "other").exists()

"""A sweep one of whose trials fails for good (it reads a corrupt video, and the grid allows no retry): the
trial's MLflow run ends FAILED, the sweep's parent run FAILED, ``gsf sweep`` exits 1 naming the trial, and the
trial beside it (which skips unreadable videos) finishes. Resumed, the sweep marks a run it left RUNNING (what a
driver killed mid-trial leaves behind) KILLED. One sweep for the module, on a copy of the tiny data set."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from conftest import TINY_GRID, Processes, sweep_env, wait_marked_gone, wait_pg_gone
from test_sweep import SWEEP_TIMEOUT_S, epochs_logged, runs_of, sweep_args

pytestmark = pytest.mark.slow
FAILING, SKIPPING = "skip_bad_samples=false,seed=0", "skip_bad_samples=true,seed=0"


def run_sweep(process: subprocess.Popen, log) -> int:
    try:
        return process.wait(timeout=SWEEP_TIMEOUT_S)  # a hang guard
    except subprocess.TimeoutExpired:
        pytest.fail(f"sweep did not finish in {SWEEP_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory, synth_root):
    folder = tmp_path_factory.mktemp("failed_sweep")
    data = folder / "data"
    shutil.copytree(synth_root, data)
    corrupt = json.loads((data / "train.json").read_text())[0]["id"]
    (data / "20bn-something-something-v2" / f"{corrupt}.webm").write_bytes(b"not a video")
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"data.skip_bad_samples": [False, True]}
    grid["baseline"] = {"data.skip_bad_samples": False}
    grid["set"].update({"optim.epochs": 1, "optim.warmup_epochs": 0})
    grid["tune"] = {"max_failures": 0}  # failed for good at the first failure
    path = folder / "failing.yaml"
    path.write_text(yaml.safe_dump(grid))
    processes = Processes()
    args = sweep_args(folder, data, path, "--max-concurrent", "1")
    log = folder / "sweep.log"
    process = processes.sweep(args, log=log, env=sweep_env(), cwd=folder)
    code = run_sweep(process, log)
    yield {"folder": folder, "args": args, "code": code, "log": log, "process": process, "processes": processes,
           "corrupt": corrupt}
    processes.kill_all()


def test_gsf_sweep_exits_1_naming_the_trial_that_failed(failed_sweep):
    text = failed_sweep["log"].read_text(errors="replace")
    assert failed_sweep["code"] == 1, text[-6000:]
    assert f"trial {FAILING} failed: " in text and f"{failed_sweep['corrupt']}.webm" in text
    assert "1/2 trials finished" in text
    process = failed_sweep["process"]  # nothing of the failed sweep runs on
    assert wait_pg_gone(process.pid) and not wait_marked_gone(process.marker)


def test_the_failed_trials_run_is_failed_and_the_other_trials_run_finished(failed_sweep):
    client, _, children = runs_of(failed_sweep["folder"])
    by_slug = {r.data.tags["gsf.slug"]: r for r in children}
    assert sorted(by_slug) == sorted([FAILING, SKIPPING])
    failed, finished = by_slug[FAILING], by_slug[SKIPPING]
    assert failed.info.status == "FAILED"
    assert epochs_logged(client, failed) == [] and "final_val_top1" not in failed.data.metrics
    assert finished.info.status == "FINISHED"
    assert epochs_logged(client, finished) == [1] and "final_val_top1" in finished.data.metrics
    assert finished.data.metrics["train_skipped"] >= 1  # it met the corrupt video and skipped it


def test_the_sweeps_parent_run_is_failed(failed_sweep):
    _, parents, children = runs_of(failed_sweep["folder"])
    (parent,) = parents
    assert parent.info.status == "FAILED"
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)


def test_resuming_the_sweep_marks_a_run_it_left_running_killed(failed_sweep):
    client, parents, children = runs_of(failed_sweep["folder"])
    (parent,) = parents
    finished = next(r for r in children if r.info.status == "FINISHED")
    # a trial run of this sweep left RUNNING, as the trials of a driver killed mid-sweep are left
    orphan = client.create_run(parent.info.experiment_id, run_name="left running", tags={
        "gsf.role": "trial", "gsf.sweep_id": parent.data.tags["gsf.sweep_id"],
        "mlflow.parentRunId": parent.info.run_id}).info.run_id
    assert client.get_run(orphan).info.status == "RUNNING"

    log = failed_sweep["folder"] / "resume.log"
    process = failed_sweep["processes"].sweep([*failed_sweep["args"], "--resume"], log=log, env=sweep_env(),
                                              cwd=failed_sweep["folder"])
    code = run_sweep(process, log)
    text = log.read_text(errors="replace")
    assert code == 1, text[-6000:]  # the errored trial is retried on resume, and fails again
    assert "marked 1 run(s) left RUNNING by the previous driver as KILLED" in text
    assert client.get_run(orphan).info.status == "KILLED"
    client, parents, children = runs_of(failed_sweep["folder"])
    assert [p.info.status for p in parents] == ["FAILED"]
    by_slug = {r.data.tags.get("gsf.slug"): r for r in children if r.info.run_id != orphan}
    assert by_slug[FAILING].info.status == "FAILED"
    assert by_slug[SKIPPING].info.run_id == finished.info.run_id and by_slug[SKIPPING].info.status == "FINISHED"
    assert epochs_logged(client, by_slug[SKIPPING]) == [1]  # the finished trial was not run again

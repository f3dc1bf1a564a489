"""experiments/cluster/slurm_sweep.sbatch run with stand-ins for SLURM (srun, scontrol) and for the venv's ray and
gsf: Ray is stopped on every node and the sweep's exit status is the job's, also when the sweep fails
(``set -e`` used to end the script before ``ray stop``)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "cluster" / "slurm_sweep.sbatch"


def executable(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_job(tmp_path):
    """A job folder with stand-ins on PATH and in .venv/bin that append what they were asked to calls.log."""
    bin_dir, venv = tmp_path / "bin", tmp_path / ".venv" / "bin"
    bin_dir.mkdir()
    venv.mkdir(parents=True)
    calls = tmp_path / "calls.log"
    executable(bin_dir / "scontrol", 'echo node1; echo node2\n')
    # srun OPTIONS... COMMAND ARGS: run COMMAND (the first argument not starting with -, after the -w value)
    executable(bin_dir / "srun", f'echo "srun $*" >> {calls}\nwhile [[ $# -gt 0 && ( $1 == -* || $prev == -w ) ]]; '
                                 'do prev=$1; shift; done\n"$@"\n')
    executable(bin_dir / "hostname", 'echo 127.0.0.1\n')
    executable(bin_dir / "sleep", 'true\n')
    executable(venv / "ray", f'echo "ray $*" >> {calls}\n')
    executable(venv / "gsf", f'echo "gsf $*" >> {calls}\nexit "${{FAKE_SWEEP_STATUS:-0}}"\n')
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node[1-2]",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_CPUS_PER_TASK": "4", "SLURM_GPUS_PER_TASK": "0"}
    return tmp_path, env, calls


@pytest.mark.parametrize("sweep_status", [0, 3])
def test_ray_is_stopped_and_the_sweeps_status_is_the_jobs(fake_job, sweep_status):
    folder, env, calls = fake_job
    done = subprocess.run(["bash", str(SCRIPT), "grid.yaml", "http://127.0.0.1:5000"], cwd=folder, timeout=60,
                          env={**env, "FAKE_SWEEP_STATUS": str(sweep_status)}, capture_output=True, text=True)
    assert done.returncode == sweep_status, done.stderr
    lines = calls.read_text().splitlines()
    sweep = [i for i, line in enumerate(lines) if line.startswith("gsf sweep grid.yaml")]
    stops = [i for i, line in enumerate(lines) if line.startswith("ray stop")]
    assert len(sweep) == 1 and "--address 127.0.0.1:6379" in lines[sweep[0]]
    assert stops and stops[-1] > sweep[0], lines  # stopped after the sweep, failed or not
    assert any(line.startswith("srun --nodes=2 --ntasks-per-node=1") and "ray stop" in line for line in lines)

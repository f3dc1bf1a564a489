"""``gsf bench overhead``: what the sweep machinery and the input pipeline cost around the model.

Three measurements, side by side on the same machine in one run:

- **sweep overhead**: one tiny trial run through ``gsf sweep`` (local Ray, SQLite MLflow) against the same
  trial through ``gsf train``, each as a fresh process, wall-clock from start to exit;
- **Ray start-up**: ``ray.init`` of a local Ray as the sweep runner starts it, then ``ray.shutdown``;
- **input-bound?**: the data loader's clips/s (0 and 2 workers) against the model's consumption rate (training
  steps/s x batch) for the synthetic benchmark's configuration, so a reader sees whether training waits on
  data.

Writes ``overhead-cpu-pt<torch>-t<threads>.{csv,md}`` under ``--out``. It measures the sweep machinery, so it
lives in ``experiments`` beside the runner it times; ``gsf bench`` (:mod:`gsf.bench.cli`) names it in its table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gsf.errors import GSFEnvironmentError
from gsf.shipped import configs_dir

SYNTHETIC_CONFIG = configs_dir() / "synthetic.yaml"
# The Ray start-up program, run by this interpreter in a fresh process: it imports the sweep runner as the
# timed ``python -m gsf.cli`` commands import gsf, from wherever this interpreter finds the packages (an
# installed package, or a checkout on its path).
RAY_STARTUP = ("import time, ray\n"
               "from experiments.runner import start_ray\n"
               "t = time.perf_counter(); start_ray(None, num_cpus=1); up = time.perf_counter() - t\n"
               "ray.shutdown(); print(up)\n")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=2, help="runs of each timed command (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the loader/model rates")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip for the loader/model rates")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"))


def _timed(command: list[str], *, env: dict) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise GSFEnvironmentError(
            f"{' '.join(command[:4])} ... exited {completed.returncode}:\n{completed.stderr[-2000:]}")
    return elapsed


def _trial_overrides(root: Path, frames: int) -> list[str]:
    return [f"data.root={root}", "optim.epochs=1", "optim.warmup_epochs=0", "data.batch_size=4",
            "optim.base_batch_size=4", "data.num_workers=0", "runtime.progress=false", "runtime.num_threads=1",
            f"data.num_frames={frames}"]


def _sweep_vs_train(work: Path, root: Path, repeats: int) -> list[dict]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    gsf = [sys.executable, "-m", "gsf.cli"]
    overrides = _trial_overrides(root, frames=4)
    grid = work / "one_trial.yaml"
    grid.write_text(f"study: bench-overhead\ntable: overhead\nbase_config: {SYNTHETIC_CONFIG}\n"
                    "set:\n" + "".join(f"  {o.split('=', 1)[0]}: {o.split('=', 1)[1]}\n" for o in overrides)
                    + "axes:\n  model.temporal: [gsf]\nseeds: [0]\nresources: {cpus_per_trial: 1}\n")
    train_times, sweep_times = [], []
    for index in range(repeats):
        train_cmd = [*gsf, "train", str(SYNTHETIC_CONFIG), "--out", str(work / f"train{index}")]
        for override in overrides:
            train_cmd += ["--set", override]
        train_times.append(_timed(train_cmd, env=env))
        sweep_cmd = [*gsf, "sweep", str(grid), "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
                     "--storage", str(work / "sweeps"), "--name", f"s{index}"]
        sweep_times.append(_timed(sweep_cmd, env=env))
    train_s, sweep_s = statistics.median(train_times), statistics.median(sweep_times)
    return [
        {"measurement": "one tiny trial via gsf train", "value": round(train_s, 2), "unit": "s",
         "notes": f"median of {repeats}; fresh process, 1 epoch, resnet_tiny GSF"},
        {"measurement": "the same trial via gsf sweep", "value": round(sweep_s, 2), "unit": "s",
         "notes": f"median of {repeats}; local Ray + SQLite MLflow, includes Ray start-up"},
        {"measurement": "sweep overhead per one-trial sweep", "value": round(sweep_s - train_s, 2), "unit": "s",
         "notes": f"ratio sweep/train {sweep_s / train_s:.2f}x"},
    ]


def _ray_startup(repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", RAY_STARTUP], capture_output=True, text=True,
                             env={**os.environ, "RAY_AUTH_MODE": "disabled"})
        if out.returncode != 0:
            raise GSFEnvironmentError(f"ray start-up measurement failed:\n{out.stderr[-2000:]}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return {"measurement": "local Ray start-up (ray.init)", "value": round(statistics.median(times), 2), "unit": "s",
            "notes": f"median of {repeats}, fresh process each"}


def _input_bound(root: Path, frames: int, threads: int) -> list[dict]:
    import torch

    from gsf.bench.data import _clips_per_second
    from gsf.data import build_dataset
    from gsf.engine import load_config
    from gsf.models import build_model

    torch.set_num_threads(threads)
    config = load_config(SYNTHETIC_CONFIG, overrides=[f"data.root={root}", f"data.num_frames={frames}"])
    data = config.data
    dataset = build_dataset(data.dataset, root, "train", num_frames=frames, mode="train",
                            input_size=data.input_size, randaugment=data.randaugment)
    rows = []
    for workers in (0, 2):
        rate, clips = _clips_per_second(dataset, workers=workers, batch_size=data.batch_size, min_seconds=8.0)
        rows.append({"measurement": f"loader clips/s, {workers} workers", "value": round(rate, 1),
                     "unit": "clips/s", "notes": f"{clips} clips, {frames} frames, train augmentation"})
    model = build_model(backbone=config.model.backbone, temporal=config.model.temporal, num_classes=len(dataset.class_names),
                        num_frames=frames)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    clips = torch.randn(data.batch_size, frames, 3, data.input_size, data.input_size)
    labels = torch.zeros(data.batch_size, dtype=torch.long)
    times = []
    for step in range(12):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(clips), labels).backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    model_rate = data.batch_size / statistics.median(times)
    best_loader = max(r["value"] for r in rows)
    rows.append({"measurement": "model consumption clips/s (train step)", "value": round(model_rate, 1),
                 "unit": "clips/s", "notes": f"{config.model.backbone} {config.model.temporal}, batch {data.batch_size}, "
                                             f"{threads} threads, median of 10 steps"})
    rows.append({"measurement": "input-bound", "value": "yes" if best_loader < model_rate else "no",
                 "unit": "", "notes": f"best loader {best_loader:.1f} vs model {model_rate:.1f} clips/s"})
    return rows


def run(args: argparse.Namespace) -> int:
    import torch

    from gsf.data import synthesize_dataset

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gsf-bench-overhead-") as tmp:
        work = Path(tmp)
        root = work / "synth"
        synthesize_dataset(root, num_classes=4, videos_per_class=12, num_frames=16, size=64, seed=0)
        rows += _sweep_vs_train(work, root, args.repeats)
        rows.append(_ray_startup(args.repeats))
        rows += _input_bound(root, args.frames, args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), torch "
              f"{torch.__version__.split('+')[0]}, {args.threads} threads, load average at end {load:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"overhead-cpu-pt{torch.__version__.split('+')[0]}-t{args.threads}"
    import csv

    with open(f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["measurement", "value", "unit", "notes"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# Sweep and input-pipeline overhead\n\n{header}. Command: `gsf bench overhead --repeats "
             f"{args.repeats} --threads {args.threads} --frames {args.frames}`.\n",
             "| measurement | value | unit | notes |", "|---|---|---|---|"]
    lines += [f"| {r['measurement']} | {r['value']} | {r['unit']} | {r['notes']} |" for r in rows]
    Path(f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(header)
    for r in rows:
        print(f"{r['measurement']:45s} {r['value']!s:>10} {r['unit']:8s} {r['notes']}")
    print(f"wrote {stem}.csv and {stem}.md")
    return 0

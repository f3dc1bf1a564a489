"""``gsf demo``: the main job on the embedded default, from nothing to tables and figures.

1. writes the synthetic temporal benchmark (``gsf data synth``) unless it is already there;
2. runs the demo ablation grid (``experiments/grids/demo.yaml``: TSN, TSM, GSM, GSF and GSF with one knob
   changed, 3 seeds) with a local Ray and SQLite MLflow, trials sampling clips from decoded frames kept in
   memory (``data.cache_decoded``);
3. regenerates the tables and figures from MLflow (``gsf report``) under ``results/demo/``;
4. prints how to open the MLflow UI on the study.

Each step is the same code path as its own subcommand. Running the demo again resumes an interrupted sweep
(``--resume`` on the fixed sweep name) instead of starting a second one, so its runs are never mixed with
those of another sweep of the same grid.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from experiments.sweep_cli import seed_list
from gsf.shipped import grids_dir

DEMO_GRID = grids_dir() / "demo.yaml"  # the package data of experiments, in a checkout and installed alike
DEMO_STUDY = "gsf-demo"
SWEEP_NAME = "demo"
# The demo's data set: the budget of demo.yaml is measured for it (see the grid's header). Two time-reversed
# pairs (left/right, up/down): a direction-of-motion task, 480 train + 120 validation videos of 12 frames at
# the trials' 48 px, so nothing is resized and decoding is cheap.
DEMO_CLASSES = 4
DEMO_VIDEOS_PER_CLASS = 150
DEMO_VIDEO_FRAMES = 12
DEMO_FRAME_SIZE = 48


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data/synth-demo"), help="synthetic data folder")
    parser.add_argument("--classes", type=int, default=DEMO_CLASSES,
                        help="synthetic classes (time-reversed pairs; default %(default)s)")
    parser.add_argument("--videos-per-class", type=int, default=DEMO_VIDEOS_PER_CLASS,
                        help="synthetic videos per class, a fifth of them for validation (default %(default)s)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--storage", type=Path, default=Path("runs/sweeps"),
                        help="Ray Tune storage folder (trial checkpoints; not committed)")
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="tables and figures")
    parser.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: CPU count)")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="S,S,...",
                        help="run the demo grid on these seeds instead of its own (e.g. 3,4,5): the same story "
                             "on other seeds; the report then covers every seed the study holds")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="extra config override for every trial (e.g. optim.epochs=2)")


def sweep_name_for(seeds: list[int] | None) -> str:
    """The demo's sweep name: fixed, so that a rerun resumes it; one per seed set given by ``--seeds``."""
    return SWEEP_NAME if seeds is None else f"{SWEEP_NAME}-seeds-{'-'.join(str(s) for s in seeds)}"


def _step(title: str) -> float:
    print(f"\n=== gsf demo: {title}", flush=True)
    return time.monotonic()


def _took(label: str, since_wall: float) -> None:
    # Wall time only: the trials run in Ray's worker processes, whose CPU time this process cannot see (Ray
    # keeps them alive between trials, so they are never its finished children).
    print(f"gsf demo: {label} took {time.monotonic() - since_wall:.0f} s wall", flush=True)


def run(args: argparse.Namespace) -> int:
    from gsf.cli import main as gsf_main

    tracking_uri = args.tracking_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"  # absolute: trials run elsewhere
    started = time.monotonic()
    if (args.data / "labels.json").is_file():
        _step(f"synthetic data already in {args.data}, reusing it")
    else:
        since = _step(f"writing the synthetic temporal benchmark to {args.data}")
        code = gsf_main(["data", "synth", "--out", str(args.data), "--classes", str(args.classes),
                         "--videos-per-class", str(args.videos_per_class), "--frames", str(DEMO_VIDEO_FRAMES),
                         "--size", str(DEMO_FRAME_SIZE)])
        if code:
            return code
        _took("the data", since)

    _step(f"sweep {DEMO_GRID.relative_to(grids_dir().parents[1])} on a local Ray, tracked in {tracking_uri}")
    sweep_name = sweep_name_for(args.seeds)
    sweep = ["sweep", str(DEMO_GRID), "--tracking-uri", tracking_uri, "--storage", str(args.storage),
             "--name", sweep_name, "--set", f"data.root={args.data.resolve()}", "--no-models"]
    if args.seeds is not None:
        sweep += ["--seeds", ",".join(str(seed) for seed in args.seeds)]
    for override in args.overrides:
        sweep += ["--set", override]
    if args.max_concurrent:
        sweep += ["--max-concurrent", str(args.max_concurrent)]
    if (args.storage / sweep_name).is_dir():
        print(f"gsf demo: {args.storage / sweep_name} exists: resuming that sweep")
        sweep.append("--resume")
    since = time.monotonic()
    code = gsf_main(sweep)
    _took("the sweep", since)
    if code:
        print("gsf demo: the sweep did not finish every trial; the report below shows which (rerun to resume)")

    since = _step(f"report: tables and figures to {args.out}")
    report_code = gsf_main(["report", "--tracking-uri", tracking_uri, "--study", DEMO_STUDY, "--out", str(args.out)])
    _took("the report", since)
    minutes = (time.monotonic() - started) / 60
    print(f"\n=== gsf demo: done in {minutes:.1f} min wall on {os.cpu_count()} CPUs."
          f"\nTables and figures: {args.out}/README.md"
          f"\nBrowse the runs:     gsf ui --tracking-uri {tracking_uri} --study {DEMO_STUDY}")
    if code or report_code:
        raise SystemExit(code or report_code)
    return 0


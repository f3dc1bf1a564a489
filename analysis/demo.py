"""``gsf demo``: the main job on the embedded default, from nothing to tables and figures.

1. writes the synthetic temporal benchmark (``gsf data synth``) unless it is already there;
2. runs the demo ablation grid (``experiments/grids/demo.yaml``: TSN, TSM, GSM, GSF, gating groups,
   fusion variants, channel fraction, insertion points, 2 seeds) with a local Ray and SQLite MLflow;
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

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_GRID = REPO_ROOT / "experiments" / "grids" / "demo.yaml"
DEMO_STUDY = "gsf-demo"
SWEEP_NAME = "demo"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data/synth"), help="synthetic data folder")
    parser.add_argument("--videos-per-class", type=int, default=200, help="synthetic videos per class")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<cwd>/mlflow.db)")
    parser.add_argument("--storage", type=Path, default=Path("runs/sweeps"),
                        help="Ray Tune storage folder (trial checkpoints; not committed)")
    parser.add_argument("--out", type=Path, default=Path("results/demo"), help="tables and figures")
    parser.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: CPU count)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="extra config override for every trial (e.g. optim.epochs=2)")


def _step(title: str) -> float:
    print(f"\n=== gsf demo: {title}", flush=True)
    return time.monotonic()


def run(args: argparse.Namespace) -> int:
    from gsf.cli import main as gsf_main

    tracking_uri = args.tracking_uri or f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    started = time.monotonic()
    if (args.data / "labels.json").is_file():
        _step(f"synthetic data already in {args.data}, reusing it")
    else:
        _step(f"writing the synthetic temporal benchmark to {args.data}")
        code = gsf_main(["data", "synth", "--out", str(args.data), "--videos-per-class", str(args.videos_per_class)])
        if code:
            return code

    _step(f"sweep {DEMO_GRID.relative_to(REPO_ROOT)} on a local Ray, tracked in {tracking_uri}")
    sweep = ["sweep", str(DEMO_GRID), "--tracking-uri", tracking_uri, "--storage", str(args.storage),
             "--name", SWEEP_NAME, "--set", f"data.root={args.data.resolve()}"]
    for override in args.overrides:
        sweep += ["--set", override]
    if args.max_concurrent:
        sweep += ["--max-concurrent", str(args.max_concurrent)]
    if (args.storage / SWEEP_NAME).is_dir():
        print(f"gsf demo: {args.storage / SWEEP_NAME} exists: resuming that sweep")
        sweep.append("--resume")
    code = gsf_main(sweep)
    if code:
        print("gsf demo: the sweep did not finish every trial; the report below shows which (rerun to resume)")

    _step(f"report: tables and figures to {args.out}")
    report_code = gsf_main(["report", "--tracking-uri", tracking_uri, "--study", DEMO_STUDY, "--out", str(args.out)])
    minutes = (time.monotonic() - started) / 60
    print(f"\n=== gsf demo: done in {minutes:.1f} min ({os.cpu_count()} CPUs)."
          f"\nTables and figures: {args.out}/README.md"
          f"\nBrowse the runs:     gsf ui --tracking-uri {tracking_uri} --study {DEMO_STUDY}")
    if code or report_code:
        raise SystemExit(code or report_code)
    return 0


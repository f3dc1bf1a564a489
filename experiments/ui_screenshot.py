"""The README's screenshot of the MLflow runs page, regenerated: ``python -m experiments.ui_screenshot``.

A tiny real sweep (two trials of two epochs on a synthetic data set, on a local Ray) is tracked in a SQLite
store in a temporary folder; ``mlflow server`` serves it on 127.0.0.1 (:func:`experiments.ui.server_command`)
and a headless Chromium saves its runs page, sorted by run name so that the sweep's parent and its trials are
rows of one flat table (the page nests trials under a collapsed parent otherwise, and which parents are
expanded is kept in the browser, not in the URL). Writes ``results/ui/mlflow-runs.png`` and, beside it, the
page's address (``.url``, port replaced by ``PORT``). Needs ``/usr/bin/chromium`` (or ``--chromium``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import yaml

from gsf import mlflow_schema as schema
from gsf.errors import GSFEnvironmentError, GSFError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "ui" / "mlflow-runs.png"
CHROMIUM = Path("/usr/bin/chromium")
STUDY = "gsf-ui-screenshot"
SWEEP_NAME = "tiny-ui-sweep"
WINDOW = "1600,1000"
BROWSER_TIMEOUT_S = 180


def flat_runs_url(runs_url: str) -> str:
    """A study's runs page (``.../#/experiments/<id>/runs``) sorted by run name: listed flat."""
    return f"{runs_url}?orderByKey={quote('tags.`' + schema.RUN_NAME + '`')}&orderByAsc=false"


def browse(chromium: Path, url: str, profile: Path, *extra: str) -> str:
    """Headless Chromium on ``url`` with a fresh ``profile`` folder and ``extra`` switches; its stdout."""
    argv = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=20000", *extra, url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    if done.returncode != 0:
        raise GSFEnvironmentError(f"{chromium} exited with code {done.returncode} on {url}: {done.stderr[-2000:]}")
    return done.stdout


def save_screenshot(chromium: Path, url: str, out: Path, profile: Path) -> Path:
    """A screenshot of ``url`` in ``out`` (PNG, :data:`WINDOW` pixels)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    browse(chromium, url, profile, f"--screenshot={out}", f"--window-size={WINDOW}")
    if not out.is_file():
        raise GSFEnvironmentError(f"{chromium} wrote no screenshot {out} of {url}")
    return out


def tiny_sweep(work: Path) -> str:
    """A two-trial sweep (TSN and TSM, two epochs, 32 px) on a small synthetic data set in ``work``, tracked
    in ``work/mlflow.db``; returns the tracking URI."""
    from experiments import tracking
    from experiments.runner import SweepOptions, run_sweep
    from gsf.data import synthesize_dataset

    root = work / "synth"
    synthesize_dataset(root, num_classes=2, videos_per_class=3, num_frames=8, size=32, seed=0, val_fraction=0.34)
    grid = work / "tiny.yaml"
    grid.write_text(yaml.safe_dump({
        "study": STUDY, "table": "tiny", "description": "the README's MLflow screenshot",
        "base_config": str(REPO / "experiments" / "configs" / "synthetic.yaml"),
        "set": {"model.pretrained": "none", "data.root": str(root), "data.num_frames": 4, "data.input_size": 32,
                "data.batch_size": 2, "data.num_workers": 0, "optim.base_batch_size": 2, "optim.epochs": 2,
                "optim.warmup_epochs": 0, "runtime.eval_every": 1, "runtime.num_threads": 1,
                "runtime.progress": False},
        "axes": {"model.temporal": ["none", "tsm"]}, "seeds": [0], "baseline": {"model.temporal": "none"}}),
        encoding="utf-8")
    uri = tracking.default_tracking_uri(work)
    options = SweepOptions(tracking_uri=uri, storage=work / "sweeps", name=SWEEP_NAME, max_concurrent=1, verbose=0)
    if run_sweep(grid, options) != 0:
        raise GSFEnvironmentError(f"the tiny sweep of {grid} did not finish every trial (see its log above)")
    return uri


def regenerate(out: Path, *, chromium: Path = CHROMIUM, port: int = 5055) -> Path:
    """Run the tiny sweep, serve it and save the screenshot of its runs page in ``out`` (and ``.url``)."""
    from experiments import ui

    if not chromium.exists():
        raise GSFEnvironmentError(
            f"{chromium} not found: install Chromium (apt-get install chromium) or pass --chromium")
    with tempfile.TemporaryDirectory(prefix="gsf-ui-") as folder:
        work = Path(folder)
        uri = tiny_sweep(work)
        host = "127.0.0.1"
        runs_url = ui.study_url(uri, host, port, STUDY)
        server = subprocess.Popen(ui.server_command(uri, host, port), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            ui.wait_ready(server, f"http://{host}:{port}")
            url = flat_runs_url(runs_url)
            save_screenshot(chromium, url, out, work / "profile")
        finally:
            server.terminate()
            server.wait(timeout=30)
    out.with_suffix(".url").write_text(url.replace(f"{host}:{port}", f"{host}:PORT") + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    from experiments.cli import setup_logging

    parser = argparse.ArgumentParser(prog="python -m experiments.ui_screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="Chromium executable")
    parser.add_argument("--port", type=int, default=5055, help="port of the temporary MLflow server")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        print(f"wrote {regenerate(args.out, chromium=args.chromium, port=args.port)}")
    except GSFError as err:
        print(f"ui_screenshot: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's screenshots of the MLflow UI, regenerated: ``python -m experiments.ui_screenshot``.

With ``--tracking-uri URI --study NAME`` (the README's: the store ``gsf demo`` leaves, study ``gsf-demo``) the
pages are those of that study, as ``gsf ui`` prints them for it. Without, a tiny real sweep (TSN and TSM, two
seeds each, two epochs on a synthetic data set, on a local Ray) is tracked in a SQLite store in a temporary
folder, a picture of the layout only. ``mlflow server`` serves the store on 127.0.0.1
(:func:`experiments.ui.server_command`) and a headless Chromium saves the two pages ``gsf ui`` prints: the
study's runs page as a paper table (``results/ui/mlflow-runs.png``) and its charts
(``results/ui/mlflow-charts.png``), each with its address beside it (``.url``, port replaced by ``PORT``).

Chromium reaches the server under the name :data:`BROWSER_HOST` (mapped to 127.0.0.1), which the server is
told to accept: MLflow opens its Assistant panel over a third of the page on the first visit from a loopback
name (a researcher closes it once; the browser remembers), and a fresh headless profile is always a first
visit. Needs ``/usr/bin/chromium`` (or ``--chromium``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from gsf.errors import GSFEnvironmentError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "ui" / "mlflow-runs.png"
CHARTS_NAME = "mlflow-charts.png"  # written beside the runs page's screenshot
BROWSER_HOST = "gsf-ui"
CHROMIUM = Path("/usr/bin/chromium")
STUDY = "gsf-ui-screenshot"
SWEEP_NAME = "tiny-ui-sweep"
WINDOW = "2300,1000"  # wide enough for every column of the paper table, the Dataset column last
# Virtual time Chromium gives a page before it dumps or saves it (ms): enough for the runs table; the charts
# load their plotting library and each chart's data after the table.
BUDGET_MS = {"table": 20_000, "charts": 60_000}
BROWSER_TIMEOUT_S = 180


def browse(chromium: Path, url: str, profile: Path, *extra: str, budget_ms: int = BUDGET_MS["table"]) -> str:
    """Headless Chromium on ``url`` with a fresh ``profile`` folder and ``extra`` switches, given ``budget_ms`` of
    virtual time; its stdout. :data:`BROWSER_HOST` resolves to 127.0.0.1."""
    argv = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--host-resolver-rules=MAP {BROWSER_HOST} 127.0.0.1", f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", *extra, url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    if done.returncode != 0:
        raise GSFEnvironmentError(f"{chromium} exited with code {done.returncode} on {url}: {done.stderr[-2000:]}")
    return done.stdout


def browser_server_env(port: int) -> dict[str, str]:
    """The environment of an ``mlflow server`` on 127.0.0.1:``port`` that also answers a browser which calls
    it :data:`BROWSER_HOST` (MLflow checks the Host header and the origin of API requests)."""
    return {**os.environ, "MLFLOW_SERVER_ALLOWED_HOSTS": f"{BROWSER_HOST}:{port},127.0.0.1:{port}",
            "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": f"http://{BROWSER_HOST}:{port}"}


def save_screenshot(chromium: Path, url: str, out: Path, profile: Path, *,
                    budget_ms: int = BUDGET_MS["table"]) -> Path:
    """A screenshot of ``url`` in ``out`` (PNG, :data:`WINDOW` pixels), after ``budget_ms`` of virtual time."""
    out.parent.mkdir(parents=True, exist_ok=True)
    browse(chromium, url, profile, f"--screenshot={out}", f"--window-size={WINDOW}", budget_ms=budget_ms)
    if not out.is_file():
        raise GSFEnvironmentError(f"{chromium} wrote no screenshot {out} of {url}")
    return out


def tiny_sweep(work: Path) -> str:
    """A four-trial sweep (TSN and TSM, seeds 0 and 1, two epochs, 32 px) on a small synthetic data set in
    ``work``, tracked in ``work/mlflow.db``; returns the tracking URI."""
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
        "axes": {"model.temporal": ["none", "tsm"]}, "seeds": [0, 1], "baseline": {"model.temporal": "none"}}),
        encoding="utf-8")
    uri = tracking.default_tracking_uri(work)
    options = SweepOptions(tracking_uri=uri, storage=work / "sweeps", name=SWEEP_NAME, max_concurrent=1, verbose=0)
    if run_sweep(grid, options) != 0:
        raise GSFEnvironmentError(f"the tiny sweep of {grid} did not finish every trial (see its log above)")
    return uri


def regenerate(out: Path, *, chromium: Path = CHROMIUM, port: int = 5055, tracking_uri: str | None = None,
               study: str | None = None) -> list[Path]:
    """Serve ``tracking_uri`` (default: a tiny sweep run here) and save the screenshots of the pages ``gsf ui``
    prints for ``study``: the runs page in ``out``, the charts in :data:`CHARTS_NAME` beside it (each with its
    ``.url``)."""
    from experiments import ui

    if not chromium.exists():
        raise GSFEnvironmentError(
            f"{chromium} not found: install Chromium (apt-get install chromium) or pass --chromium")
    shots = {"table": out, "charts": out.with_name(CHARTS_NAME)}
    with tempfile.TemporaryDirectory(prefix="gsf-ui-") as folder:
        work = Path(folder)
        uri = tracking_uri or tiny_sweep(work)
        urls = ui.study_urls(uri, BROWSER_HOST, port, study if tracking_uri else STUDY)
        if "charts" not in urls:
            raise GSFEnvironmentError(f"no study {study!r} with runs in {uri}")
        server = subprocess.Popen(ui.server_command(uri, "127.0.0.1", port), env=browser_server_env(port),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            ui.wait_ready(server, f"http://127.0.0.1:{port}")
            for page, path in shots.items():
                save_screenshot(chromium, urls[page], path, work / f"profile-{page}", budget_ms=BUDGET_MS[page])
        finally:
            ui.stop_server(server, timeout=30)
    for page, path in shots.items():
        address = urls[page].replace(f"{BROWSER_HOST}:{port}", "127.0.0.1:PORT")
        path.with_suffix(".url").write_text(address + "\n", encoding="utf-8")
    return list(shots.values())


def main(argv: list[str] | None = None) -> int:
    from experiments.sweep_cli import print_sweep_steps
    from gsf.cli import run_command, setup_logging

    parser = argparse.ArgumentParser(prog="python -m experiments.ui_screenshot", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"PNG of the runs page (default {DEFAULT_OUT}); the charts' is written beside it")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help="Chromium executable")
    parser.add_argument("--port", type=int, default=5055, help="port of the temporary MLflow server")
    parser.add_argument("--tracking-uri", default=None,
                        help="the store to show (e.g. sqlite:///mlflow.db after gsf demo); default: a tiny sweep")
    parser.add_argument("--study", default=None, help="the study (MLflow experiment) of --tracking-uri to show")
    args = parser.parse_args(argv)
    if (args.tracking_uri is None) != (args.study is None):
        parser.error("--tracking-uri and --study go together")
    setup_logging()
    print_sweep_steps()  # the tiny sweep's steps, as gsf sweep prints them
    return run_command(_regenerate_and_list, args, prog="ui_screenshot")


def _regenerate_and_list(args: argparse.Namespace) -> int:
    for path in regenerate(args.out, chromium=args.chromium, port=args.port, tracking_uri=args.tracking_uri,
                           study=args.study):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

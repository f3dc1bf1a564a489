"""``gsf sweep``: list, count or run an ablation grid.

GRID is a grid file, or the name of a grid shipped with the package (``gsf sweep gating_groups --dry-run``:
``experiments/grids/gating_groups.yaml``, found by :mod:`gsf.shipped` in a checkout and an installed
package alike) where no file of that name exists.

- ``gsf sweep GRID --dry-run [--throughput CLIPS_PER_S | --bench CSV]``: validate every trial (grid keys and
  values, configuration keys, knob combinations the model rejects) and list the trials with their per-view
  GMACs and parameters and, per trial and in total, what training costs: the GMACs of one epoch (train clips
  from ``data.root``'s annotations x 1 view x 3 for forward and backward x GMACs/view), of the whole run, and
  the estimated device-hours at a training throughput (``--throughput``, or a ``gsf bench model`` CSV's
  ``train_clips_per_s`` of the trial's model);
- ``gsf sweep GRID... --complexity-only [--out DIR]``: GMACs and parameters of every trial of the grids
  (or of every grid with ``--all``) at paper resolution, without data, written as CSV. Models are counted on
  the meta device (``gsf.complexity``), so every shipped grid is counted in seconds on a CPU;
- ``gsf sweep GRID [--address ...] [--resume] ...``: run it with Ray Tune, tracked in MLflow.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from pathlib import Path

from gsf.errors import GSFConfigError
from gsf.shipped import grid_names, grid_path, grids_dir

COMPLEXITY_COLUMNS = ("grid", "table", "study", "slug", "config_hash", "backbone", "temporal", "num_frames",
                      "input_size", "num_classes", "gmacs_per_view", "gmacs_all_ops_per_view", "params_m",
                      "temporal_params_m", "temporal_modules")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grids", nargs="*", metavar="GRID",
                        help="grid file(s), e.g. experiments/grids/demo.yaml, or the name of a shipped grid where "
                             f"no such file exists, e.g. gating_groups ({', '.join(grid_names())})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="validate and list the trials with GMACs and params")
    mode.add_argument("--complexity-only", action="store_true",
                      help="write GMACs and params of every trial at paper resolution to CSV (no data, no training)")
    parser.add_argument("--throughput", type=float, default=None, metavar="CLIPS_PER_S",
                        help="--dry-run: training clips per second of one trial's device(s), for the estimated "
                             "device-hours (every trial alike)")
    parser.add_argument("--bench", type=Path, default=None, metavar="CSV",
                        help="--dry-run: a 'gsf bench model' CSV; each trial's device-hours from the "
                             "train_clips_per_s of its row (same backbone, temporal kind, fraction, frames, size)")
    parser.add_argument("--all", action="store_true", help="with --complexity-only: every shipped grid")
    parser.add_argument("--out", default="results/complexity", help="--complexity-only: output folder")
    parser.add_argument("--resolution", choices=("paper", "config"), default="paper",
                        help="--complexity-only: the backbone's paper input size (its BackboneSpec) or the config's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a configuration key of every trial (e.g. data.root=data/synth)")
    parser.add_argument("--seeds", type=seed_list, default=None, metavar="S,S,...",
                        help="run these seeds instead of the grid's (e.g. 3,4,5); a resumed sweep keeps its own")
    parser.add_argument("--address", default=None,
                        help="existing Ray cluster: 'auto', HOST:PORT or ray://HOST:PORT (default: start a local "
                             "Ray on 127.0.0.1)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<working folder>/mlflow.db)")
    parser.add_argument("--storage", default="results/sweeps",
                        help="folder (or file:// URI) of sweep state and Tune/Ray Train checkpoints (shared by "
                             "every node on a cluster)")
    parser.add_argument("--name", default=None, help="sweep folder name (default: GRID-YYYYmmdd-HHMMSS)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep --name (default: the grid's latest) after its driver died")
    parser.add_argument("--max-concurrent", type=int, default=None, help="trials running at once")
    parser.add_argument("--cpus-per-trial", type=float, default=None, help="CPUs Ray reserves per trial")
    parser.add_argument("--gpus-per-trial", type=float, default=None, help="GPUs Ray reserves per trial")
    parser.add_argument("--no-models", dest="log_models", action="store_false",
                        help="log no MLflow model per trial (saves each trial's ONNX export; the demo's budget)")
    parser.add_argument("--register-best", default=None, metavar="NAME",
                        help="after the sweep, register the model of its best finished trial (highest "
                             "best_val_top1; every trial logs its best checkpoint as an MLflow model) as a new "
                             "version of registered model NAME: one version per sweep")


def seed_list(text: str) -> list[int]:
    """``--seeds 3,4,5`` as ``[3, 4, 5]``."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def parse_overrides(pairs: list[str]) -> dict:
    """``--set KEY=VALUE`` pairs as a mapping."""
    from gsf.engine.config import parse_override

    return dict(parse_override(text) for text in pairs)


def _resolved(grid, overrides: dict):
    """Steps 3-4 of the grid pipeline (:mod:`experiments.grid`) for a loaded, validated grid."""
    from experiments.grid.expand import expand
    from experiments.grid.resolve import resolve

    return resolve(grid, expand(grid), extra=overrides)


# One training step is a forward and a backward pass; the backward costs about twice the forward.
FORWARD_BACKWARD = 3
TRAIN_VIEWS = 1  # a training sample is one clip of one crop (docs/recipe.md)


def train_clips(config: dict, cache: dict) -> int | None:
    """Samples of the trial's training split (its first ``data.max_videos``), from the annotations under
    ``data.root``; None without an existing root."""
    from gsf.data.fingerprint import count_samples

    d = config["data"]
    if not d.get("root") or not Path(d["root"]).is_dir():
        return None
    key = (d["dataset"], str(Path(d["root"]).resolve()), d["train_split"], d.get("max_videos"))
    if key not in cache:
        cache[key] = count_samples(d["dataset"], d["root"], d["train_split"], max_videos=d.get("max_videos"))
    return cache[key]


def bench_throughput(path: Path) -> dict[tuple, float]:
    """``(backbone, temporal, fraction, frames, input_px) -> train_clips_per_s`` of the eager rows of a
    ``gsf bench model`` CSV (:data:`gsf.bench.model.COLUMNS`)."""
    if not path.is_file():
        raise GSFConfigError(f"--bench {path}: no such file (a CSV written by gsf bench model)")
    out = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                if row["mode"] == "eager" and row["train_clips_per_s"]:
                    key = (row["backbone"], row["temporal"], float(row["fraction"]), int(row["frames"]),
                           int(row["input_px"]))
                    out[key] = float(row["train_clips_per_s"])
            except (KeyError, ValueError) as err:
                raise GSFConfigError(f"--bench {path}: not a gsf bench model CSV ({err})") from err
    return out


def _bench_key(config: dict) -> tuple:
    m, d = config["model"], config["data"]
    fraction = float(m.get("channel_fraction", 1.0)) if m["temporal"] in ("gsm", "gsf") else 1.0
    return m["backbone"], m["temporal"], fraction, int(d["num_frames"]), int(d["input_size"])


def _count(value: float | None, digits: int = 0) -> str:
    return "?" if value is None else f"{value:,.{digits}f}"


def _dry_run(grid_path: str, overrides: dict, seeds: list[int] | None = None, *, throughput: float | None = None,
             bench: Path | None = None) -> int:
    from experiments.grid.complexity import complexity_of
    from experiments.grid.expand import describe_tune, planned_trials
    from experiments.grid.load import load_grid
    from experiments.grid.validate import validate_grid
    from experiments.runner import with_seeds

    if throughput is not None and throughput <= 0:
        raise GSFConfigError(f"--throughput {throughput}: clips per second must be > 0")
    rates = bench_throughput(bench) if bench is not None else {}
    grid = with_seeds(validate_grid(load_grid(grid_path)), seeds)
    resolved = _resolved(grid, overrides)
    cache: dict = {}
    counts: dict = {}
    rows, totals = [], {"epoch": 0.0, "run": 0.0, "hours": 0.0}
    known = {"clips": True, "hours": True}
    for item in resolved:
        config = item.config_dict
        c = complexity_of(config, cache=cache)
        clips = train_clips(config, counts)
        epochs = int(config["optim"]["epochs"])
        rate = rates.get(_bench_key(config), throughput)
        epoch_gmacs = None if clips is None else clips * TRAIN_VIEWS * FORWARD_BACKWARD * c.gmacs
        run_gmacs = None if epoch_gmacs is None else epoch_gmacs * epochs
        hours = None if clips is None or rate is None else clips * TRAIN_VIEWS * epochs / rate / 3600
        known["clips"] &= clips is not None
        known["hours"] &= hours is not None
        totals["epoch"] += epoch_gmacs or 0.0
        totals["run"] += run_gmacs or 0.0
        totals["hours"] += hours or 0.0
        rows.append((item.slug, item.config_hash[:12], f"{c.gmacs:.3f}", f"{c.params / 1e6:.3f}",
                     str(c.temporal_modules), _count(clips), str(epochs), _count(epoch_gmacs), _count(run_gmacs),
                     _count(rate, 1), _count(hours, 3)))
    planned = planned_trials(grid, len(rows))
    repeat = planned / len(rows) if rows else 1.0  # tune.search samples each grid point this many times
    total = ("total", "", "", "", "", "", "",
             _count(totals["epoch"] * repeat if known["clips"] else None),
             _count(totals["run"] * repeat if known["clips"] else None), "",
             _count(totals["hours"] * repeat if known["hours"] else None, 3))
    header = ("trial", "config_hash", "GMACs/view", "params (M)", "temporal modules", "train clips", "epochs",
              "GMACs/epoch", "GMACs/run", "clips/s", "device-h")
    numeric = set(range(2, len(header)))
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]
    base = Path(grid.base_config)
    shown = base.relative_to(Path.cwd()) if base.is_relative_to(Path.cwd()) else base
    print(f"grid {grid.path}: study {grid.study!r}, table {grid.table!r}, {planned} trials, base {shown}")
    for line in describe_tune(grid, len(rows)):
        print(line)

    def line(row) -> str:
        return "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths))).rstrip()

    print(line(header))
    for row in rows:
        print(line(row))
    print(line(["-" * w for w in widths]))
    print(line(total))
    print(f"GMACs/epoch = train clips x {TRAIN_VIEWS} view x {FORWARD_BACKWARD} (forward + backward) x GMACs/view; "
          "GMACs/run = x epochs; device-h = train clips x epochs / clips/s, training passes only (no validation "
          "or test)" + (f"; the total counts each grid point {repeat:g} times (tune.search)" if repeat != 1 else "")
          + ("; an ASHA scheduler stops some trials early: an upper bound" if grid.tune.scheduler else ""))
    if not known["clips"]:
        missing = sorted({str(item.config_dict["data"].get("root") or "") for item in resolved})
        print(f"train clips ?: data.root {', '.join(repr(m) for m in missing)} is not an existing folder; pass "
              "--set data.root=PATH for the epoch cost")
    elif not known["hours"]:
        print("device-h ?: pass --throughput CLIPS_PER_S, or --bench CSV (gsf bench model) with a row of the trial")
    return 0


def complexity_rows(grid, *, resolution: str, overrides: dict, cache: dict) -> list[dict]:
    """One CSV row per trial of ``grid``: per-view GMACs and parameters (no data needed)."""
    from experiments.grid.complexity import complexity_of, num_classes, paper_input_size

    rows = []
    for item in _resolved(grid, overrides):
        size = paper_input_size(item.config_dict) if resolution == "paper" else item.config_dict["data"]["input_size"]
        c = complexity_of(item.config_dict, input_size=size, cache=cache)
        classes = num_classes(item.config_dict)
        rows.append({"grid": grid.name, "table": grid.table, "study": grid.study, "slug": item.slug,
                     "config_hash": item.config_hash, "backbone": item.config_dict["model"]["backbone"],
                     "temporal": item.config_dict["model"]["temporal"],
                     "num_frames": item.config_dict["data"]["num_frames"], "input_size": size,
                     "num_classes": classes if isinstance(classes, int) else "+".join(map(str, classes.values())),
                     "gmacs_per_view": round(c.gmacs, 6), "gmacs_all_ops_per_view": round(c.gmacs_all_ops, 6),
                     "params_m": round(c.params / 1e6, 4), "temporal_params_m": round(c.temporal_params / 1e6, 5),
                     "temporal_modules": c.temporal_modules})
    return rows


def _complexity_only(grid_paths: list[str], out: Path, resolution: str, overrides: dict) -> int:
    from experiments.grid.load import load_grids
    from experiments.grid.validate import validate_grid

    grids = [validate_grid(grid) for grid in load_grids(grid_paths)]
    out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    start = time.perf_counter()
    total = 0
    for grid in grids:
        rows = complexity_rows(grid, resolution=resolution, overrides=overrides, cache=cache)
        path = out / f"{grid.name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COMPLEXITY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        total += len(rows)
        print(f"{path}: {len(rows)} trials")
    print(f"{total} trials of {len(grids)} grids ({len(cache)} distinct models) in {time.perf_counter() - start:.1f} s")
    return 0


def sweep_options(args: argparse.Namespace, overrides: dict):
    """The :class:`experiments.runner.SweepOptions` of parsed ``gsf sweep`` arguments."""
    from experiments.runner import SweepOptions

    return SweepOptions(address=args.address, tracking_uri=args.tracking_uri, storage=args.storage, name=args.name,
                        resume=args.resume, max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
                        gpus_per_trial=args.gpus_per_trial, overrides=overrides, register_best=args.register_best,
                        log_models=args.log_models, seeds=args.seeds)


def print_sweep_steps() -> None:
    """The sweep driver's steps (the ``experiments`` loggers' records) on stdout as ``gsf sweep: ...`` lines,
    not through the root logger :func:`gsf.cli.setup_logging` set up: they are the command's output (once per
    process)."""
    logger = logging.getLogger("experiments")
    if not any(getattr(h, "gsf_sweep", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("gsf sweep: %(message)s"))
        handler.gsf_sweep = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # one line per step, whatever the root logger has


def run(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.overrides)
    grids = [str(grid_path(grid)) for grid in args.grids]
    if args.all:
        if not args.complexity_only:
            raise GSFConfigError("--all goes with --complexity-only")
        grids.append(str(grids_dir()))
    if not grids:
        raise GSFConfigError(f"name a grid file or a shipped grid ({', '.join(grid_names())})")
    if args.complexity_only:
        return _complexity_only(grids, Path(args.out), args.resolution, overrides)
    if len(grids) != 1:
        raise GSFConfigError(f"--dry-run and a sweep take one grid, got {len(grids)}")
    if args.dry_run:
        return _dry_run(grids[0], overrides, args.seeds, throughput=args.throughput, bench=args.bench)
    from experiments.runner import run_sweep

    print_sweep_steps()
    return run_sweep(grids[0], sweep_options(args, overrides))

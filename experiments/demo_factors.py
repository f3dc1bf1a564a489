"""One factor at a time on the demo's trial: does GSF train in every seed, and what decides it?

Each run is ``gsf train`` with the configuration of one trial of the demo grid (experiments/grids/demo.yaml:
its base config and ``set``), a seed and the overrides given, plus one of these starts for the GSF modules:

- ``release``: the release's initialisation (the default of :func:`gsf.build_model`: PyTorch's for the gate
  conv and BN3d, the backbone's kaiming fan-out init for the two fusion convs);
- ``default_fusion_init``: the fusion convs keep PyTorch's default init; every other weight is the same as
  in ``release`` (the fusion convs are re-drawn from their own generator, so the shared random stream, and
  with it every other layer's starting weights, is not shifted);
- ``zero_gate``: the gate conv's weight and bias zero, as GSM starts (the gate is tanh(0) = 0: every GSF
  module starts as a scaled identity).

Usage::

    python -m experiments.demo_factors run --data data/synth-demo --groups 1 --start zero_gate \\
        --seeds 0-8 --set optim.lr=0.003 --out results/demo-factors/runs
    python -m experiments.demo_factors summary results/demo-factors/runs

``run`` writes one JSON record per seed (the configuration's overrides, the per-epoch training loss and
validation top-1, the best top-1, whether it trained by :func:`gsf.engine.health.did_not_train`);
``summary`` prints and writes ``README.md`` and ``summary.csv`` beside the records' folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from gsf.shipped import grids_dir

STARTS = ("release", "default_fusion_init", "zero_gate")
DEMO_GRID = grids_dir() / "demo.yaml"
# Records written before batch size, epochs and warm-up were recorded all ran with batch 16 for 6 epochs, one
# of them warm-up; a record's file name names its batch size and epochs only where they differ from these.
UNRECORDED_BATCH_SIZE, UNRECORDED_EPOCHS, UNRECORDED_WARMUP_EPOCHS = 16, 6, 1
UNRECORDED_NUM_CLASSES = 4  # and on 4-class demo data


def demo_trial_config(overrides: list[str]):
    """The demo grid's trial configuration (its base config, then its ``set``), then ``overrides``."""
    from experiments.grid.load import load_grid
    from gsf.engine.config import load_config, parse_override, set_value

    grid = load_grid(DEMO_GRID)
    config = load_config(grid.base_config, check=False)
    for key, value in grid.set.items():
        set_value(config, key, value, source=str(DEMO_GRID))
    for text in overrides:
        key, value = parse_override(text)
        set_value(config, key, value, source=f"--set {text}")
    return config


def apply_start(model, start: str, seed: int) -> None:
    """Re-initialise the GSF modules of ``model`` as ``start`` says (``release``: leave them)."""
    import torch
    from torch import nn

    from gsf.engine.health import gated_modules

    if start == "release":
        return
    modules = [module for _, module in gated_modules(model)]
    if start == "zero_gate":
        for module in modules:
            nn.init.zeros_(module.conv3D.weight)
            nn.init.zeros_(module.conv3D.bias)
        return
    with torch.random.fork_rng():
        torch.manual_seed(1000 + seed)
        for module in modules:
            for i in range(1, module.groups + 1):
                conv = getattr(module, f"channel_conv{i}", None)
                if conv is not None:
                    conv.reset_parameters()


def seed_range(text: str) -> list[int]:
    """``0-8`` or ``1,3,5`` as a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high) + 1)) if high else [int(low)]
    return seeds


def run_one(*, seed: int, start: str, data: Path, overrides: list[str], out: Path) -> dict:
    import gsf.models
    from gsf.engine import train
    from gsf.engine.health import did_not_train
    from gsf.provenance import cpu_name

    all_overrides = [f"data.root={data}", f"runtime.seed={seed}", *overrides]
    config = demo_trial_config(all_overrides)
    build = gsf.models.build_model

    def build_with_start(**kwargs):
        model = build(**kwargs)
        apply_start(model, start, seed)
        return model

    gsf.models.build_model = build_with_start  # the trainer builds its model through this name
    started = time.time()
    try:
        with tempfile.TemporaryDirectory(prefix="gsf-factors-") as folder:
            result = train(config, folder)
            epochs = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    finally:
        gsf.models.build_model = build
    losses = [e["train_loss"] for e in epochs]
    record = {
        "seed": seed, "start": start, "temporal": config.model.temporal, "groups": config.model.groups,
        "data": data.name, "overrides": overrides, "lr": config.optim.lr, "threads": config.runtime.num_threads,
        "batch_size": config.data.batch_size, "epochs": config.optim.epochs,
        "warmup_epochs": config.optim.warmup_epochs, "num_classes": int(result["num_classes"]),
        "train_loss": losses, "val_top1": [e.get("val_top1") for e in epochs], "best_val_top1": result["best_val_top1"],
        "did_not_train": did_not_train(losses, num_classes=int(result["num_classes"]),
                                       warmup_epochs=config.optim.warmup_epochs),
        "seconds": round(time.time() - started, 1), "machine": cpu_name(),
    }
    out.mkdir(parents=True, exist_ok=True)
    recipe = f"_b{config.data.batch_size}_e{config.optim.epochs}" if (config.data.batch_size, config.optim.epochs) != (
        UNRECORDED_BATCH_SIZE, UNRECORDED_EPOCHS) else ""
    if config.optim.warmup_epochs != UNRECORDED_WARMUP_EPOCHS:
        recipe += f"_w{config.optim.warmup_epochs}"
    name = (f"{config.model.temporal}_g{config.model.groups}_{start}_lr{config.optim.lr:g}{recipe}_{data.name}"
            f"_t{config.runtime.num_threads}_s{seed}.json")
    (out / name).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def _overridden(overrides: list[str], key: str | None, default: int) -> int:
    """The value ``KEY=VALUE`` among a record's overrides sets for ``key`` (the last one), else ``default``."""
    found = [text.split("=", 1)[1] for text in overrides if key and text.split("=", 1)[0] == key]
    return int(found[-1]) if found else default


def summary(folder: Path) -> str:
    """One row per condition (module, groups, start, lr, data, threads): seeds, trained n of n, best top-1."""
    import pandas as pd

    from gsf.engine.health import epoch_leaving_chance

    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    if not records:
        raise SystemExit(f"no records in {folder}")
    frame = pd.DataFrame(records)
    frame["data"] = frame["data"].map(lambda d: Path(d).name)
    # a field a record lacks: the value its overrides set, else what every run before the field ran with
    for column, key, unrecorded in (("batch_size", "data.batch_size", UNRECORDED_BATCH_SIZE),
                                    ("epochs", "optim.epochs", UNRECORDED_EPOCHS),
                                    ("warmup_epochs", "optim.warmup_epochs", UNRECORDED_WARMUP_EPOCHS),
                                    ("num_classes", None, UNRECORDED_NUM_CLASSES)):
        values = frame[column] if column in frame else pd.Series(index=frame.index, dtype=float)
        frame[column] = [int(v) if pd.notna(v) else _overridden(overrides, key, unrecorded)
                         for v, overrides in zip(values, frame["overrides"])]
    frame["left_chance"] = [epoch_leaving_chance(losses, num_classes=k)
                            for losses, k in zip(frame["train_loss"], frame["num_classes"])]
    keys = ["temporal", "groups", "start", "lr", "batch_size", "epochs", "warmup_epochs", "data", "threads"]
    rows = []
    for values, part in frame.groupby(keys, sort=True):
        part = part.sort_values("seed")
        dead = [int(s) for s, d in zip(part["seed"], part["did_not_train"]) if d]
        rows.append({**dict(zip(keys, values)), "seeds": ",".join(str(int(s)) for s in part["seed"]),
                     "trained": f"{len(part) - len(dead)} of {len(part)}",
                     "did not train (seeds)": ",".join(str(s) for s in dead),
                     "best val top-1 per seed (%)": " ".join(f"{100 * v:.1f}" for v in part["best_val_top1"]),
                     "epoch leaving chance per seed": " ".join("-" if pd.isna(e) else str(int(e))
                                                              for e in part["left_chance"])})
    table = pd.DataFrame(rows)
    table.to_csv(folder.parent / "summary.csv", index=False, lineterminator="\n")
    from gsf.markdown import markdown_table

    machines = ", ".join(sorted(set(frame["machine"])))
    text = (f"# GSF on the demo's trial, one factor at a time\n\n"
            f"`python -m experiments.demo_factors summary {folder.as_posix()}` from {len(frame)} runs of "
            f"`python -m experiments.demo_factors run` (each `gsf train` with a trial configuration of "
            f"experiments/grids/demo.yaml; machine: {machines}, 2 cores shared with other work).\n"
            f"'did not train': training loss at or above 0.9 ln K after the warm-up in every epoch; 'epoch leaving "
            f"chance': the first epoch whose training loss is below 0.9 ln K ('-': none).\n\n"
            + markdown_table(table.columns, (row for _, row in table.iterrows())))
    (folder.parent / "README.md").write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.demo_factors", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the demo trial for each seed")
    run.add_argument("--data", type=Path, required=True, help="a gsf data synth folder (the demo's)")
    run.add_argument("--seeds", type=seed_range, default=[0, 1, 2], help="e.g. 0-8 or 1,3,5")
    run.add_argument("--start", choices=STARTS, default="release", help="how the GSF modules start")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                     help="override a key of the trial configuration (model.temporal=gsf, model.groups=1 ...)")
    run.add_argument("--groups", type=int, default=None, help="shorthand for --set model.groups=G")
    run.add_argument("--out", type=Path, default=Path("results/demo-factors/runs"))
    show = commands.add_parser("summary", help="the table of the records in a folder")
    show.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "summary":
        print(summary(args.folder))
        return 0
    overrides = list(args.overrides) + ([f"model.groups={args.groups}"] if args.groups is not None else [])
    for seed in args.seeds:
        record = run_one(seed=seed, start=args.start, data=args.data.resolve(), overrides=overrides, out=args.out)
        print(f"seed {seed}: best val top-1 {100 * record['best_val_top1']:.1f} %, "
              f"{'did not train' if record['did_not_train'] else 'trained'} ({record['seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

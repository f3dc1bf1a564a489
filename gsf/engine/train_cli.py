"""``gsf train CONFIG [--set section.key=value ...] --out DIR [--resume] [--nproc N]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML configuration (keys override the defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one key (value parsed as YAML); repeatable")
    parser.add_argument("--out", help="run folder: config.yaml, checkpoints/, scores/, metrics.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="data-parallel (DDP) processes on this machine, one device each (= --set "
                             "runtime.world_size=N): nccl on N GPUs, else gloo on CPU; data.batch_size is per process")
    parser.add_argument("--show-config", action="store_true",
                        help="print every key with its default and meaning (or the resolved CONFIG) and exit")


def setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(args) -> int:
    from gsf.engine.config import describe, load_config
    from gsf.errors import GSFError

    setup_logging()
    try:
        if args.show_config:
            if args.config is None and not args.overrides:
                print(describe())
            else:
                print(load_config(args.config, args.overrides, check=False).to_yaml(), end="")
            return 0
        if args.config is None or args.out is None:
            print("error: gsf train needs CONFIG and --out DIR", file=sys.stderr)
            return 2
        from gsf.engine.trainer import train

        overrides = list(args.overrides)
        if args.nproc is not None:
            if args.nproc < 1:
                print(f"error: --nproc {args.nproc}: need at least 1 process", file=sys.stderr)
                return 2
            overrides.append(f"runtime.world_size={args.nproc}")
        config = load_config(args.config, overrides)
        result = train(config, Path(args.out), resume=args.resume)
    except GSFError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"final val top-1 {result['final_val_top1']:.4f}, top-5 {result['final_val_top5']:.4f}; best val top-1 "
          f"{result['best_val_top1']:.4f} at epoch {int(result['best_epoch'])}; run in {args.out}")
    return 0

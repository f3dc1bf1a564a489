"""``gsf train CONFIG [--set section.key=value ...] --out DIR [--resume] [--nproc N]``.

The command lives in ``experiments`` because a run is logged to MLflow as a sweep trial is
(:mod:`experiments.run_logging`); the training itself is :func:`gsf.engine.train`."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from experiments.run_logging import add_tracking_arguments


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML configuration (keys override the defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one key (value parsed as YAML); repeatable")
    parser.add_argument("--out", help="run folder: config.yaml, checkpoints/, scores/, metrics.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="data-parallel (DDP) processes on this machine, one device each (= --set "
                             "runtime.world_size=N), started by Ray Train: nccl on N GPUs, else gloo on CPU; "
                             "data.batch_size is per process (torchrun: python -m experiments.torchrun_train)")
    add_tracking_arguments(parser)
    parser.add_argument("--show-config", action="store_true",
                        help="print every key with its default and meaning (or the resolved CONFIG) and exit")


def _fit_on_ray_train(config, out: Path, args) -> dict:
    """``--nproc N``: N Ray Train workers of a local Ray (:func:`gsf.engine.worker_group.fit_local`)."""
    import os

    from gsf.engine.config import resolve_device
    from gsf.engine.worker_group import fit_local
    from gsf.errors import GSFConfigError

    if getattr(args, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI"):
        raise GSFConfigError("--nproc > 1 does not log to MLflow yet: drop --tracking-uri (and MLFLOW_TRACKING_URI), "
                             "or run the configuration as a sweep trial (resources.workers_per_trial)")
    return fit_local(config.to_dict(), out, num_workers=config.runtime.world_size, resume=args.resume,
                     use_gpus=resolve_device(config) == "cuda")


def _cached_digest(out: Path) -> str | None:
    """The data digest a run folder's cached fingerprint holds (None without one)."""
    import json

    from gsf.data.fingerprint import FINGERPRINT_FILE

    try:
        return json.loads((out / FINGERPRINT_FILE).read_text(encoding="utf-8"))["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run(args) -> int:
    from experiments.run_logging import train_from_cli
    from gsf.engine import distributed
    from gsf.engine.config import describe, load_config
    from gsf.errors import GSFConfigError

    if args.show_config:
        if args.config is None and not args.overrides:
            print(describe())
        else:
            print(load_config(args.config, args.overrides, check=False).to_yaml(), end="")
        return 0
    if args.config is None or args.out is None:
        raise GSFConfigError("gsf train needs CONFIG and --out DIR")
    overrides = list(args.overrides)
    if args.nproc is not None:
        if args.nproc < 1:
            raise GSFConfigError(f"--nproc {args.nproc}: need at least 1 process")
        overrides.append(f"runtime.world_size={args.nproc}")
    config = load_config(args.config, overrides)
    fingerprint = None
    if distributed.group().is_main:
        from gsf.engine.loaders import data_fingerprint

        before = _cached_digest(Path(args.out)) if args.resume else None
        # kept in the run's folder when it starts: the data it started on (a resume writes nothing there
        # before its checkpoint is read)
        fingerprint = data_fingerprint(config, None if args.resume else Path(args.out))
        print(fingerprint.describe(), flush=True)
        if before is not None and before != fingerprint.digest:
            logging.getLogger(__name__).warning(
                "the data changed since this run started (digest %s -> %s): its epochs before and after read "
                "different data", before, fingerprint.digest)
    if config.runtime.world_size > 1 and not distributed.in_process_group():  # Ray Train starts the ranks
        result = _fit_on_ray_train(config, Path(args.out), args)
    else:  # MLflow when a URI is set, the fingerprint as the run's dataset input
        result = train_from_cli(config, Path(args.out), resume=args.resume, tracking_uri=args.tracking_uri,
                                experiment=args.experiment, fingerprint=fingerprint)
    print(f"final val top-1 {result['final_val_top1']:.4f}, top-5 {result['final_val_top5']:.4f}; best val top-1 "
          f"{result['best_val_top1']:.4f} at epoch {int(result['best_epoch'])}; run in {args.out}")
    return 0

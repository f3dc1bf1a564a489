"""``gsf train`` in every rank started by torchrun (no Ray needed)::

    torchrun --nproc-per-node N -m experiments.torchrun_train CONFIG --out DIR [--set ...] [--resume]
    torchrun --nnodes M --node-rank R --rdzv-endpoint HOST:PORT --nproc-per-node N -m experiments.torchrun_train ...

Each rank joins the process group torchrun describes (nccl on one GPU per rank, ``cuda:LOCAL_RANK``, when the
run is on CUDA; else gloo) and runs :func:`gsf.engine.train`, which records the group's size in
``runtime.world_size``; rank 0 writes ``DIR``. ``--resume`` continues a run of the same number of processes.
It lives beside ``gsf train``'s module (:mod:`experiments.train_cli`), whose arguments and run it shares.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import torch.distributed as dist

    from experiments import train_cli
    from gsf.cli import run_command, setup_logging

    parser = argparse.ArgumentParser(prog="torchrun ... -m experiments.torchrun_train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    train_cli.configure_parser(parser)
    args = parser.parse_args(argv)
    if args.nproc is not None:
        parser.error("--nproc: torchrun starts the processes (--nproc-per-node)")
    setup_logging()
    code = run_command(_join_group, args, prog="gsf train")
    if code != 0:
        return code
    try:
        return run_command(train_cli.run, args, prog="gsf train")
    finally:
        dist.destroy_process_group()


def _join_group(args) -> int:
    """Join the process group torchrun describes, on the device the configuration asks for."""
    import torch

    from gsf.engine import distributed
    from gsf.engine.config import load_config

    distributed.require_torchrun()
    device = load_config(args.config, args.overrides, check=False).runtime.device if args.config else "auto"
    distributed.init_from_torchrun("cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``gsf train`` in every rank started by torchrun (no Ray needed)::

    torchrun --nproc-per-node N -m gsf.engine.torchrun_train CONFIG --out DIR [--set ...] [--resume]
    torchrun --nnodes M --node-rank R --rdzv-endpoint HOST:PORT --nproc-per-node N -m gsf.engine.torchrun_train ...

Each rank joins the process group torchrun describes (nccl on one GPU per rank, ``cuda:LOCAL_RANK``, when the
run is on CUDA; else gloo) and runs :func:`gsf.engine.train`, which records the group's size in
``runtime.world_size``; rank 0 writes ``DIR``. ``--resume`` continues a run of the same number of processes.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.distributed as dist

    from gsf.engine import distributed, train_cli
    from gsf.engine.config import load_config
    from gsf.errors import GSFError

    parser = argparse.ArgumentParser(prog="torchrun ... -m gsf.engine.torchrun_train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    train_cli.configure_parser(parser)
    args = parser.parse_args(argv)
    if args.nproc is not None:
        parser.error("--nproc: torchrun starts the processes (--nproc-per-node)")
    train_cli.setup_logging()
    try:
        distributed.require_torchrun()
        device = load_config(args.config, args.overrides, check=False).runtime.device if args.config else "auto"
        device_type = "cuda" if device != "cpu" and torch.cuda.is_available() else "cpu"
        distributed.init_from_torchrun(device_type)
    except GSFError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return train_cli.run(args)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())

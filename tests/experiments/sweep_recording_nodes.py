"""``gsf sweep`` whose data-parallel trials record, in every rank, where each epoch ran: the cluster tests' driver.

Run as ``python sweep_recording_nodes.py RECORD_DIR GSF-SWEEP-ARGS...``: the sweep of ``gsf sweep GSF-SWEEP-ARGS``
with an extra engine callback per trial (``SweepOptions.trial_callbacks``), called in every rank, that writes
``RECORD_DIR/rank<R>-epoch<E>-pid<P>.json`` (``{"rank", "epoch", "node", "pid"}``, the Ray node id of the rank's
worker) after each epoch it reported. Defined in ``__main__``, the callback travels to Ray's workers by value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path


class RecordNode:
    """Engine callback of every rank: one small JSON file per rank and epoch naming the Ray node it ran on."""

    every_rank = True

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_start(self, config, out_dir, start_epoch) -> None:
        pass

    def on_epoch_end(self, epoch, metrics, checkpoint_path) -> None:
        import ray
        import ray.train

        rank = ray.train.get_context().get_world_rank()
        record = {"rank": rank, "epoch": epoch, "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid()}
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"rank{rank}-epoch{epoch}-pid{os.getpid()}.json"
        path.with_suffix(".tmp").write_text(json.dumps(record), encoding="utf-8")
        path.with_suffix(".tmp").rename(path)  # whole files only: the test polls the folder

    def on_train_end(self, result) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class RecordNodes:
    """``SweepOptions.trial_callbacks``: one :class:`RecordNode` per rank."""

    folder: str

    def __call__(self, spec):
        return [RecordNode(Path(self.folder))]


def main(argv: list[str]) -> int:
    from experiments import sweep_cli as cli
    from experiments.runner import run_sweep

    folder, *sweep_argv = argv
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(sweep_argv)
    options = dataclasses.replace(cli.sweep_options(args, cli.parse_overrides(args.overrides)),
                                  trial_callbacks=RecordNodes(str(Path(folder).resolve())))
    cli.print_sweep_steps()
    return run_sweep(args.grids[0], options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

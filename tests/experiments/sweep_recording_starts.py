"""``gsf sweep`` whose trials record where each attempt ran and the epoch it started at: the driver of the tests
that kill a sweep's driver or a trial's node.

Run as ``python sweep_recording_starts.py RECORD_DIR GSF-SWEEP-ARGS...``: the sweep of ``gsf sweep GSF-SWEEP-ARGS``
with an extra engine callback per trial (``SweepOptions.trial_callbacks``) that writes, from the trial's own
process, ``RECORD_DIR/<slug>/start-pid<P>.json`` (``{"pid", "start_epoch"}``) when an attempt starts and
``RECORD_DIR/<slug>/epoch<E>-pid<P>.json`` after each epoch it finished. A trial resumed from its checkpoint
starts after the checkpointed epoch; one restarted from scratch starts at epoch 1 again. The trial writes these
files itself: unlike Tune's ``result.json``, nothing restores or syncs them. Defined in ``__main__``, the
callback travels to Ray's workers by value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_text(json.dumps(record), encoding="utf-8")
    path.with_suffix(".tmp").rename(path)  # whole files only: tests poll the folder


def attempts(folder: Path) -> dict[str, list[dict]]:
    """slug -> ``[{"pid", "start_epoch", "epochs": [...]}]``, one per attempt of the trial, by start epoch."""
    found: dict[str, list[dict]] = {}
    for start in sorted(Path(folder).glob("*/start-pid*.json")):
        record = json.loads(start.read_text())
        record["epochs"] = sorted(json.loads(p.read_text())["epoch"]
                                  for p in start.parent.glob(f"epoch*-pid{record['pid']}.json"))
        found.setdefault(start.parent.name, []).append(record)
    return {slug: sorted(records, key=lambda r: r["start_epoch"]) for slug, records in found.items()}


class RecordStart:
    """Engine callback: the attempt's process and start epoch, then each epoch it finished."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_start(self, config, out_dir, start_epoch) -> None:
        _write(self.folder / f"start-pid{os.getpid()}.json", {"pid": os.getpid(), "start_epoch": int(start_epoch)})

    def on_epoch_end(self, epoch, metrics, checkpoint_path) -> None:
        _write(self.folder / f"epoch{int(epoch)}-pid{os.getpid()}.json", {"pid": os.getpid(), "epoch": int(epoch)})

    def on_train_end(self, result) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class RecordStarts:
    """``SweepOptions.trial_callbacks``: one :class:`RecordStart` per trial, in a folder named by its slug."""

    folder: str

    def __call__(self, spec):
        return [RecordStart(Path(self.folder) / spec.slug)]


def main(argv: list[str]) -> int:
    from experiments import sweep_cli as cli
    from experiments.runner import run_sweep

    folder, *sweep_argv = argv
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(sweep_argv)
    options = dataclasses.replace(cli.sweep_options(args, cli.parse_overrides(args.overrides)),
                                  trial_callbacks=RecordStarts(str(Path(folder).resolve())))
    cli.print_sweep_steps()
    return run_sweep(args.grids[0], options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

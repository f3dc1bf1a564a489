"""``gsf sweep`` whose every trial fails once after an epoch: the retry path's test driver.

Run as ``python sweep_failing_once.py EPOCH MARKER_DIR GSF-SWEEP-ARGS...``: the sweep of ``gsf sweep
GSF-SWEEP-ARGS`` with an extra engine callback per trial (``SweepOptions.trial_callbacks``) that raises
:class:`InjectedFailure` after epoch ``EPOCH`` of the trial's first attempt (a marker file per trial in
``MARKER_DIR`` remembers the attempt). Every attempt also appends the epoch it starts at to
``MARKER_DIR/starts_<hash>`` (:func:`start_epochs` reads them back): a retry resumed from its checkpoint starts
after the failing epoch, one restarted from scratch at epoch 1 again. Defined in ``__main__``, the callback
travels to Ray's workers by value.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


class InjectedFailure(RuntimeError):
    """Raised once per trial, after its failing epoch was reported."""


def start_epochs(marker_dir: Path) -> list[list[int]]:
    """The start epoch of each attempt, per trial (in the order of the trials' marker names)."""
    return [[int(x) for x in p.read_text().split()] for p in sorted(Path(marker_dir).glob("starts_*"))]


class FailOnceAfterEpoch:
    """Engine callback: raise :class:`InjectedFailure` after ``epoch`` unless the trial's marker exists."""

    def __init__(self, epoch: int, marker: Path):
        self.epoch = epoch
        self.marker = marker

    def on_train_start(self, config, out_dir, start_epoch) -> None:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        starts = self.marker.with_name(self.marker.name.replace("failed_once_", "starts_"))
        with starts.open("a", encoding="utf-8") as f:
            f.write(f"{start_epoch}\n")

    def on_epoch_end(self, epoch, metrics, checkpoint_path) -> None:
        if epoch == self.epoch and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self.marker.write_text(f"failed once after epoch {epoch}\n", encoding="utf-8")
            raise InjectedFailure(f"injected failure after epoch {epoch}")

    def on_train_end(self, result) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class FailOnce:
    """``SweepOptions.trial_callbacks``: one :class:`FailOnceAfterEpoch` per trial."""

    epoch: int
    marker_dir: str

    def __call__(self, spec):
        return [FailOnceAfterEpoch(self.epoch, Path(self.marker_dir) / f"failed_once_{spec.config_hash[:16]}")]


def main(argv: list[str]) -> int:
    from experiments import sweep_cli as cli
    from experiments.runner import run_sweep

    epoch, marker_dir, *sweep_argv = argv
    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    args = parser.parse_args(sweep_argv)
    options = dataclasses.replace(cli.sweep_options(args, cli.parse_overrides(args.overrides)),
                                  trial_callbacks=FailOnce(int(epoch), str(Path(marker_dir).resolve())))
    cli.print_sweep_steps()
    return run_sweep(args.grids[0], options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

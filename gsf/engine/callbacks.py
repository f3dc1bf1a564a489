"""The callback interface through which :func:`gsf.engine.train` reports to whoever drives a run
(the sweep runner reports to Ray Tune and MLflow through it; the engine itself knows neither)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gsf.engine.config import TrainConfig


class Callback:
    """Hooks called by :func:`gsf.engine.train`; every method is optional (the base class does nothing).
    In a data-parallel run only rank 0 calls them, unless ``every_rank`` is true (a report every rank must
    make, like Ray Train's)."""

    every_rank: bool = False

    def on_train_start(self, config: TrainConfig, out_dir: Path, start_epoch: int) -> None:
        """Before the first epoch trained in this call (``start_epoch`` is 1-based; > 1 on resume)."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], checkpoint_path: Path) -> None:
        """After epoch ``epoch`` (1-based) is trained, validated (if due) and checkpointed to
        ``checkpoint_path``. ``metrics`` holds the keys listed in :mod:`gsf.engine`."""

    def on_train_end(self, result: dict[str, float]) -> None:
        """After the last epoch, with the final result of :func:`gsf.engine.train`."""

"""Reading weight files and comparing state dicts: the one reader and the one diff behind the engine's
checkpoints (:mod:`gsf.engine.checkpoint`) and the models' weight loading (:mod:`gsf.models.authors`,
:mod:`gsf.models.weights`). Files are read with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from gsf.errors import GSFCheckpointError


def _why_unreadable(err: Exception) -> str:
    """One line on why ``torch.load(weights_only=True)`` refused a file; never PyTorch's advice to load it
    with ``weights_only=False``, which would run whatever code the file holds."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if found:
        return (f"it holds Python objects ({found.group(1)}) besides tensors and plain containers, which are not loaded "
                "(files are read with weights_only=True); expected a checkpoint written by gsf train or the "
                "GSF release")
    return (f"not a PyTorch file, or truncated ({type(err).__name__}); expected a checkpoint written by gsf train "
            "or the GSF release")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict saved in ``path`` (on CPU, ``weights_only=True``); a :class:`GSFCheckpointError` naming the
    path if it is missing, truncated, not a PyTorch file or not a dict."""
    path = Path(path)
    if not path.is_file():
        raise GSFCheckpointError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise GSFCheckpointError(f"checkpoint {path} cannot be read: {_why_unreadable(err)}") from None
    if not isinstance(checkpoint, dict):
        raise GSFCheckpointError(f"checkpoint {path} holds a {type(checkpoint).__name__}, not a dict")
    return checkpoint


@dataclass(frozen=True)
class StateDictDiff:
    """How a state dict read from a file differs from the one a model expects (sorted key lists)."""

    missing: list[str]  # the model has them, the file does not
    unexpected: list[str]  # the file has them, the model does not
    mismatched: list[str]  # both have them, with different shapes
    first_mismatch: str = ""  # "key: (file shape) in the file, (model shape) in the model"

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 4) -> str:
        """``missing [a, b], unexpected [...], shape mismatch [...]``, at most ``limit`` keys per list."""
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:limit]) + (f" ... ({len(keys)} in all)" if len(keys) > limit else "")

        text = (f"missing [{head(self.missing)}], unexpected [{head(self.unexpected)}], "
                f"shape mismatch [{head(self.mismatched)}]")
        return text + (f" ({self.first_mismatch})" if self.first_mismatch else "")


def state_dict_diff(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], *,
                    may_be_missing: Callable[[str], bool] = lambda key: False) -> StateDictDiff:
    """Compare ``found`` (from a file) with ``expected`` (a model's ``state_dict()``): keys on one side
    only, and shared keys of different shapes; keys for which ``may_be_missing`` is true may be absent
    from ``found``."""
    missing = sorted(k for k in set(expected) - set(found) if not may_be_missing(k))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(found) if tuple(expected[k].shape) != tuple(found[k].shape))
    first = ""
    if mismatched:
        k = mismatched[0]
        first = f"{k}: {tuple(found[k].shape)} in the file, {tuple(expected[k].shape)} in the model"
    return StateDictDiff(missing, unexpected, mismatched, first)

"""Checkpoints: atomic writes, ``weights_only`` loads, RNG states as plain values, architecture checks.

A checkpoint is a dict of tensors and plain Python values only (so ``torch.load(weights_only=True)``
reads it): ``model`` (state dict without DDP/compile prefixes), ``optimizer``, ``scheduler``, ``scaler``
(or None), ``epoch`` (1-based, last finished), ``step`` (optimizer steps so far), ``rng``, ``best_val_top1``,
``best_epoch``, ``config`` (the resolved configuration as a nested dict), ``code_version``
(``{"gsf": __version__, "git_commit": str | None}``, the commit ``-dirty`` when tracked files changed)
and ``format`` (``"gsf-bench-v1"``).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gsf.errors import GSFCheckpointError
from gsf.state_dicts import read_checkpoint, state_dict_diff

FORMAT = "gsf-bench-v1"


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DDP/DataParallel (``.module``) or ``torch.compile`` (``._orig_mod``)."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of the bare model, on CPU, with no wrapper prefixes in its keys."""
    return {k: v.detach().cpu().clone() for k, v in unwrap_model(model).state_dict().items()}


def code_version_entry() -> dict[str, str | None]:
    """The ``code_version`` entry of a checkpoint: the package version and :func:`gsf.provenance.git_commit`
    (``-dirty`` when tracked files changed, as the MLflow run's tag says)."""
    import gsf
    from gsf.provenance import git_commit

    return {"gsf": gsf.__version__, "git_commit": git_commit()}


# --- RNG states as plain values ----------------------------------------------------------------------

def rng_state() -> dict:
    """Torch, numpy, Python and CUDA generator states as tensors/ints/lists (``weights_only``-safe)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": [int(v) for v in internal],
                   "gauss": None if gauss is None else float(gauss)},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


# --- writing and reading -----------------------------------------------------------------------------

def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, flushed and fsynced,
    then ``os.replace``. If anything fails (a full disk raises OSError), the previous file at ``path`` is
    untouched, the temporary file is removed and a :class:`GSFCheckpointError` names the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException as err:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise GSFCheckpointError(f"could not write checkpoint {path} ({err}); the previous one, if any, "
                                     "is intact") from err
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint of this suite (:func:`gsf.state_dicts.read_checkpoint`: ``weights_only=True``, a
    clear error if missing, corrupt or not a dict)."""
    return read_checkpoint(path)


def is_authors_checkpoint(checkpoint: dict) -> bool:
    """The GSF release's format: ``model_state_dict`` with ``module.base_model.`` keys."""
    state = checkpoint.get("model_state_dict")
    return isinstance(state, dict) and any(str(k).startswith("module.base_model.") for k in state)


def check_compatible(checkpoint: dict, model_section: dict, model: nn.Module, *, path) -> None:
    """Raise :class:`GSFCheckpointError` if ``checkpoint`` was made by another architecture: its model
    section differs from ``model_section`` or its state-dict keys/shapes differ from ``model``'s."""
    if checkpoint.get("format") != FORMAT or "model" not in checkpoint:
        raise GSFCheckpointError(f"{path} is not a GSF Bench checkpoint (no format {FORMAT!r}/'model' entry)")
    from gsf.engine.config import TrainConfig

    # A key missing from the checkpoint's model section was added to the configuration after the checkpoint
    # was written (model.tam_kernel_size...): the model it saved had that key's default.
    saved = {**TrainConfig().to_dict()["model"], **((checkpoint.get("config") or {}).get("model", {}))}
    # the starting weights (model.pretrained, model.init_from) are history, not architecture
    differ = sorted(k for k in set(saved) | set(model_section)
                    if saved.get(k) != model_section.get(k) and k not in ("pretrained", "init_from"))
    if differ:
        details = ", ".join(f"model.{k}: checkpoint {saved.get(k)!r} vs config {model_section.get(k)!r}" for k in differ)
        raise GSFCheckpointError(f"{path} was trained with another architecture ({details})")
    diff = state_dict_diff(unwrap_model(model).state_dict(), checkpoint["model"])
    if diff:
        raise GSFCheckpointError(f"{path} does not fit the configured model: {diff.describe()} (another "
                                 "architecture or class count?)")

"""Loading checkpoints saved by the authors' GSF release into this suite's models (GSF.md section 2)."""

from __future__ import annotations

import os

from gsf.errors import GSFCheckpointError
from gsf.models.registry import build_model
from gsf.models.video import VideoClassifier
from gsf.models.weights import convert_authors_state_dict, read_checkpoint


def from_authors_checkpoint(path: str | os.PathLike, *, backbone: str, num_classes: int,
                            channel_fraction: float = 1.0, dropout: float = 0.5) -> VideoClassifier:
    """Build a GSF model and load an authors' checkpoint into it strictly.

    The release saves ``{"model_state_dict": {"module.base_model.<key>": ..., "module.new_fc.*": ...},
    "epoch", "best_prec1", "scaler_state_dict"}``; every tensor must find its place here and every
    parameter of ours must be filled, otherwise a :class:`GSFCheckpointError` lists the differences
    (usually a wrong ``backbone``, ``num_classes`` or ``channel_fraction``, which the release called
    ``gsf_ch_ratio`` in percent).
    """
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("model_state_dict", checkpoint.get("state_dict", checkpoint))
    if not isinstance(state, dict) or not state:
        raise GSFCheckpointError(f"{path} holds no model state dict (expected key 'model_state_dict')")
    model = build_model(backbone=backbone, temporal="gsf", num_classes=num_classes,
                        channel_fraction=channel_fraction, dropout=dropout)
    converted = convert_authors_state_dict(state, basic_block=backbone in ("resnet18", "resnet34"))
    ours = model.state_dict()
    missing = sorted(set(ours) - set(converted))
    unexpected = sorted(set(converted) - set(ours))
    mismatched = sorted(k for k in set(ours) & set(converted) if ours[k].shape != converted[k].shape)
    if missing or unexpected or mismatched:
        def _head(keys):
            return ", ".join(keys[:5]) + (f" ... ({len(keys)} in all)" if len(keys) > 5 else "")
        raise GSFCheckpointError(
            f"{path} does not fit {backbone} with {num_classes} classes and channel_fraction={channel_fraction}: "
            f"missing [{_head(missing)}], unexpected [{_head(unexpected)}], "
            f"shape mismatch [{_head([f'{k} {tuple(converted[k].shape)} vs {tuple(ours[k].shape)}' for k in mismatched])}]"
        )
    model.load_state_dict(converted, strict=True)
    return model

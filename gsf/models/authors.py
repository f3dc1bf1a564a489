"""Loading checkpoints saved by the authors' GSF release into this suite's models (docs/gsf-operator.md section 2)."""

from __future__ import annotations

import os

from gsf.errors import GSFCheckpointError
from gsf.models.registry import backbone_spec, build_model
from gsf.models.video import VideoClassifier
from gsf.models.weights import convert_authors_state_dict
from gsf.state_dicts import read_checkpoint, state_dict_diff


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
    converted = convert_authors_state_dict(state, basic_block=backbone_spec(backbone).block == "basic")
    diff = state_dict_diff(model.state_dict(), converted)
    if diff:
        raise GSFCheckpointError(f"{path} does not fit {backbone} with {num_classes} classes and "
                                 f"channel_fraction={channel_fraction}: {diff.describe(limit=5)}")
    model.load_state_dict(converted, strict=True)
    return model

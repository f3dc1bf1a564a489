"""Loading weights: torchvision ImageNet weights from the local cache, and the authors' checkpoints.

Nothing here downloads: the suite runs on clusters without internet, so a missing weight file is a clear
error naming the path where it was expected and the URL to fetch it from, never a hang.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gsf.errors import GSFCheckpointError


def torch_hub_checkpoint_dir() -> Path:
    """The folder where torchvision keeps downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def load_torchvision_weights(weights) -> dict[str, torch.Tensor]:
    """The state dict of a torchvision ``WeightsEnum`` member, read from the local hub cache only."""
    filename = os.path.basename(weights.url)
    path = torch_hub_checkpoint_dir() / filename
    if not path.is_file():
        raise GSFCheckpointError(
            f"ImageNet weights {weights} are not in the local torch cache: expected {path}. "
            f"Download {weights.url} there (or set TORCH_HOME), or train from scratch with pretrained=False."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint file with ``weights_only=True``; a clear error if missing, truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise GSFCheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise GSFCheckpointError(f"checkpoint {path} cannot be read (truncated or not a PyTorch file?): {error}") from error


def authors_key_to_ours(key: str) -> str:
    """Map a state-dict key of the authors' release (GSF.md section 2) to this suite's VideoClassifier.

    ``module.base_model.<backbone key>`` -> ``backbone.<backbone key>`` and ``module.new_fc.*`` -> ``head.*``.
    In the release's ResNet, the GSF module of a bottleneck is the child ``gsf``; here it is the child
    ``temporal_after_conv3`` (``temporal_after_conv2`` in a BasicBlock).
    """
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("new_fc."):
        return "head." + key[len("new_fc."):]
    if key.startswith("base_model."):
        return "backbone." + key[len("base_model."):]
    return key


def convert_authors_state_dict(state: dict[str, torch.Tensor], *, basic_block: bool = False) -> dict[str, torch.Tensor]:
    """Rename every key of an authors' state dict to ours (see :func:`authors_key_to_ours`)."""
    resnet_gsf = ".temporal_after_conv2." if basic_block else ".temporal_after_conv3."
    converted = {}
    for key, value in state.items():
        ours = authors_key_to_ours(key)
        if ours.startswith("backbone.layer") and ".gsf." in ours:
            ours = ours.replace(".gsf.", resnet_gsf)
        converted[ours] = value
    return converted

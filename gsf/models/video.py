"""The TSN-style video classifier (docs/gsf-operator.md section 2).

The backbone runs on every frame of the clip (frames of one clip contiguous, TSN layout); each frame's
features go through dropout and a new linear classifier (weights normal with std 0.001, bias 0), and the
frame logits are averaged over time (the consensus). EPIC-Kitchens uses two heads (verbs and nouns) on the
same features.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from gsf.errors import GSFConfigError
from gsf.ops import TemporalModule


def _new_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight, mean=0.0, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


class VideoClassifier(nn.Module):
    """Backbone per frame, dropout, new linear head(s), average consensus over frames.

    Args:
        backbone: maps frames (N, 3, H, W) to features (N, backbone.feature_dim).
        num_classes: an int for one head (``head``), or a mapping such as ``{"verb": 97, "noun": 300}``
            for several heads (``heads.<name>``); the forward pass then returns a dict of logits.
        dropout: dropout probability before the classifier (the recipe: 0.5).

    ``forward`` takes clips (B, T, 3, H, W) and returns logits (B, K). The clip length T is read from the
    input at every call and handed to the temporal modules, so one model serves any T.
    """

    def __init__(self, backbone: nn.Module, *, num_classes: int | Mapping[str, int], dropout: float = 0.5):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise GSFConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.backbone = backbone
        self.dropout = nn.Dropout(p=dropout)
        feature_dim = backbone.feature_dim
        if isinstance(num_classes, Mapping):
            if not num_classes or any(int(k) < 1 for k in num_classes.values()):
                raise GSFConfigError(f"num_classes must map head names to positive counts, got {dict(num_classes)}")
            self.heads = nn.ModuleDict({name: _new_linear(feature_dim, int(k)) for name, k in num_classes.items()})
        else:
            if int(num_classes) < 1:
                raise GSFConfigError(f"num_classes must be positive, got {num_classes}")
            self.head = _new_linear(feature_dim, int(num_classes))

    @property
    def temporal_modules(self) -> list[TemporalModule]:
        """The temporal modules inside the backbone, in execution order of registration."""
        return [m for m in self.backbone.modules() if isinstance(m, TemporalModule)]

    def forward(self, clips: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        if clips.dim() != 5:
            raise GSFConfigError(f"VideoClassifier expects clips of shape (B, T, C, H, W), got {tuple(clips.shape)}")
        batch, num_frames = int(clips.shape[0]), int(clips.shape[1])
        for module in self.temporal_modules:
            module.num_frames = num_frames
        features = self.dropout(self.backbone(clips.flatten(0, 1)))
        if hasattr(self, "heads"):
            return {name: head(features).view(batch, num_frames, -1).mean(dim=1) for name, head in self.heads.items()}
        return self.head(features).view(batch, num_frames, -1).mean(dim=1)

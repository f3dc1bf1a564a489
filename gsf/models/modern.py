"""RegNetY and ConvNeXt-Tiny (torchvision definitions) with temporal modules on their residual branches.

GSF has since been used on these families; there is no paper placement, so the modules act on the input of
each residual branch (the TSM-style residual position, docs/gsf-operator.md section 1 "Relatives"), leaving the identity
path untouched. As for ResNet, blocks are rebuilt around their own children so state-dict keys of the
existing layers are unchanged, and the temporal module is a new child ``temporal_residual_input``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models import convnext as tv_convnext
from torchvision.models import regnet as tv_regnet

from gsf.errors import GSFConfigError

PLACEMENTS = ("paper", "residual_input")
MakeModule = Callable[[int, str], nn.Module | None]

REGNETS = {
    "regnet_y_400mf": (tv_regnet.regnet_y_400mf, tv_regnet.RegNet_Y_400MF_Weights.IMAGENET1K_V2),
    "regnet_y_800mf": (tv_regnet.regnet_y_800mf, tv_regnet.RegNet_Y_800MF_Weights.IMAGENET1K_V2),
}


class RegNetBackbone(nn.Module):
    """torchvision RegNet without ``fc``: frames (N, 3, H, W) -> features (N, feature_dim)."""

    input_size = 224
    input_space = "RGB"

    def __init__(self, model: tv_regnet.RegNet):
        super().__init__()
        self.stem = model.stem
        self.trunk_output = model.trunk_output
        self.avgpool = model.avgpool
        self.feature_dim = model.fc.in_features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.trunk_output(self.stem(frames))), 1)


class ConvNeXtBackbone(nn.Module):
    """torchvision ConvNeXt without its last linear layer (keeps the final LayerNorm)."""

    input_size = 224
    input_space = "RGB"

    def __init__(self, model: tv_convnext.ConvNeXt):
        super().__init__()
        self.features = model.features
        self.avgpool = model.avgpool
        self.norm = model.classifier[0]
        self.feature_dim = model.classifier[2].in_features

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.norm(self.avgpool(self.features(frames))), 1)


def build_regnet(*, name: str) -> RegNetBackbone:
    """RegNetY-400MF or -800MF with torchvision's initialisation; starting weights are loaded by
    :func:`gsf.build_model` (:func:`gsf.models.weights.load_pretrained_backbone`)."""
    if name not in REGNETS:
        raise GSFConfigError(f"unknown RegNet {name!r}; choose one of {', '.join(REGNETS)}")
    factory, _ = REGNETS[name]
    return RegNetBackbone(factory(weights=None))


def build_convnext_tiny(*, stochastic_depth_prob: float = 0.1) -> ConvNeXtBackbone:
    """ConvNeXt-Tiny with torchvision's initialisation; starting weights are loaded by
    :func:`gsf.build_model` (:func:`gsf.models.weights.load_pretrained_backbone`)."""
    return ConvNeXtBackbone(tv_convnext.convnext_tiny(weights=None, stochastic_depth_prob=stochastic_depth_prob))


class TemporalRegNetBlock(nn.Module):
    """A RegNet ``ResBottleneckBlock`` whose residual branch ``f`` sees temporally mixed input."""

    def __init__(self, block: tv_regnet.ResBottleneckBlock, temporal: nn.Module):
        super().__init__()
        self.proj = block.proj
        self.f = block.f
        self.activation = block.activation
        self.temporal_residual_input = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.f(self.temporal_residual_input(x))
        identity = x if self.proj is None else self.proj(x)
        return self.activation(identity + branch)


class TemporalConvNeXtBlock(nn.Module):
    """A ConvNeXt ``CNBlock`` whose residual branch sees temporally mixed input."""

    def __init__(self, block: tv_convnext.CNBlock, temporal: nn.Module):
        super().__init__()
        self.block = block.block
        self.layer_scale = block.layer_scale
        self.stochastic_depth = block.stochastic_depth
        self.temporal_residual_input = temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.layer_scale * self.block(self.temporal_residual_input(x))
        return x + self.stochastic_depth(branch)


def _residual_blocks(backbone: nn.Module) -> list[tuple[nn.Sequential, int, str, int, int]]:
    """(container, index, dotted name, stage number, input channels) of every residual block."""
    found = []
    if isinstance(backbone, RegNetBackbone):
        for stage, (stage_name, stage_module) in enumerate(backbone.trunk_output.named_children(), start=1):
            for index, block in enumerate(stage_module):
                channels = block.f.a[0].in_channels
                found.append((stage_module, index, f"trunk_output.{stage_name}.{block_name(stage_module, index)}",
                              stage, channels))
    elif isinstance(backbone, ConvNeXtBackbone):
        stage = 0
        for feature_index, stage_module in enumerate(backbone.features):
            if not (isinstance(stage_module, nn.Sequential) and isinstance(stage_module[0], tv_convnext.CNBlock)):
                continue
            stage += 1
            for index, block in enumerate(stage_module):
                channels = block.block[0].in_channels
                found.append((stage_module, index, f"features.{feature_index}.{index}", stage, channels))
    else:
        raise GSFConfigError(f"{type(backbone).__name__} is not a RegNet or ConvNeXt backbone")
    return found


def block_name(container: nn.Sequential, index: int) -> str:
    """The child name of ``container[index]`` (RegNet names its blocks ``block1-0`` and so on)."""
    return list(container._modules)[index]


def insert_temporal_modules(backbone: nn.Module, *, make_module: MakeModule, placement: str = "paper",
                            stages: Sequence[int] = (1, 2, 3, 4), last_n_blocks: int | None = None) -> list[str]:
    """Insert a temporal module at the input of each chosen residual branch; return inserted names.

    ``placement`` is ``"residual_input"`` (``"paper"`` is an alias: there is no paper placement for these
    families). ``stages`` and ``last_n_blocks`` select blocks as for ResNet.
    """
    if placement not in PLACEMENTS:
        raise GSFConfigError(f"unknown placement {placement!r} for {type(backbone).__name__}; "
                             f"choose one of {', '.join(PLACEMENTS)}")
    candidates = [entry for entry in _residual_blocks(backbone) if entry[3] in set(stages)]
    if last_n_blocks is not None:
        if last_n_blocks < 0:
            raise GSFConfigError(f"last_n_blocks must be >= 0, got {last_n_blocks}")
        candidates = candidates[len(candidates) - min(last_n_blocks, len(candidates)):]
    wrapper = TemporalRegNetBlock if isinstance(backbone, RegNetBackbone) else TemporalConvNeXtBlock
    inserted = []
    for container, index, name, _stage, channels in candidates:
        module = make_module(channels, f"{name}.temporal_residual_input")
        if module is None:
            continue
        container[index] = wrapper(container[index], module)
        inserted.append(f"{name}.temporal_residual_input")
    return inserted

"""ResNet backbones (torchvision definitions) and temporal-module insertion points.

The paper (docs/gsf-operator.md section 2) places GSF in every bottleneck of ResNet-50/101, on the residual branch after
``conv3`` and before ``bn3``, i.e. before the residual addition; for BasicBlock (ResNet-18/34) the
analogous place is after ``conv2`` before ``bn2``. TSM and TIN instead act on the residual branch's input,
before ``conv1`` (``blockres``); TAM after ``conv1``'s BN and ReLU, feeding ``conv2`` (docs/temporal-modules.md).
The insertion points are data: a position inside the block, the stages, and "the last N blocks" counted
from the top of the network.

Insertion replaces each chosen block by a :class:`TemporalResidualBlock` that *adopts* the block's
children under their original names and adds the temporal modules as new children named
``temporal_<position>``, so torchvision's and the authors' state-dict keys of existing layers are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from gsf.errors import GSFConfigError

BLOCK_POSITIONS = ("before_conv1", "after_conv1", "before_conv2", "after_conv2", "after_conv3")
PLACEMENTS = ("paper", *BLOCK_POSITIONS, "all")
ALL_STAGES = (1, 2, 3, 4)

MakeModule = Callable[[int, str], nn.Module | None]


class ResNetBackbone(nn.Module):
    """A ResNet trunk with torchvision's child names (``conv1 ... layer4``) and no classifier.

    Maps frames (N, 3, H, W) to pooled features (N, feature_dim).
    """

    input_size = 224
    input_space = "RGB"

    def __init__(self, *, stem: nn.Sequential, layers: Sequence[nn.Sequential], feature_dim: int):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = stem
        for index, layer in enumerate(layers, start=1):
            self.add_module(f"layer{index}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = feature_dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(frames))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def _from_torchvision(model: tv_resnet.ResNet) -> ResNetBackbone:
    return ResNetBackbone(
        stem=nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool),
        layers=[model.layer1, model.layer2, model.layer3, model.layer4],
        feature_dim=model.fc.in_features,
    )


TORCHVISION_RESNETS = {
    "resnet18": (tv_resnet.resnet18, tv_resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (tv_resnet.resnet34, tv_resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (tv_resnet.resnet50, tv_resnet.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (tv_resnet.resnet101, tv_resnet.ResNet101_Weights.IMAGENET1K_V1),
}


def build_resnet(*, depth: int) -> ResNetBackbone:
    """ResNet-18/34/50/101 exactly as torchvision defines them (v1.5 bottleneck), without ``fc``, with
    PyTorch's default initialisation. Starting weights (``pretrained``) are loaded by
    :func:`gsf.build_model` through :func:`gsf.models.weights.load_pretrained_backbone`.
    """
    name = f"resnet{depth}"
    if name not in TORCHVISION_RESNETS:
        choices = ", ".join(n.removeprefix("resnet") for n in TORCHVISION_RESNETS)
        raise GSFConfigError(f"ResNet depth {depth!r} is not supported; choose one of {choices}")
    factory, _ = TORCHVISION_RESNETS[name]
    return _from_torchvision(factory(weights=None))


def build_tiny_resnet(*, widths: Sequence[int] = (16, 32, 64, 128), blocks: Sequence[int] = (1, 1, 1, 1),
                      stem_width: int = 16) -> ResNetBackbone:
    """A ResNet of torchvision bottlenecks with reduced widths, for CPU runs and tests.

    Same structure and child names as ResNet-50 (stem, four stages of bottlenecks with expansion 4), so
    every insertion point of the full network exists; ``widths`` are the bottleneck widths per stage.
    """
    if len(widths) != 4 or len(blocks) != 4:
        raise GSFConfigError(f"tiny ResNet needs 4 widths and 4 block counts, got {widths!r}, {blocks!r}")
    stem = nn.Sequential(
        nn.Conv2d(3, stem_width, kernel_size=7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    expansion = tv_resnet.Bottleneck.expansion
    layers, in_channels = [], stem_width
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        stride = 1 if stage == 0 else 2
        stage_blocks = []
        for index in range(count):
            block_stride = stride if index == 0 else 1
            downsample = None
            if block_stride != 1 or in_channels != width * expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(in_channels, width * expansion, kernel_size=1, stride=block_stride, bias=False),
                    nn.BatchNorm2d(width * expansion),
                )
            stage_blocks.append(tv_resnet.Bottleneck(in_channels, width, stride=block_stride, downsample=downsample))
            in_channels = width * expansion
        layers.append(nn.Sequential(*stage_blocks))
    backbone = ResNetBackbone(stem=stem, layers=layers, feature_dim=in_channels)
    for module in backbone.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return backbone


class TemporalResidualBlock(nn.Module):
    """A torchvision BasicBlock or Bottleneck with temporal modules on its residual branch.

    ``before_conv1`` acts on the branch input only (the identity path keeps the unshifted features, as in
    TSM's residual shift); ``after_convK`` acts between ``convK`` and ``bnK`` (docs/gsf-operator.md section 2);
    ``before_conv2`` between ``conv1``'s BN + ReLU and ``conv2`` (TAM's place).
    """

    def __init__(self, block: tv_resnet.BasicBlock | tv_resnet.Bottleneck, temporal: dict[str, nn.Module]):
        super().__init__()
        self.num_convs = 3 if isinstance(block, tv_resnet.Bottleneck) else 2
        for name, child in block.named_children():
            self.add_module(name, child)
        self.downsample = block.downsample  # named_children() skips it when it is None
        for position, module in temporal.items():
            self.add_module(f"temporal_{position}", module)

    def _temporal(self, position: str, x: torch.Tensor) -> torch.Tensor:
        module = self._modules.get(f"temporal_{position}")
        return x if module is None else module(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self._temporal("after_conv1", self.conv1(self._temporal("before_conv1", x)))))
        out = self.bn2(self._temporal("after_conv2", self.conv2(self._temporal("before_conv2", out))))
        if self.num_convs == 3:
            out = self.bn3(self._temporal("after_conv3", self.conv3(self.relu(out))))
        # In place, as torchvision's blocks do: the BN output is not needed by autograd, and a fresh
        # block-sized tensor per block costs page faults and memory traffic.
        out += identity
        return self.relu(out)


def _positions(placement: str, block: nn.Module, layer_name: str) -> list[str]:
    is_bottleneck = isinstance(block, tv_resnet.Bottleneck)
    if placement == "paper":
        return ["after_conv3" if is_bottleneck else "after_conv2"]
    if placement == "all":
        return ["after_conv1", "after_conv2", "after_conv3"] if is_bottleneck else ["after_conv1", "after_conv2"]
    if placement == "after_conv3" and not is_bottleneck:
        raise GSFConfigError(f"placement 'after_conv3' needs bottleneck blocks, but {layer_name} is a BasicBlock")
    return [placement]


def _channels(block: nn.Module, position: str) -> int:
    if position == "before_conv1":
        return block.conv1.in_channels
    if position == "before_conv2":
        return block.conv2.in_channels
    return getattr(block, f"conv{position[-1]}").out_channels


def init_like_release_resnet(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, relu) weights for every ``Conv2d`` inside ``module``, as the release's ResNet
    gives GSF's two fusion convs ``channel_conv1/2`` (docs/gsf-operator.md section 1, initialisation): its backbone init
    loop runs after the GSF modules are built. Conv3d, BN and biases keep PyTorch's defaults, as there."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")


def insert_temporal_modules(backbone: ResNetBackbone, *, make_module: MakeModule, placement: str = "paper",
                            stages: Sequence[int] = ALL_STAGES, last_n_blocks: int | None = None,
                            backbone_init: bool = True) -> list[str]:
    """Insert temporal modules into residual blocks; return the dotted names of the modules inserted.

    Args:
        backbone: a :class:`ResNetBackbone`.
        make_module: ``(channels, layer_name) -> module or None``; None leaves the block untouched.
        placement: position in the block: ``"paper"`` (after conv3 of a bottleneck / conv2 of a basic
            block, docs/gsf-operator.md section 2), one of ``before_conv1`` (TSM's and TIN's residual branch input),
            ``after_conv1``, ``before_conv2`` (after conv1's BN and ReLU: TAM's), ``after_conv2``,
            ``after_conv3``, or ``"all"`` (after every conv of the branch).
        stages: which of the four stages (1-4) receive modules.
        last_n_blocks: if set, only the last N blocks of the chosen stages, counted from the top of the
            network (ResNet-50 ablation: 16, 8, 4 or 0).
        backbone_init: re-initialise each inserted module's Conv2d weights as the release's ResNet does
            (:func:`init_like_release_resnet`; GSF's and GSM's release). False: the modules keep their own
            initialisation (TAM's and TIN's releases insert them after the backbone's init; the registry entry
            of each kind says which, :class:`gsf.ops.TemporalKind`).
    """
    if placement not in PLACEMENTS:
        raise GSFConfigError(f"unknown ResNet placement {placement!r}; choose one of {', '.join(PLACEMENTS)}")
    bad_stages = [s for s in stages if s not in ALL_STAGES]
    if bad_stages:
        raise GSFConfigError(f"ResNet stages must be within 1-4, got {list(stages)!r}")
    candidates = [(f"layer{s}", i) for s in sorted(set(stages)) for i in range(len(getattr(backbone, f"layer{s}")))]
    if last_n_blocks is not None:
        if last_n_blocks < 0:
            raise GSFConfigError(f"last_n_blocks must be >= 0, got {last_n_blocks}")
        candidates = candidates[len(candidates) - min(last_n_blocks, len(candidates)):]
    inserted = []
    for layer_name, index in candidates:
        layer = getattr(backbone, layer_name)
        block = layer[index]
        block_name = f"{layer_name}.{index}"
        modules = {}
        for position in _positions(placement, block, block_name):
            module = make_module(_channels(block, position), f"{block_name}.temporal_{position}")
            if module is not None:
                if backbone_init:
                    init_like_release_resnet(module)
                modules[position] = module
        if modules:
            layer[index] = TemporalResidualBlock(block, modules)
            inserted.extend(f"{block_name}.temporal_{position}" for position in modules)
    return inserted

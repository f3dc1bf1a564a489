"""Model factory and the registry of named variants.

``build_model`` is the one factory: a backbone name, a temporal module kind and its knobs. Named variants
(``resnet50_gsf``, ``bninception_tsm``...) are presets of its keyword arguments, listed by ``list_models``
and built by ``create_model``; every one of them is built and trained for a step in the test suite.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from gsf.errors import GSFConfigError
from gsf.models.video import VideoClassifier
from gsf.models.weights import load_pretrained_backbone
from gsf.ops import TEMPORAL_MODULES, make_temporal_module
from gsf.ops._knobs import LEARNED_GATES, GSFKnobs
from gsf.ops.registry import knob_values, supported_backbones
from gsf.vocabulary import PUBLISHED_NUM_CLASSES, TEMPORAL_KINDS


@dataclass(frozen=True)
class BackboneSpec:
    """The facts of one backbone, the one place they are written (docs/gsf-operator.md section 2): how to build it and
    insert temporal modules, its family, its native input size and, for ResNets, its block type."""

    build: Callable[[], nn.Module]  # the bare backbone, default initialisation
    insert: Callable[..., list[str]]
    family: str  # "resnet", "inception" or "modern": which insertion knobs apply
    default_placement: str
    input_size: int = 224  # side of the square crop it was trained on (the paper's), pixels
    block: str | None = None  # ResNet family: "basic" (two 3x3 convs) or "bottleneck"; else None

    @property
    def normalisation(self) -> str:
        """Input normalisation of its ImageNet weights (:data:`gsf.data.transforms.NORMALISATIONS`): the
        Inceptions take BGR 0-255 minus the mean, the others RGB standardised."""
        return "inception" if self.family == "inception" else "resnet"


# Builders of the bare backbones (default initialisation); build_model loads the starting weights.

def _resnet(depth: int) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from gsf.models.resnet import build_resnet

        return build_resnet(depth=depth)

    return build


def _tiny_resnet() -> nn.Module:
    from gsf.models.resnet import build_tiny_resnet

    return build_tiny_resnet()


def _inception(which: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        if which == "bninception":
            from gsf.models.bn_inception import build_bn_inception

            return build_bn_inception()
        from gsf.models.inception_v3 import build_inception_v3

        return build_inception_v3()

    return build


def _regnet(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from gsf.models.modern import build_regnet

        return build_regnet(name=name)

    return build


def _convnext_tiny() -> nn.Module:
    from gsf.models.modern import build_convnext_tiny

    return build_convnext_tiny()


def _insert_resnet(backbone, **kwargs):
    from gsf.models.resnet import insert_temporal_modules

    return insert_temporal_modules(backbone, **kwargs)


def _insert_inception(backbone, **kwargs):
    from gsf.models.inception_graph import insert_temporal_modules

    return insert_temporal_modules(backbone, **kwargs)


def _insert_modern(backbone, **kwargs):
    from gsf.models.modern import insert_temporal_modules

    return insert_temporal_modules(backbone, **kwargs)


RESNET_BLOCKS = {18: "basic", 34: "basic", 50: "bottleneck", 101: "bottleneck"}  # torchvision's ResNets

BACKBONES: dict[str, BackboneSpec] = {
    **{f"resnet{depth}": BackboneSpec(_resnet(depth), _insert_resnet, "resnet", "paper", block=block)
       for depth, block in RESNET_BLOCKS.items()},
    "resnet_tiny": BackboneSpec(_tiny_resnet, _insert_resnet, "resnet", "paper", block="bottleneck"),
    "bninception": BackboneSpec(_inception("bninception"), _insert_inception, "inception", "authors"),
    # 229 px: at 224 px InceptionV3's branches disagree in size at mixed_3_join (docs/gsf-operator.md section 2)
    "inceptionv3": BackboneSpec(_inception("inceptionv3"), _insert_inception, "inception", "authors", input_size=229),
    "regnet_y_400mf": BackboneSpec(_regnet("regnet_y_400mf"), _insert_modern, "modern", "paper"),
    "regnet_y_800mf": BackboneSpec(_regnet("regnet_y_800mf"), _insert_modern, "modern", "paper"),
    "convnext_tiny": BackboneSpec(_convnext_tiny, _insert_modern, "modern", "paper"),
}


def _closest(name: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def backbone_spec(name: str) -> BackboneSpec:
    """The :class:`BackboneSpec` of backbone ``name``; an unknown name is a :class:`GSFConfigError`."""
    if name not in BACKBONES:
        raise GSFConfigError(f"unknown backbone {name!r}{_closest(name, list(BACKBONES))}; "
                             f"choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def build_model(*, backbone: str, temporal: str = "gsf", num_classes: int | Mapping[str, int],
                pretrained: bool | str | os.PathLike = "none", dropout: float = 0.5, placement: str | None = None,
                stages: Sequence[int] | None = None, last_n_blocks: int | None = None, num_frames: int | None = None,
                **knobs) -> VideoClassifier:
    """Build a video classifier: ``backbone`` with ``temporal`` modules inserted, plus a new head.

    Args:
        backbone: one of :data:`BACKBONES`.
        temporal: a kind of :data:`gsf.ops.TEMPORAL_MODULES`: ``"none"`` (TSN), ``"tsm"``, ``"gsm"``,
            ``"gsf"``, ``"tam"`` or ``"tin"``; its entry says which backbone families take it.
        num_classes: classes of the single head, or ``{"verb": 97, "noun": 300}`` for EPIC-Kitchens.
        pretrained: starting weights of the backbone: ``"none"``, ``"imagenet"`` (the release's file,
            :data:`gsf.models.weights.IMAGENET_WEIGHTS`) or the path of a weight file in the backbone's
            release format; True/False mean imagenet/none. The temporal modules keep their own init.
        placement: where in the backbone (ResNet: ``paper``/``before_conv1``/``after_conv1``/``before_conv2``/
            ``after_conv2``/``after_conv3``/``all``; Inception: ``authors``/``every_branch``; RegNet/ConvNeXt:
            ``residual_input``). Default: the kind's own for the backbone's family (TSM and TIN: ResNet's
            ``before_conv1``; TAM: ``before_conv2``), else the paper's.
        stages, last_n_blocks: which residual blocks get a module (ResNet, RegNet, ConvNeXt only).
        num_frames: the clip length T. Architecture for the kinds whose entry says so (TAM, TIN): their
            modules are built for this T, required, and the model runs only at it; the other kinds run at
            any T and ignore it.
        knobs: the temporal modules' knobs by name (:data:`gsf.ops.KNOBS`): the fields of the knob
            dataclasses :class:`gsf.ops.GSFKnobs` and :class:`gsf.ops.GSMKnobs` (``groups``, ``gate``,
            ``fusion``, ``channel_fraction``, ``zero_init_gate``; docs/gsf-operator.md section 1, fractions not
            percent), :class:`gsf.ops.TSMKnobs` (``shift_fraction``), :class:`gsf.ops.TAMKnobs`
            (``tam_kernel_size``, ``tam_global_expansion``, ``tam_local_reduction``) and :class:`gsf.ops.TINKnobs`
            (``tin_shift_div``), their defaults otherwise. Every knob is checked whatever the kind (each
            kind's knob object is made); the kind uses its own.

    The returned model has ``temporal_module_names``: the dotted names of the inserted modules, and
    ``num_frames``: the clip length it is built for, or None when it runs at any T.
    """
    spec = backbone_spec(backbone)
    if temporal not in TEMPORAL_KINDS:
        raise GSFConfigError(f"unknown temporal module {temporal!r}{_closest(temporal, TEMPORAL_KINDS)}; "
                             f"choose one of {', '.join(TEMPORAL_KINDS)}")
    kind = TEMPORAL_MODULES[temporal]
    if spec.family not in kind.families:
        raise GSFConfigError(f"temporal module {temporal!r} is not available on backbone {backbone!r} (a "
                             f"{spec.family} backbone); it supports {', '.join(supported_backbones(kind, BACKBONES))}")
    # Every knob is checked up front (each kind's knob object is made), so a bad value is reported even for
    # temporal="none".
    values = knob_values(knobs)
    if kind.fixed_num_frames:
        if num_frames is None:
            raise GSFConfigError(f"temporal module {temporal!r} is built for one clip length (its weights are "
                                 "shaped by T): pass num_frames=T (data.num_frames)")
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise GSFConfigError(f"num_frames must be a positive int, got {num_frames!r}")
    net = spec.build()
    load_pretrained_backbone(net, backbone=backbone, pretrained=pretrained)
    if placement is None:
        placement = kind.placements.get(spec.family, spec.default_placement)
    insert_kwargs: dict = {"placement": placement}
    if spec.family == "inception":
        if stages is not None or last_n_blocks is not None:
            raise GSFConfigError(f"stages/last_n_blocks do not apply to {backbone}; use placement instead")
    else:
        insert_kwargs["stages"] = tuple(stages) if stages is not None else (1, 2, 3, 4)
        insert_kwargs["last_n_blocks"] = last_n_blocks
    if spec.family == "resnet":
        insert_kwargs["backbone_init"] = kind.backbone_init
    make = partial(_make_module, temporal=temporal, num_frames=num_frames if kind.fixed_num_frames else None,
                   **knobs)
    _advance_random_stream(GSFKnobs(groups=values["groups"], gate=values["gate"], fusion=values["fusion"]))
    names = spec.insert(net, make_module=make, **insert_kwargs)
    model = VideoClassifier(net, num_classes=num_classes, dropout=dropout)
    model.temporal_module_names = names
    model.num_frames = num_frames if kind.fixed_num_frames else None
    return model


def _advance_random_stream(knobs: GSFKnobs) -> None:
    """Draw what building a 64-channel ``GateShiftFuse`` with ``knobs`` draws, and drop the draws.

    Earlier versions of :func:`build_model` checked the knobs by building such a module (before the backbone's
    modules are inserted); the draws are kept so that the random stream, and so the initial weights of every
    seeded model, stay what they were (docs/demo-recipe.md: the trained runs are seeded). The module's
    parameters are drawn in construction order: the gate conv's weight and bias (learned gates), then each
    group's fusion conv weight and bias (channel weighting); each draw is one ``uniform_`` of that shape.
    """
    channels = 64
    shapes: list[tuple[int, ...]] = []
    if knobs.gate in LEARNED_GATES:
        taps = 3 if knobs.gate == "spatiotemporal" else 1
        shapes += [(knobs.groups, channels // knobs.groups, taps, 3, 3), (knobs.groups,)]
    if knobs.fusion == "channel_weighting":
        shapes += [(1, 2, 3, 3), (1,)] * knobs.groups
    for shape in shapes:
        torch.empty(shape).uniform_()


def build_meta_model(**model_kwargs) -> VideoClassifier:
    """:func:`build_model` with its parameters on the meta device (no memory, no initialisation
    arithmetic): for checking knobs and counting GMACs without building the network."""
    try:
        with torch.device("meta"):
            return build_model(**model_kwargs)
    except NotImplementedError:
        # torchvision's RegNet reads its stage widths back from tensors while it is built, which meta
        # tensors cannot do: build it on the CPU (small and quick) and move it.
        return build_model(**model_kwargs).to("meta")


def _make_module(channels: int, layer_name: str, *, temporal: str, num_frames: int | None,
                 **knobs) -> nn.Module | None:
    return make_temporal_module(temporal, channels, num_frames=num_frames, layer_name=layer_name, **knobs)


# --- named variants ---------------------------------------------------------------------------------

_VARIANTS: dict[str, dict] = {}


def register_variant(name: str, **preset) -> None:
    """Register a named preset of :func:`build_model` keyword arguments."""
    if name in _VARIANTS:
        raise GSFConfigError(f"model variant {name!r} is registered twice")
    _VARIANTS[name] = preset


# Every kind on every backbone that takes it; the kinds whose T is architecture (TAM, TIN) at the 8 frames of
# their published models (a num_frames override builds another T).
PRESET_NUM_FRAMES = 8
for _backbone, _spec in BACKBONES.items():
    for _temporal, _kind in TEMPORAL_MODULES.items():
        if _spec.family in _kind.families:
            register_variant(f"{_backbone}_{'tsn' if _temporal == 'none' else _temporal}",
                             backbone=_backbone, temporal=_temporal,
                             **({"num_frames": PRESET_NUM_FRAMES} if _kind.fixed_num_frames else {}))
register_variant("resnet50_gsf_fraction0.25", backbone="resnet50", temporal="gsf", channel_fraction=0.25)
for _gate in ("spatial", "plus_one", "minus_one", "none"):
    register_variant(f"resnet_tiny_gsf_gate_{_gate}", backbone="resnet_tiny", temporal="gsf", gate=_gate)
for _fusion in ("sum", "average"):
    register_variant(f"resnet_tiny_gsf_fusion_{_fusion}", backbone="resnet_tiny", temporal="gsf", fusion=_fusion)
for _groups in (1, 4, 8):
    register_variant(f"resnet_tiny_gsf_groups{_groups}", backbone="resnet_tiny", temporal="gsf", groups=_groups)
for _placement in ("before_conv1", "after_conv1", "after_conv2", "all"):
    register_variant(f"resnet_tiny_gsf_{_placement}", backbone="resnet_tiny", temporal="gsf", placement=_placement)
register_variant("resnet_tiny_gsf_last2", backbone="resnet_tiny", temporal="gsf", last_n_blocks=2)
register_variant("bninception_gsf_every_branch", backbone="bninception", temporal="gsf", placement="every_branch")
register_variant("resnet_tiny_gsf_epic", backbone="resnet_tiny", temporal="gsf", num_classes={"verb": 97, "noun": 300})


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered variants matching a shell-style pattern (``"resnet50_*"``)."""
    return sorted(name for name in _VARIANTS if fnmatch.fnmatch(name, pattern))


def variant_kwargs(name: str) -> dict:
    """The :func:`build_model` keyword arguments of a named variant."""
    if name not in _VARIANTS:
        raise GSFConfigError(f"unknown model variant {name!r}{_closest(name, list(_VARIANTS))}")
    return dict(_VARIANTS[name])


def create_model(name: str, *, num_classes: int | Mapping[str, int] = PUBLISHED_NUM_CLASSES["ssv2"],
                 **overrides) -> VideoClassifier:
    """Build a named variant (default head: Something-Something's classes); keyword arguments override its
    preset."""
    kwargs = {"num_classes": num_classes, **variant_kwargs(name)}
    kwargs.update(overrides)
    return build_model(**kwargs)

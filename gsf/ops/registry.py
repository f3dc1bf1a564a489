"""The registry of temporal-module kinds: one entry per kind, the one place its facts are written.

An entry says how to build the kind's module, which knobs it reads, which backbone families it can go into
and where by default, whether its clip length T is architecture, and whether the backbone's own init loop
applies to it. `make_temporal_module`, `gsf.build_model`, the configuration and the named model variants
read it; adding a kind is its module file, its entry here, its name in `gsf.vocabulary.TEMPORAL_KINDS` and
its tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gsf.errors import GSFConfigError
from gsf.ops._knobs import FUSIONS, GATES, GROUPS, check_choice, check_positive_int
from gsf.ops.base import TemporalModule
from gsf.ops.gate_shift_fuse import GateShift, GateShiftFuse
from gsf.ops.temporal_adaptive import TemporalAdaptive
from gsf.ops.temporal_interlace import TemporalInterlace
from gsf.ops.temporal_shift import TemporalShift
from gsf.vocabulary import TEMPORAL_KINDS


@dataclass(frozen=True)
class Knob:
    """A knob of one or more kinds, named as ``make_temporal_module``, ``gsf.build_model`` and the
    configuration (``model.<name>``, where it is one) spell it."""

    name: str
    default: Any
    check: Callable[[Any, str], None]  # (value, layer_name): raise GSFConfigError naming the knob
    doc: str


def _choice(name: str, valid: tuple) -> Callable[[Any, str], None]:
    return lambda value, layer_name: check_choice(name, value, valid, layer_name)


def _positive_int(name: str, *, odd: bool = False) -> Callable[[Any, str], None]:
    return lambda value, layer_name: check_positive_int(name, value, layer_name, odd=odd)


def _fraction(name: str, upper: float) -> Callable[[Any, str], None]:
    def check(value: Any, layer_name: str) -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not 0.0 < value <= upper):
            where = f"layer {layer_name!r}" if layer_name else "temporal module"
            raise GSFConfigError(f"{where}: {name} must be a fraction in (0, {upper:g}], got {value!r}")
    return check


def _bool_or_none(name: str) -> Callable[[Any, str], None]:
    def check(value: Any, layer_name: str) -> None:
        if value is not None and not isinstance(value, bool):
            raise GSFConfigError(f"layer {layer_name!r}: {name} must be a bool or None, got {value!r}")
    return check


GROUPS_KNOB = Knob("groups", 2, _choice("groups", GROUPS), "GSF/GSM gate groups G")
GATE_KNOB = Knob("gate", "spatiotemporal", _choice("gate", GATES), "GSF/GSM gate")
FUSION_KNOB = Knob("fusion", "channel_weighting", _choice("fusion", FUSIONS), "GSF fusion")
CHANNEL_FRACTION_KNOB = Knob("channel_fraction", 1.0, _fraction("channel_fraction", 1.0),
                             "fraction of a layer's channels that go through GSF/GSM")
ZERO_INIT_GATE_KNOB = Knob("zero_init_gate", None, _bool_or_none("zero_init_gate"),
                           "zero-initialised gate conv (None: GSM yes, GSF no)")
SHIFT_FRACTION_KNOB = Knob("shift_fraction", 1 / 8, _fraction("shift_fraction", 0.5),
                           "TSM's shifted share of the channels each way")
TAM_KERNEL_SIZE_KNOB = Knob("tam_kernel_size", 3, _positive_int("tam_kernel_size", odd=True),
                            "TAM's taps K of the adaptive kernel and of the local branch's first conv")
TAM_GLOBAL_EXPANSION_KNOB = Knob("tam_global_expansion", 2, _positive_int("tam_global_expansion"),
                                 "TAM's alpha: the global branch's hidden width is alpha * T")
TAM_LOCAL_REDUCTION_KNOB = Knob("tam_local_reduction", 4, _positive_int("tam_local_reduction"),
                                "TAM's beta: the local branch's hidden channels are C // beta")
TIN_SHIFT_DIV_KNOB = Knob("tin_shift_div", 4, _positive_int("tin_shift_div"),
                          "TIN interlaces the first C // tin_shift_div channels")


# Builders: (channels, *, layer_name, num_frames, **the kind's knobs) -> module.

def _build_tsm(channels: int, *, layer_name: str, num_frames: int | None, shift_fraction: float) -> TemporalModule:
    return TemporalShift(channels, shift_fraction=shift_fraction, layer_name=layer_name)


def _build_gsm(channels: int, *, layer_name: str, num_frames: int | None, groups: int, gate: str,
               channel_fraction: float, zero_init_gate: bool | None) -> TemporalModule:
    return GateShift(channels, groups=groups, gate=gate, channel_fraction=channel_fraction,
                     zero_init_gate=True if zero_init_gate is None else zero_init_gate, layer_name=layer_name)


def _build_gsf(channels: int, *, layer_name: str, num_frames: int | None, groups: int, gate: str, fusion: str,
               channel_fraction: float, zero_init_gate: bool | None) -> TemporalModule:
    return GateShiftFuse(channels, groups=groups, gate=gate, fusion=fusion, channel_fraction=channel_fraction,
                         zero_init_gate=bool(zero_init_gate), layer_name=layer_name)


def _build_tam(channels: int, *, layer_name: str, num_frames: int, tam_kernel_size: int,
               tam_global_expansion: int, tam_local_reduction: int) -> TemporalModule:
    return TemporalAdaptive(channels, num_frames=num_frames, kernel_size=tam_kernel_size,
                            global_expansion=tam_global_expansion, local_reduction=tam_local_reduction,
                            layer_name=layer_name)


def _build_tin(channels: int, *, layer_name: str, num_frames: int, tin_shift_div: int) -> TemporalModule:
    return TemporalInterlace(channels, num_frames=num_frames, shift_div=tin_shift_div, layer_name=layer_name)


@dataclass(frozen=True)
class TemporalKind:
    """The facts of one temporal-module kind."""

    name: str  # the value of model.temporal / build_model(temporal=...)
    label: str  # how tables and figures name it
    build: Callable[..., TemporalModule] | None  # None: no module (TSN)
    knobs: tuple[Knob, ...] = ()  # the knobs its builder reads, in the order names show them
    families: tuple[str, ...] = ("resnet", "inception", "modern")  # backbone families it can go into
    # Default placement per backbone family; a family not listed takes the backbone's own default (the paper's).
    placements: Mapping[str, str] = field(default_factory=dict)
    # T is architecture: modules are built for one clip length (build_model's num_frames) and run only at it.
    fixed_num_frames: bool = False
    # The backbone's init loop re-initialises the inserted modules' Conv2d weights (the GSF release's ResNet
    # builds GSF before its kaiming loop); False: the modules keep their own initialisation, as their release.
    backbone_init: bool = True
    reference: str = ""  # the paper


TEMPORAL_MODULES: dict[str, TemporalKind] = {kind.name: kind for kind in (
    TemporalKind("none", "TSN", None, reference="Wang et al., ECCV 2016 (TSN: no temporal module)"),
    TemporalKind("tsm", "TSM", _build_tsm, (SHIFT_FRACTION_KNOB,), placements={"resnet": "before_conv1"},
                 reference="Lin et al., ICCV 2019"),
    TemporalKind("gsm", "GSM", _build_gsm, (GROUPS_KNOB, GATE_KNOB, CHANNEL_FRACTION_KNOB, ZERO_INIT_GATE_KNOB),
                 reference="Sudhakaran et al., CVPR 2020"),
    TemporalKind("gsf", "GSF", _build_gsf,
                 (GROUPS_KNOB, GATE_KNOB, FUSION_KNOB, CHANNEL_FRACTION_KNOB, ZERO_INIT_GATE_KNOB),
                 reference="Sudhakaran et al., TPAMI 2023"),
    # TAM: after conv1 -> bn1 -> ReLU of every residual block, feeding conv2 (docs/temporal-modules.md).
    TemporalKind("tam", "TAM", _build_tam, (TAM_KERNEL_SIZE_KNOB, TAM_GLOBAL_EXPANSION_KNOB, TAM_LOCAL_REDUCTION_KNOB),
                 families=("resnet",), placements={"resnet": "before_conv2"}, fixed_num_frames=True,
                 backbone_init=False, reference="Liu et al., ICCV 2021"),
    # TIN: on the residual branch's input, before conv1 of every residual block (TSM's residual shift).
    TemporalKind("tin", "TIN", _build_tin, (TIN_SHIFT_DIV_KNOB,), families=("resnet",),
                 placements={"resnet": "before_conv1"}, fixed_num_frames=True, backbone_init=False,
                 reference="Shao et al., AAAI 2020"),
)}

if tuple(TEMPORAL_MODULES) != TEMPORAL_KINDS:  # a kind added in one place but not the other
    raise ImportError(f"gsf.ops.registry lists {tuple(TEMPORAL_MODULES)} but gsf.vocabulary.TEMPORAL_KINDS is "
                      f"{TEMPORAL_KINDS}: they must name the same kinds in the same order")


def _all_knobs() -> dict[str, Knob]:
    knobs: dict[str, Knob] = {}
    for kind in TEMPORAL_MODULES.values():
        for knob in kind.knobs:
            if knobs.setdefault(knob.name, knob) is not knob:
                raise ImportError(f"temporal knob {knob.name!r} is declared twice with different facts")
    return knobs


KNOBS: dict[str, Knob] = _all_knobs()  # every kind's knobs, by name


def temporal_kind(name: str, layer_name: str = "") -> TemporalKind:
    """The registry entry of kind ``name``; an unknown name is a GSFConfigError listing the kinds."""
    check_choice("kind", name, TEMPORAL_KINDS, layer_name)
    return TEMPORAL_MODULES[name]


def knob_values(knobs: Mapping[str, Any], layer_name: str = "") -> dict[str, Any]:
    """Every registered knob's value: ``knobs`` over the defaults, each checked whatever the kind (so a typo in
    a grid fails early). An unknown knob name is a GSFConfigError naming the valid ones."""
    unknown = sorted(set(knobs) - set(KNOBS))
    if unknown:
        raise GSFConfigError(f"unknown temporal-module knob(s) {unknown}; valid knobs: {', '.join(KNOBS)}")
    values = {name: knobs.get(name, knob.default) for name, knob in KNOBS.items()}
    for name, knob in KNOBS.items():
        knob.check(values[name], layer_name)
    return values


def supported_backbones(kind: TemporalKind, backbones: Mapping[str, Any]) -> list[str]:
    """Names of ``backbones`` (name -> spec with a ``family``) that ``kind`` can be inserted into."""
    return [name for name, spec in backbones.items() if spec.family in kind.families]

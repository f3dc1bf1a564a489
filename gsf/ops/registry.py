"""The registry of temporal-module kinds: one entry per kind, the one place its facts are written.

An entry says how to build the kind's module, which knob dataclass holds its knobs (`gsf.ops._knobs`: each
knob's default, valid values and meaning), which backbone families it can go into and where by default,
whether its clip length T is architecture, and whether the backbone's own init loop applies to it.
`make_temporal_module`, `gsf.build_model`, the configuration and the named model variants read it; adding a
kind is its module file, its knob dataclass in `gsf.ops._knobs` (and its knobs' ``model.`` keys in
`gsf.engine.config.ModelConfig`), its entry here, its name in `gsf.vocabulary.TEMPORAL_KINDS` and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gsf.ops._knobs import (
    KNOB_CLASSES,
    KNOB_SPECS,
    GSFKnobs,
    GSMKnobs,
    KnobSpec,
    TAMKnobs,
    TemporalKnobs,
    TINKnobs,
    TSMKnobs,
    check_choice,
    check_knobs,
)
from gsf.ops.base import TemporalModule
from gsf.ops.gate_shift_fuse import GateShift, GateShiftFuse
from gsf.ops.temporal_adaptive import TemporalAdaptive
from gsf.ops.temporal_interlace import TemporalInterlace
from gsf.ops.temporal_shift import TemporalShift
from gsf.vocabulary import TEMPORAL_KINDS


@dataclass(frozen=True)
class Knob:
    """A knob of one or more kinds, named as ``make_temporal_module``, ``gsf.build_model`` and the
    configuration (``model.<name>``) spell it; a view of its `gsf.ops._knobs.KnobSpec`."""

    name: str
    spec: KnobSpec

    @property
    def default(self) -> Any:
        return self.spec.default

    @property
    def doc(self) -> str:
        return self.spec.doc

    def check(self, value: Any, layer_name: str = "") -> None:
        """Raise GSFConfigError naming the knob and its valid values unless ``value`` is one."""
        self.spec.check(self.name, value, layer_name)


# Builders: (channels, *, layer_name, num_frames, knobs: the kind's knob object) -> module.

def _build_tsm(channels: int, *, layer_name: str, num_frames: int | None, knobs: TSMKnobs) -> TemporalModule:
    return TemporalShift(channels, shift_fraction=knobs.shift_fraction, layer_name=layer_name)


def _build_gsm(channels: int, *, layer_name: str, num_frames: int | None, knobs: GSMKnobs) -> TemporalModule:
    return GateShift(channels, groups=knobs.groups, gate=knobs.gate, channel_fraction=knobs.channel_fraction,
                     zero_init_gate=knobs.gate_starts_at_zero, layer_name=layer_name)


def _build_gsf(channels: int, *, layer_name: str, num_frames: int | None, knobs: GSFKnobs) -> TemporalModule:
    return GateShiftFuse(channels, groups=knobs.groups, gate=knobs.gate, fusion=knobs.fusion,
                         channel_fraction=knobs.channel_fraction, zero_init_gate=knobs.gate_starts_at_zero,
                         layer_name=layer_name)


def _build_tam(channels: int, *, layer_name: str, num_frames: int, knobs: TAMKnobs) -> TemporalModule:
    return TemporalAdaptive(channels, num_frames=num_frames, kernel_size=knobs.tam_kernel_size,
                            global_expansion=knobs.tam_global_expansion, local_reduction=knobs.tam_local_reduction,
                            layer_name=layer_name)


def _build_tin(channels: int, *, layer_name: str, num_frames: int, knobs: TINKnobs) -> TemporalModule:
    return TemporalInterlace(channels, num_frames=num_frames, shift_div=knobs.tin_shift_div, layer_name=layer_name)


@dataclass(frozen=True)
class TemporalKind:
    """The facts of one temporal-module kind."""

    name: str  # the value of model.temporal / build_model(temporal=...)
    label: str  # how tables and figures name it
    build: Callable[..., TemporalModule] | None  # None: no module (TSN)
    knob_class: type[TemporalKnobs] | None = None  # its knobs (gsf.ops._knobs); None: it has none
    families: tuple[str, ...] = ("resnet", "inception", "modern")  # backbone families it can go into
    # Default placement per backbone family; a family not listed takes the backbone's own default (the paper's).
    placements: Mapping[str, str] = field(default_factory=dict)
    # T is architecture: modules are built for one clip length (build_model's num_frames) and run only at it.
    fixed_num_frames: bool = False
    # The backbone's init loop re-initialises the inserted modules' Conv2d weights (the GSF release's ResNet
    # builds GSF before its kaiming loop); False: the modules keep their own initialisation, as their release.
    backbone_init: bool = True
    reference: str = ""  # the paper

    @property
    def knobs(self) -> tuple[Knob, ...]:
        """The knobs its builder reads, in the order names show them."""
        return () if self.knob_class is None else tuple(_KNOB_VIEWS[name] for name in self.knob_class.specs())


TEMPORAL_MODULES: dict[str, TemporalKind] = {kind.name: kind for kind in (
    TemporalKind("none", "TSN", None, reference="Wang et al., ECCV 2016 (TSN: no temporal module)"),
    TemporalKind("tsm", "TSM", _build_tsm, TSMKnobs, placements={"resnet": "before_conv1"},
                 reference="Lin et al., ICCV 2019"),
    TemporalKind("gsm", "GSM", _build_gsm, GSMKnobs,
                 reference="Sudhakaran et al., CVPR 2020"),
    TemporalKind("gsf", "GSF", _build_gsf, GSFKnobs,
                 reference="Sudhakaran et al., TPAMI 2023"),
    # TAM: after conv1 -> bn1 -> ReLU of every residual block, feeding conv2 (docs/temporal-modules.md).
    TemporalKind("tam", "TAM", _build_tam, TAMKnobs,
                 families=("resnet",), placements={"resnet": "before_conv2"}, fixed_num_frames=True,
                 backbone_init=False, reference="Liu et al., ICCV 2021"),
    # TIN: on the residual branch's input, before conv1 of every residual block (TSM's residual shift).
    TemporalKind("tin", "TIN", _build_tin, TINKnobs, families=("resnet",),
                 placements={"resnet": "before_conv1"}, fixed_num_frames=True, backbone_init=False,
                 reference="Shao et al., AAAI 2020"),
)}

if tuple(TEMPORAL_MODULES) != TEMPORAL_KINDS:  # a kind added in one place but not the other
    raise ImportError(f"gsf.ops.registry lists {tuple(TEMPORAL_MODULES)} but gsf.vocabulary.TEMPORAL_KINDS is "
                      f"{TEMPORAL_KINDS}: they must name the same kinds in the same order")


def _all_knobs() -> dict[str, Knob]:
    """Every kind's knobs by name; a name with two specs, or a knob class no kind uses, is a package bug."""
    knobs: dict[str, Knob] = {}
    for cls in KNOB_CLASSES:
        for name, spec in cls.specs().items():
            if knobs.setdefault(name, Knob(name, spec)).spec is not spec:
                raise ImportError(f"temporal knob {name!r} is declared twice with different facts")
    used = {kind.knob_class for kind in TEMPORAL_MODULES.values() if kind.knob_class is not None}
    if used != set(KNOB_CLASSES) or list(knobs) != list(KNOB_SPECS):
        raise ImportError(f"gsf.ops._knobs.KNOB_CLASSES {KNOB_CLASSES} are not the knob classes of the kinds")
    return knobs


_KNOB_VIEWS: dict[str, Knob] = _all_knobs()
KNOBS: dict[str, Knob] = _KNOB_VIEWS  # every kind's knobs, by name


def temporal_kind(name: str, layer_name: str = "") -> TemporalKind:
    """The registry entry of kind ``name``; an unknown name is a GSFConfigError listing the kinds."""
    check_choice("kind", name, TEMPORAL_KINDS, layer_name)
    return TEMPORAL_MODULES[name]


def knob_values(knobs: Mapping[str, Any], layer_name: str = "") -> dict[str, Any]:
    """Every registered knob's value: ``knobs`` over the defaults, each kind's knob object made (so every knob
    checked whatever the kind: a typo in a grid fails early). An unknown knob name is a GSFConfigError naming
    the valid ones."""
    return check_knobs(dict(knobs), layer_name)


def kind_knobs(kind: TemporalKind, values: Mapping[str, Any], layer_name: str = "") -> TemporalKnobs | None:
    """The knob object of ``kind`` from ``values`` (knob name -> value, others ignored); None for TSN."""
    if kind.knob_class is None:
        return None
    return kind.knob_class(**{name: values[name] for name in kind.knob_class.specs() if name in values},
                           layer_name=layer_name)


def supported_backbones(kind: TemporalKind, backbones: Mapping[str, Any]) -> list[str]:
    """Names of ``backbones`` (name -> spec with a ``family``) that ``kind`` can be inserted into."""
    return [name for name, spec in backbones.items() if spec.family in kind.families]

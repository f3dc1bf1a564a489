"""The temporal modules' knobs: one frozen, self-validating dataclass per kind, the one place each knob's default
(the release's value), valid values and meaning are written (docs/gsf-operator.md section 1 for GSF, GSM and TSM;
docs/temporal-modules.md for TAM and TIN).

The module constructors, `make_temporal_module`, `gsf.build_model` and the configuration's ``model.<knob>`` keys
read them: a knob's name here is its name everywhere. This module is torch-free.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import InitVar, dataclass
from typing import Any, ClassVar

from gsf.errors import GSFConfigError

GROUPS = (1, 2, 4, 8)
GATES = ("spatiotemporal", "spatial", "plus_one", "minus_one", "none")
LEARNED_GATES = ("spatiotemporal", "spatial")
FUSIONS = ("channel_weighting", "sum", "average")


def _where(layer_name: str) -> str:
    return f"layer {layer_name!r}" if layer_name else "temporal module"


def check_choice(knob: str, value: object, valid: tuple, layer_name: str = "") -> None:
    """Raise GSFConfigError naming the knob, the value and the valid values if value is not valid."""
    if isinstance(value, bool) or value not in valid:
        raise GSFConfigError(f"{_where(layer_name)}: {knob}={value!r} is not one of {list(valid)}")


def check_channels(channels: object, layer_name: str = "") -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise GSFConfigError(f"{_where(layer_name)}: channels must be a positive int, got {channels!r}")
    return channels


def check_positive_int(knob: str, value: object, layer_name: str = "", *, odd: bool = False) -> int:
    """Raise GSFConfigError naming the knob and the value unless it is a positive (and, if asked, odd) int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (odd and value % 2 == 0):
        kind = "an odd positive int" if odd else "a positive int"
        raise GSFConfigError(f"{_where(layer_name)}: {knob} must be {kind}, got {value!r}")
    return value


@dataclass(frozen=True)
class KnobSpec:
    """One knob's facts: its default (the release's value), its valid values and its meaning in one line.

    The valid values are ``choices`` (a value must equal one of them and be of its type, so True is not the
    group count 1), else a fraction in (0, ``fraction_upper``], else a positive (``odd``: odd) int.
    """

    default: Any
    doc: str
    choices: tuple | None = None
    fraction_upper: float | None = None
    odd: bool = False

    def allowed(self) -> str:
        """The valid values in words, as errors and ``gsf train --show-config`` say them."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        if self.fraction_upper is not None:
            return f"a fraction in (0, {self.fraction_upper:g}]"
        return "an odd positive int" if self.odd else "a positive int"

    def check(self, name: str, value: Any, layer_name: str = "") -> None:
        """Raise GSFConfigError naming the knob, the value and the valid values unless ``value`` is valid."""
        if self.choices is not None:
            if not any(type(value) is type(choice) and value == choice for choice in self.choices):
                raise GSFConfigError(f"{_where(layer_name)}: {name}={value!r} is not one of {list(self.choices)}")
        elif self.fraction_upper is not None:
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not 0.0 < value <= self.fraction_upper):
                raise GSFConfigError(f"{_where(layer_name)}: {name} must be {self.allowed()}, got {value!r}")
        else:
            check_positive_int(name, value, layer_name, odd=self.odd)

    def field(self) -> Any:
        """A dataclass field with this default, carrying the spec in its metadata (``"knob"``)."""
        return dataclasses.field(default=self.default, metadata={"knob": self})


# Each knob once; a knob two kinds share (GSF's and GSM's gate knobs) is the same spec in both.
GROUPS_KNOB = KnobSpec(2, "GSF/GSM gate groups G, each with its own gate map and, in GSF, fusion conv", GROUPS)
GATE_KNOB = KnobSpec("spatiotemporal", "GSF/GSM gate: a learned conv, spatiotemporal 3x3x3 (the paper's) or spatial "
                                       "1x3x3, a fixed gate plus_one or minus_one, or none", GATES)
FUSION_KNOB = KnobSpec("channel_weighting", "GSF fusion of the shifted and residual parts; GSM always sums",
                       FUSIONS)
CHANNEL_FRACTION_KNOB = KnobSpec(1.0, "GSF/GSM: fraction of a layer's channels that go through the module",
                                 fraction_upper=1.0)
ZERO_INIT_GATE_KNOB = KnobSpec(None, "GSF/GSM: zero-initialised gate conv; null: the kind's own, GSM yes, GSF no",
                               (None, False, True))
SHIFT_FRACTION_KNOB = KnobSpec(1 / 8, "TSM: share of a layer's channels shifted each way", fraction_upper=0.5)
TAM_KERNEL_SIZE_KNOB = KnobSpec(3, "TAM: taps K of its adaptive kernel and of its local branch's first conv",
                                odd=True)
TAM_GLOBAL_EXPANSION_KNOB = KnobSpec(2, "TAM: the paper's alpha, its global branch's hidden width alpha * T")
TAM_LOCAL_REDUCTION_KNOB = KnobSpec(4, "TAM: the paper's beta, its local branch's hidden channels C // beta")
TIN_SHIFT_DIV_KNOB = KnobSpec(4, "TIN: the first C // tin_shift_div channels of a block's input are interlaced")


@dataclass(frozen=True, kw_only=True)
class TemporalKnobs:
    """Base of the knob dataclasses: every field is checked against its `KnobSpec` when the object is made;
    ``layer_name`` (not stored) only names the layer in the error."""

    layer_name: InitVar[str] = ""

    def __post_init__(self, layer_name: str) -> None:
        for f in dataclasses.fields(self):
            f.metadata["knob"].check(f.name, getattr(self, f.name), layer_name)

    @classmethod
    def specs(cls) -> dict[str, KnobSpec]:
        """The kind's knobs by name, in the order names show them."""
        return {f.name: f.metadata["knob"] for f in dataclasses.fields(cls)}

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


class _GateInit:
    """``zero_init_gate`` None means the kind's own start (`OWN_ZERO_INIT_GATE`)."""

    OWN_ZERO_INIT_GATE: ClassVar[bool]
    zero_init_gate: bool | None

    @property
    def gate_starts_at_zero(self) -> bool:
        return self.OWN_ZERO_INIT_GATE if self.zero_init_gate is None else self.zero_init_gate


@dataclass(frozen=True, kw_only=True)
class TSMKnobs(TemporalKnobs):
    """TSM (Lin et al., ICCV 2019): a parameter-free shift of a share of the channels."""

    shift_fraction: float = SHIFT_FRACTION_KNOB.field()


@dataclass(frozen=True, kw_only=True)
class GSMKnobs(_GateInit, TemporalKnobs):
    """GSM (Sudhakaran et al., CVPR 2020): GSF fused by sum, its gate conv zero-initialised by default."""

    OWN_ZERO_INIT_GATE: ClassVar[bool] = True
    groups: int = GROUPS_KNOB.field()
    gate: str = GATE_KNOB.field()
    channel_fraction: float = CHANNEL_FRACTION_KNOB.field()
    zero_init_gate: bool | None = ZERO_INIT_GATE_KNOB.field()


@dataclass(frozen=True, kw_only=True)
class GSFKnobs(_GateInit, TemporalKnobs):
    """GSF (Sudhakaran et al., TPAMI 2023; docs/gsf-operator.md section 1)."""

    OWN_ZERO_INIT_GATE: ClassVar[bool] = False
    groups: int = GROUPS_KNOB.field()
    gate: str = GATE_KNOB.field()
    fusion: str = FUSION_KNOB.field()
    channel_fraction: float = CHANNEL_FRACTION_KNOB.field()
    zero_init_gate: bool | None = ZERO_INIT_GATE_KNOB.field()


@dataclass(frozen=True, kw_only=True)
class TAMKnobs(TemporalKnobs):
    """TAM (Liu et al., ICCV 2021; docs/temporal-modules.md)."""

    tam_kernel_size: int = TAM_KERNEL_SIZE_KNOB.field()
    tam_global_expansion: int = TAM_GLOBAL_EXPANSION_KNOB.field()
    tam_local_reduction: int = TAM_LOCAL_REDUCTION_KNOB.field()


@dataclass(frozen=True, kw_only=True)
class TINKnobs(TemporalKnobs):
    """TIN (Shao et al., AAAI 2020; docs/temporal-modules.md)."""

    tin_shift_div: int = TIN_SHIFT_DIV_KNOB.field()


# The defaults, which the module constructors' signatures read.
TSM_DEFAULTS = TSMKnobs()
GSM_DEFAULTS = GSMKnobs()
GSF_DEFAULTS = GSFKnobs()
TAM_DEFAULTS = TAMKnobs()
TIN_DEFAULTS = TINKnobs()

KNOB_CLASSES: tuple[type[TemporalKnobs], ...] = (TSMKnobs, GSMKnobs, GSFKnobs, TAMKnobs, TINKnobs)


# Every kind's knobs, by name (gsf.ops.registry checks, when imported, that no name has two specs).
KNOB_SPECS: dict[str, KnobSpec] = {name: spec for cls in KNOB_CLASSES for name, spec in cls.specs().items()}


def check_knobs(values: dict[str, Any], layer_name: str = "") -> dict[str, Any]:
    """Every knob's value: ``values`` over the defaults, each kind's knob object made (so checked) whatever
    the kind, so that a typo in a grid fails early. An unknown name is a GSFConfigError naming the valid ones."""
    unknown = sorted(set(values) - set(KNOB_SPECS))
    if unknown:
        raise GSFConfigError(f"unknown temporal-module knob(s) {unknown}; valid knobs: {', '.join(KNOB_SPECS)}")
    merged = {name: values.get(name, spec.default) for name, spec in KNOB_SPECS.items()}
    for cls in KNOB_CLASSES:
        cls(**{name: merged[name] for name in cls.specs()}, layer_name=layer_name)
    return merged


def gsf_channels(channels: int, channel_fraction: float, groups: int, layer_name: str = "") -> int:
    """Return C', the number of channels that go through GSF (docs/gsf-operator.md section 1, step 1).

    C' = int(C * channel_fraction), rounded up to even. The per-group interleave (step 6) splits each of
    the `groups` groups into two halves, so C' must be divisible by 2 * groups.
    """
    check_channels(channels, layer_name)
    GROUPS_KNOB.check("groups", groups, layer_name)
    CHANNEL_FRACTION_KNOB.check("channel_fraction", channel_fraction, layer_name)
    gated = int(channels * channel_fraction)
    gated += gated % 2
    if gated == 0 or gated > channels or gated % (2 * groups) != 0:
        raise GSFConfigError(
            f"{_where(layer_name)}: C={channels} channels with channel_fraction={channel_fraction} give "
            f"C'={gated} GSF channels, but C' must be positive, at most C, and divisible by "
            f"2 * groups = {2 * groups} (groups={groups}) for the per-group channel interleave"
        )
    return gated
